"""Everything in a server's data dir is its user's alone: files 0600, folders 0700.

(README, "Security".) Checked with os.stat on a real server's data dir after two users ran
SQL, shell and Python jobs, including users.json written with the usual umask before start.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from support.serverproc import GUEST, start_server
from support.twousers import guest_client

from linkis_kernel import wire


def _too_open(data_dir: Path) -> list[str]:
    found = []
    for folder, dirs, files in os.walk(data_dir):
        for name in [*dirs, *files]:
            path = Path(folder, name)
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            wanted = 0o700 if stat.S_ISDIR(mode) else 0o600
            if stat.S_IMODE(mode) & 0o077 or (stat.S_ISDIR(mode) and stat.S_IMODE(mode) != wanted):
                found.append(f"{path.relative_to(data_dir)} {stat.S_IMODE(mode):o}")
    return found


def test_data_dir_files_are_0600_and_folders_0700(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        data_dir = tmp_path / "data"
        with start_server(data_dir, users=[GUEST]) as server:
            assert stat.S_IMODE((data_dir / "users.json").stat().st_mode) == 0o600
            guest = guest_client(server)
            jobs = [
                server.submit("select 42 as n", engine="duckdb"),
                server.submit("select 1 as n", engine="duckdb", session=guest),
                server.submit("echo hello; echo oops >&2", engine="shell", run_type="shell"),
                server.submit("print(1)", engine="python", run_type="python", session=guest),
            ]
            for job, session in zip(jobs, [None, guest, None, guest], strict=True):
                assert server.wait(job["execID"], session=session, timeout=60) == wire.SUCCEED
            # Reading history opens the SQLite files from the HTTP threads too.
            listed = guest.get(server.api("jobhistory/list")).json()["data"]["tasks"]
            assert listed
        assert (data_dir / "history.sqlite").exists() and (data_dir / "server.log").exists()
        assert (data_dir / "result").is_dir() and (data_dir / "log").is_dir()
        assert _too_open(data_dir) == []
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    finally:
        os.umask(old)
