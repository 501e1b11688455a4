"""A real embedded Linkis server in a subprocess, for tests.


* `linkis_server` (session scope): one server for the whole test session, started with
  `python -m linkis_kernel serve --port 0 --data-dir <tmp>`. Use it unless a test needs its own
  instance. It yields a `ServerProcess`.
* `start_server(data_dir, env=None, args=(), users=None)`: start another instance (restart
  tests, a short session timeout via `LINKIS_LOCAL_SESSION_TIMEOUT`, extra users through
  `users.json`, `--workers 1`). Call `.stop()` when done (or use it as a context manager).

A `ServerProcess` has `url`, `user`, `password`, `token`, `data_dir`, `process`, `log_path`,
`api(path)` (the full URL of a path under the API prefix), `token_headers()`, `session()` (a
`requests.Session` logged in with the password), `client` (a `requests.Session` that sends the
token headers), `linkis_client(url=None, **options)` (a `LinkisClient` with the token),
`submit(code, ...)`, `wait(exec_id)`, `get_data(endpoint, **params)` (the `data` of a GET,
asserting success), and `result_paths(task_id)` and `result_rows(task_id)` (a finished job's
result sets and the rows of its first). The shared server also has a second user, `GUEST`
(name, password, token), for isolation tests. A server that does not write its `connection.json`
within `STARTUP_TIMEOUT` seconds fails the test loudly with its log.

`wait_for_state(server, exec_id, state)` and `history_state(client, task_id, states)` poll a
job until it gets there; `stop_child(pid)` stops a server the launcher started in this process;
`sql_engine_pids(server, user)` are the ids of a user's SQL engine processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from linkis_kernel import LinkisClient, wire

from .bodies import submit_body
from .waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
JOB_TIMEOUT = 30.0
GUEST = {"name": "guest", "password": "guest-password-1", "token": "guest-token-1"}


@dataclass
class ServerProcess:
    """A running `linkis-kernel serve` subprocess and what a client needs to reach it."""

    url: str
    user: str
    password: str = field(repr=False)
    token: str = field(repr=False)
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    startup_seconds: float = 0.0
    banner: str = ""
    _log_handle: Any = field(default=None, repr=False)
    _client: requests.Session | None = field(default=None, repr=False)

    def api(self, path: str) -> str:
        """The full URL of `path` under the Linkis API prefix."""
        return f"{self.url}{wire.API_PREFIX}/{path.lstrip('/')}"

    def token_headers(self, user: str | None = None, token: str | None = None) -> dict[str, str]:
        return {
            wire.TOKEN_USER_HEADER: user or self.user,
            wire.TOKEN_CODE_HEADER: token or self.token,
        }

    def session(self, user: str | None = None, password: str | None = None) -> requests.Session:
        """A requests.Session logged in (session cookie) as `user` (default: the server's)."""
        session = requests.Session()
        body = {"userName": user or self.user, "password": password or self.password}
        response = session.post(self.api("user/login"), json=body, timeout=10)
        assert response.json()["status"] == 0, response.text
        session.linkis_user = body["userName"]  # type: ignore[attr-defined]
        return session

    @property
    def client(self) -> requests.Session:
        """A requests.Session authenticated by the token headers of the server's user."""
        if self._client is None:
            self._client = requests.Session()
            self._client.headers.update(self.token_headers())
        return self._client

    def linkis_client(self, url: str | None = None, **options: Any) -> LinkisClient:
        """A `LinkisClient` with the server's user and token, at `url` (default: the server's,
        or a proxy in front of it); `options` go to `LinkisClient`."""
        return LinkisClient(url or self.url, user=self.user, token=self.token, **options)

    def submit(
        self,
        code: str,
        *,
        engine: str = "spark",
        run_type: str = "sql",
        creator: str = wire.DEFAULT_CREATOR,
        session: requests.Session | None = None,
        **body: Any,
    ) -> dict[str, Any]:
        """POST entrance/submit (1.x body); returns `data` ({execID, taskID}), asserting success.

        `engine` without a version takes the default one; `body` adds top-level keys (params...).
        """
        session = session or self.client
        user = _session_user(session) or self.user
        payload = submit_body(code, user=user, engine=engine, run_type=run_type, creator=creator)
        payload.update(body)
        response = session.post(self.api("entrance/submit"), json=payload, timeout=10)
        envelope = response.json()
        assert envelope["status"] == 0, envelope
        return envelope["data"]

    def wait(
        self, exec_id: str, *, session: requests.Session | None = None, timeout: float = JOB_TIMEOUT
    ) -> str:
        """Poll entrance status until the job is in a terminal state; returns that state."""

        def final_state() -> str | None:
            state = self.status(exec_id, session=session)
            return state if state in wire.TERMINAL_STATES else None

        return wait_until(final_state, timeout, message=f"job {exec_id} did not finish")

    def status(self, exec_id: str, *, session: requests.Session | None = None) -> str:
        """The job's state from entrance/{id}/status, asserting success."""
        return self.get_data(f"entrance/{exec_id}/status", session=session)["status"]

    def get_data(
        self,
        endpoint: str,
        /,
        *,
        session: requests.Session | None = None,
        timeout: float = 10,
        **params: Any,
    ) -> Any:
        """GET `endpoint` (a path under the API prefix) with query `params` as `session`'s user
        (default: the server's); returns the envelope's `data`, asserting status 0."""
        answer = (session or self.client).get(self.api(endpoint), params=params, timeout=timeout)
        envelope = answer.json()
        assert envelope["status"] == 0, envelope
        return envelope["data"]

    def result_paths(self, task_id: int, *, session: requests.Session | None = None) -> list[str]:
        """The paths of a finished task's result sets in name order, from its job history row
        and its result folder (none if the job wrote no result set)."""
        task = self.get_data(f"jobhistory/{task_id}/get", session=session)["task"]
        location = task["resultLocation"]
        tree = self.get_data("filesystem/getDirFileTrees", session=session, path=location)
        children = (tree["dirFileTrees"] or {}).get("children") or []
        return [child["path"] for child in sorted(children, key=lambda c: c["name"])]

    def result_rows(
        self,
        task_id: int,
        *,
        session: requests.Session | None = None,
        timeout: float = 10,
        **params: Any,
    ) -> list[list[str | None]]:
        """The rows of a finished task's first result set, read with filesystem/openFile
        (`params` such as pageSize go with it)."""
        path = self.result_paths(task_id, session=session)[0]
        page = self.get_data(
            "filesystem/openFile", session=session, timeout=timeout, path=path, **params
        )
        return page["fileContent"]

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> int:
        """SIGTERM, wait, SIGKILL if needed; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None
        return self.process.returncode

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _session_user(session: requests.Session) -> str | None:
    return getattr(session, "linkis_user", None) or session.headers.get(wire.TOKEN_USER_HEADER)


def start_server(
    data_dir: Path,
    env: dict[str, str] | None = None,
    args: Sequence[str] = (),
    users: list[dict[str, str]] | None = None,
    cwd: Path = REPO_ROOT,
) -> ServerProcess:
    """Start `linkis-kernel serve --port 0` on `data_dir` and wait until it answers.

    `env` is added to the environment; `args` are extra `serve` options (e.g. `--workers 1`);
    `users` are written to `data_dir/users.json` first; `cwd` is where it starts (its
    linkis_kernel is the one found from there).
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    if users is not None:
        (data_dir / "users.json").write_text(json.dumps(users))
    connection = data_dir / "connection.json"
    connection.unlink(missing_ok=True)
    log_path = data_dir / f"serve-{time.monotonic_ns()}.out"
    log_handle = open(log_path, "wb")  # noqa: SIM115 (closed by ServerProcess.stop)
    command = [sys.executable, "-m", "linkis_kernel", "serve", "--port", "0"]
    command += ["--data-dir", str(data_dir), *args]
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=log_handle,
        stderr=subprocess.STDOUT,
    )
    conn = _wait_for_connection(connection, process, log_path, started)
    server = ServerProcess(
        url=conn["url"],
        user=conn["user"],
        password=conn["password"],
        token=conn["token"],
        data_dir=data_dir,
        process=process,
        log_path=log_path,
        startup_seconds=time.monotonic() - started,
        banner=_banner(log_path),
        _log_handle=log_handle,
    )
    return server


