"""Find or start the embedded Linkis server of a data directory: the client's side of it.

Clients with no LINKIS_URL call `ensure_server()`: it reuses the server that the data
directory's `connection.json` names when that server answers, and otherwise starts
`python -m linkis_kernel serve --port 0` detached and waits for it. Only the standard library
and requests are used here, so this costs a client nothing of the server's weight.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..wire import (
    CONNECTION_FILE,
    SERVER_LOG_FILE,
    default_data_dir,
    read_connection,
    server_answers,
)

EMBEDDED_NOTE = (
    "No LINKIS_URL set: using the embedded local Linkis at {url} (SQL on DuckDB, or on a local "
    "Spark when pyspark is installed; Python and Shell on this machine)."
)


class LocalServerError(RuntimeError):
    """The embedded server could not be found or started."""


def ensure_server(data_dir: Path | None = None, timeout: float = 15) -> dict[str, Any]:
    """The connection dict (url, user, password, token, pid) of a running server.

    Starts one for `data_dir` (default `default_data_dir()`) when none answers.
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _launch_lock(data_dir):
        conn = read_connection(data_dir)
        if conn is not None and server_answers(conn["url"]):
            return conn
        (data_dir / CONNECTION_FILE).unlink(missing_ok=True)
        process = _start_detached(data_dir)
        return _wait_for_server(data_dir, process, timeout)


def log_tail(data_dir: Path, lines: int = 20) -> str:
    """The last lines of the data directory's server log (empty when there is none)."""
    try:
        text = (data_dir / SERVER_LOG_FILE).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def _launch_lock(data_dir: Path) -> Iterator[None]:
    """Serialise launches from several kernels so that one data dir gets one server."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; a lost race only costs a second server
        yield
        return
    with open(data_dir / ".launch.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _start_detached(data_dir: Path) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "linkis_kernel", "serve", "--port", "0"]
    command += ["--data-dir", str(data_dir)]
    with open(data_dir / SERVER_LOG_FILE, "ab") as log:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )


def _wait_for_server(
    data_dir: Path, process: subprocess.Popen[bytes], timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conn = read_connection(data_dir)
        if conn is not None and conn["pid"] == process.pid and server_answers(conn["url"]):
            return conn
        if process.poll() is not None:
            raise LocalServerError(
                f"The embedded Linkis server exited with code {process.returncode} on start. "
                f"Its log ({data_dir / SERVER_LOG_FILE}) ends with:\n{log_tail(data_dir)}"
            )
        time.sleep(0.1)
    raise LocalServerError(
        f"The embedded Linkis server did not answer within {timeout:.0f} s (pid {process.pid}). "
        f"Its log ({data_dir / SERVER_LOG_FILE}) ends with:\n{log_tail(data_dir)}"
    )
