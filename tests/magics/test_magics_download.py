"""`%linkis download ID out.parquet` in a real IPython shell: every row, typed, with progress."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell

from linkis_kernel.display import LinkisCellError
from linkis_kernel.job import LinkisClient

pytest.importorskip("pyarrow")


@pytest.fixture
def shell(linkis_env: Any) -> Iterator[InteractiveShell]:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "linkis_kernel")
    try:
        yield ip
    finally:
        ip.run_line_magic("unload_ext", "linkis_kernel")


def run_line(ip: InteractiveShell, line: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        result = ip.run_cell(line)
    if result.error_in_exec is not None:
        raise result.error_in_exec
    return out.getvalue()


def test_download_to_parquet_writes_every_row_with_the_result_types(
    shell: InteractiveShell, linkis_env: Any, tmp_path: Path
) -> None:
    client = LinkisClient(linkis_env.url, user=linkis_env.user, token=linkis_env.token)
    job = client.submit(
        "select range::int as n, range % 2 = 0 as even, 'r' || range as name from range(12000)",
        engine="spark",
        creator="nb",
    )
    job.wait(timeout=30)
    target = tmp_path / "out.parquet"

    printed = run_line(shell, f"%linkis download {job.task_id} {target}")

    assert f"Saved the result of Linkis job {job.task_id} to {target}." in printed
    assert "[linkis] out.parquet" in printed and "100% · 12,000 of 12,000 rows" in printed
    pd.testing.assert_frame_equal(pd.read_parquet(target), job.result())

    forced = tmp_path / "out.bin"
    run_line(shell, f"%linkis download {job.task_id} {forced} --format parquet")
    assert len(pd.read_parquet(forced)) == 12000


def test_download_of_a_running_job_fails_in_one_line_and_writes_nothing(
    shell: InteractiveShell, linkis_env: Any, tmp_path: Path
) -> None:
    client = LinkisClient(linkis_env.url, user=linkis_env.user, token=linkis_env.token)
    job = client.submit("sleep 5", engine="shell", creator="nb")
    folder = tmp_path / "downloads"
    folder.mkdir()
    target = folder / "out.parquet"
    try:
        with pytest.raises(LinkisCellError, match=f"Linkis job {job.task_id} is still"):
            run_line(shell, f"%linkis download {job.task_id} {target}")
    finally:
        job.kill(wait=5)
    assert list(folder.iterdir()) == []