def _wait_for_connection(
    connection: Path, process: subprocess.Popen[bytes], log_path: Path, started: float
) -> dict[str, Any]:
    def written() -> dict[str, Any] | None:
        if process.poll() is not None:
            pytest.fail(
                f"linkis-kernel serve exited with {process.returncode} on start; its output:\n"
                + log_path.read_text(errors="replace"),
                pytrace=False,
            )
        try:
            conn = json.loads(connection.read_text())
        except (OSError, ValueError):
            return None
        return conn if conn.get("pid") == process.pid and _banner(log_path) else None

    try:
        return wait_until(written, STARTUP_TIMEOUT - (time.monotonic() - started), 0.05)
    except AssertionError:
        process.kill()
        process.wait()
        pytest.fail(
            f"linkis-kernel serve did not start within {STARTUP_TIMEOUT:.0f} s; its output:\n"
            + log_path.read_text(errors="replace"),
            pytrace=False,
        )


def _banner(log_path: Path) -> str:
    """The line `serve` prints once it listens (empty until then)."""
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith("Linkis-compatible server at"):
            return line
    return ""


def wait_for_state(server: ServerProcess, exec_id: str, state: str, timeout: float = 20.0) -> None:
    """Poll entrance status until the job is in `state` (e.g. Running); fail after `timeout` s."""
    wait_until(
        lambda: server.status(exec_id) == state, timeout, message=f"{exec_id} never reached {state}"
    )


def history_state(
    client: LinkisClient, task_id: int, states: Collection[str], within: float = 5.0
) -> str:
    """The task's state in job history, polled until it is one of `states` (fails after
    `within` seconds, naming the last state seen)."""
    seen: list[str] = []

    def reached() -> str | None:
        seen.append(client.jobhistory_get(task_id).status)
        return seen[-1] if seen[-1] in states else None

    return wait_until(
        reached,
        within,
        0.1,
        message=lambda: f"task {task_id} stayed {seen[-1]}, not {' or '.join(sorted(states))}",
    )


def stop_child(pid: int, timeout: float = 10.0) -> None:
    """SIGTERM a server the launcher started in this process and reap it; SIGKILL if it lingers."""
    os.kill(pid, signal.SIGTERM)

    def reaped() -> bool:
        try:
            return os.waitpid(pid, os.WNOHANG)[0] == pid
        except ChildProcessError:  # already reaped, or not our child
            return True

    try:
        wait_until(reaped, timeout, 0.05)
    except AssertionError:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def sql_engine_pids(server: ServerProcess, user: str) -> list[int]:
    """The SQL engine processes of `user` on `server` (their command line names both)."""
    wanted = [b"linkis_kernel.local.sqlengine", str(server.data_dir).encode(), user.encode()]
    found = []
    for entry in Path("/proc").iterdir():
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"linkis_kernel.local.sqlengine" in words:
            start = words.index(wanted[0])
            if words[start : start + 3] == wanted:
                found.append(int(entry.name))
    return found
