"""Find or start the embedded Linkis server of a data directory.

Clients with no LINKIS_URL call `ensure_server()`: it reuses the server that the data
directory's `connection.json` names when that server answers, and otherwise starts
`python -m linkis_kernel serve --port 0` detached and waits for it. Only the standard library
and requests are used here, so this costs a client nothing of the server's weight.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

from ..wire import API_PREFIX

CONNECTION_FILE = "connection.json"
LOG_FILE = "server.log"
CONNECTION_KEYS = ("url", "user", "password", "token", "pid")


class LocalServerError(RuntimeError):
    """The embedded server could not be found or started."""


def default_data_dir() -> Path:
    """Where the embedded server keeps its data: `<jupyter data dir>/linkis-kernel`."""
    from jupyter_core.paths import jupyter_data_dir

    return Path(jupyter_data_dir()) / "linkis-kernel"


def read_connection(data_dir: Path) -> dict[str, Any] | None:
    """The data directory's `connection.json`, or None when absent or unreadable."""
    try:
        conn = json.loads((data_dir / CONNECTION_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(conn, dict) or any(key not in conn for key in CONNECTION_KEYS):
        return None
    return conn


def server_answers(url: str, timeout: float = 2.0) -> bool:
    """Whether a Linkis-compatible server answers at `url` (it needs no login for publicKey)."""
    try:
        response = requests.get(f"{url}{API_PREFIX}/user/publicKey", timeout=timeout)
        return response.json().get("status") == 0
    except (requests.RequestException, ValueError, AttributeError):
        return False


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
    with open(data_dir / LOG_FILE, "ab") as log:
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
                f"Its log ({data_dir / LOG_FILE}) ends with:\n{log_tail(data_dir)}"
            )
        time.sleep(0.1)
    raise LocalServerError(
        f"The embedded Linkis server did not answer within {timeout:.0f} s (pid {process.pid}). "
        f"Its log ({data_dir / LOG_FILE}) ends with:\n{log_tail(data_dir)}"
    )


def log_tail(data_dir: Path, lines: int = 20) -> str:
    """The last lines of the data directory's server log (empty when there is none)."""
    try:
        text = (data_dir / LOG_FILE).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def write_private_json(target: Path, value: Any) -> None:
    """Write a JSON file atomically, readable by its owner only (it may hold secrets)."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(value, handle, indent=2)
    os.replace(temporary, target)
