"""`linkis-kernel serve` start-up and shutdown, concurrency, and the launcher clients use."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from support.serverproc import REPO_ROOT, ServerProcess, start_server, stop_child

from linkis_kernel import wire
from linkis_kernel.client.embedded import ensure_server
from linkis_kernel.local.server import _user_memory
from linkis_kernel.wire import read_connection, server_answers

CLIENTS = 20
JOBS_PER_CLIENT = 10


def _serve(
    data_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `serve` to its end (for start-ups that must fail)."""
    command = [sys.executable, "-m", "linkis_kernel", "serve", "--data-dir", str(data_dir), *args]
    return subprocess.run(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def test_serve_prints_its_url_and_writes_connection_json(tmp_path: Path) -> None:
    with start_server(tmp_path / "fresh") as server:
        assert server.banner.startswith(f"Linkis-compatible server at {server.url} ")
        conn = json.loads((server.data_dir / "connection.json").read_text())
        assert set(conn) == {"url", "user", "password", "token", "pid"}
        assert conn["pid"] == server.process.pid
        assert server_answers(conn["url"])


def test_sigint_shuts_down_cleanly(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(10) == 0
    server.stop()
    assert not (tmp_path / "connection.json").exists()
    assert "server stopped" in (tmp_path / "server.log").read_text()


def test_second_server_on_the_same_data_dir_is_refused(linkis_server: ServerProcess) -> None:
    before = (linkis_server.data_dir / "connection.json").read_text()
    result = _serve(linkis_server.data_dir, "--port", "0")
    assert result.returncode == 1
    assert f"already runs at {linkis_server.url}" in result.stderr
    assert "Traceback" not in result.stderr
    assert (linkis_server.data_dir / "connection.json").read_text() == before


def test_port_in_use_is_reported(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = _serve(tmp_path, "--port", str(port))
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("users", "fragment"),
    [("{", "is not valid JSON"), ('{"name": "x"}', "JSON array"), ('[{"name": "x"}]', "entry 1")],
)
def test_bad_users_file_is_reported(tmp_path: Path, users: str, fragment: str) -> None:
    (tmp_path / "users.json").write_text(users)
    result = _serve(tmp_path, "--port", "0")
    assert result.returncode == 1
    assert fragment in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (["--workers", "0"], {}, "--workers must be at least 1"),
        ([], {"LINKIS_LOCAL_SESSION_TIMEOUT": "soon"}, "must be a positive number of seconds"),
        (["--engine-kill-grace", "0"], {}, "--engine-kill-grace must be a positive number"),
        (["--engine-memory", "lots"], {}, "--engine-memory must be a size of at least 256MB"),
        (["--engine-memory", "100MB"], {}, "--engine-memory must be a size of at least 256MB"),
        (["--max-processes-per-user", "3"], {}, "--max-processes-per-user must be at least 16"),
        (["--user-memory", "lots"], {}, "--user-memory must be a size of at least 256MB"),
        (["--user-memory", "100MB"], {}, "--user-memory must be a size of at least 256MB"),
        (["--user-memory", "0"], {}, "--user-memory must be a size of at least 256MB"),
        ([], {"LINKIS_KERNEL_SPARK": "hadoop"}, "LINKIS_KERNEL_SPARK must be one of auto"),
        (["--disk-quota", "lots"], {}, "--disk-quota must be a size such as 500MB or 2GB"),
    ],
)
def test_bad_settings_are_reported(
    tmp_path: Path, args: list[str], env: dict[str, str], fragment: str
) -> None:
    result = _serve(tmp_path, "--port", "0", *args, env=env)
    assert result.returncode == 1
    assert fragment in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "engine_memory", "expected"),
    [
        ("auto", 300 << 20, 300 << 20),  # what each engine process may use
        ("AUTO", None, None),  # no engine memory cap (one user): no memory limit either
        (" none ", 300 << 20, None),
        ("2GB", None, 2 << 30),
        ("512m", 4 << 30, 512 << 20),  # below --engine-memory is allowed
    ],
)
def test_user_memory_is_read_like_engine_memory(
    text: str, engine_memory: int | None, expected: int | None
) -> None:
    assert _user_memory(text, engine_memory) == expected


def test_unwritable_data_dir_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = _serve(blocker / "data", "--port", "0")
    assert result.returncode == 1
    assert "pass --data-dir with a directory you can write to" in result.stderr


def test_concurrent_clients(linkis_server: ServerProcess) -> None:
    """20 clients, each with its own session, submit 200 short SQL jobs and poll them all."""
    outcomes: list[tuple[str, int, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        try:
            session = requests.Session()
            session.headers.update(linkis_server.token_headers())
            mine = [
                linkis_server.submit(f"select {number} as c, {n} as n", session=session)
                for n in range(JOBS_PER_CLIENT)
            ]
            for job in mine:
                state = linkis_server.wait(job["execID"], session=session, timeout=60)
                with lock:
                    outcomes.append((job["execID"], job["taskID"], state))
        except BaseException as err:
            with lock:
                errors.append(err)

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    print(f"{len(outcomes)} jobs from {CLIENTS} clients in {time.monotonic() - started:.1f} s")
    assert errors == []
    assert len(outcomes) == CLIENTS * JOBS_PER_CLIENT
    assert {state for _, _, state in outcomes} == {wire.SUCCEED}
    assert len({exec_id for exec_id, _, _ in outcomes}) == len(outcomes)
    assert len({task_id for _, task_id, _ in outcomes}) == len(outcomes)


def test_launcher_starts_a_server_and_reuses_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "launched"
    conn = ensure_server(data_dir)
    try:
        assert server_answers(conn["url"])
        assert read_connection(data_dir) == conn
        assert ensure_server(data_dir)["pid"] == conn["pid"]  # reused, not started again
        log = (data_dir / "server.log").read_text()
        assert "Linkis-compatible server at" in log
        assert conn["password"] not in log and conn["token"] not in log
        login = requests.post(
            f"{conn['url']}{wire.API_PREFIX}/user/login",
            json={"userName": conn["user"], "password": conn["password"]},
            timeout=10,
        ).json()
        assert login["status"] == 0
    finally:
        stop_child(conn["pid"])


def test_launcher_replaces_a_stale_connection_file(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    stale = {"url": dead_url, "user": "u", "password": "p", "token": "t", "pid": 999999}
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "connection.json").write_text(json.dumps(stale))
    conn = ensure_server(tmp_path)
    try:
        assert conn["url"] != dead_url and server_answers(conn["url"])
    finally:
        stop_child(conn["pid"])
