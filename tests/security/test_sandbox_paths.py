"""The process sandbox finds the server's code wherever it lives, /tmp included.

A checkout or a virtual environment under the machine's /tmp (a CI clone, a course's scratch
copy) must still be visible to sandboxed engines, although each job gets a private /tmp.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from support.serverproc import REPO_ROOT, start_server
from support.twousers import ALICE, BOB, user_client


def test_sandboxed_engines_run_from_a_checkout_under_tmp(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    shutil.copytree(REPO_ROOT / "linkis_kernel", checkout / "linkis_kernel")
    assert str(checkout).startswith("/tmp/")
    data = tmp_path / "data"
    with start_server(data, users=[BOB, ALICE], cwd=checkout) as server:
        assert (
            "Process sandbox: Python, PySpark and Shell jobs run under bwrap"
            in (data / "server.log").read_text()
        )
        bob = user_client(server, BOB)
        job = bob.submit("import pathlib, sys\nprint(pathlib.Path(sys.argv[0]).parent.parent)",
                         engine="python")  # fmt: skip
        job.wait(timeout=90, raise_on_failure=False)
        assert job.state == "Succeed", job.failure()
        assert str(job.results()[0].data).strip() == str(checkout / "linkis_kernel")
