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
from support.shells import extension_loaded

from linkis_kernel.display import LinkisCellError
from linkis_kernel.display.transfer import DownloadProgress

pytest.importorskip("pyarrow")


@pytest.fixture
def shell(linkis_env: Any) -> Iterator[InteractiveShell]:
    with extension_loaded() as ip:
        yield ip


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
    client = linkis_env.linkis_client()
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
    client = linkis_env.linkis_client()
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


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_text_bar_rewrites_one_line_in_a_terminal_and_ends_it() -> None:
    stream = Terminal()
    ticks = iter(range(100))
    progress = DownloadProgress("out.parquet", "text", stream=stream, clock=lambda: next(ticks))
    progress.update(500, 1000)
    progress.update(1000, 1000)  # an estimate reached is not yet the end
    progress.close()
    lines = stream.getvalue().split("\r")[1:]
    assert "50% · 500 of about 1,000 rows" in lines[0] and "█" * 15 + "░" * 15 in lines[0]
    assert "99% · 1,000 of about 1,000 rows" in lines[1]
    assert lines[2].rstrip().endswith("100% · 1,000 of 1,000 rows") and lines[2].endswith("\n")


def test_the_widget_bar_ends_green_or_red() -> None:
    done = DownloadProgress("a.parquet", "widget", clock=lambda: 0.0)
    done.update(10, 40)
    assert (done.bar.value, done.status.value) == (0.25, "25% · 10 of about 40 rows")
    done.close()
    assert (done.bar.value, done.bar.bar_style) == (1.0, "success")
    assert done.bar.comm is None and done.status.comm is None, "no widget outlives the download"
    failed = DownloadProgress("b.csv", "widget", unit="bytes")
    failed.update(2048)
    failed.close(ok=False)
    assert failed.bar.bar_style == "danger" and failed.status.value == "2,048 bytes"
