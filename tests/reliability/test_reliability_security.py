"""Security of the embedded server beyond `tests/server/`: a running job another user cannot
stop, more traversal spellings, bodies too large or too deep, and login throttling that is per
user and address and does not tell which user names exist."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.serverproc import GUEST, ServerProcess, start_server
from support.twousers import guest_client

from linkis_kernel import wire
from linkis_kernel.local.app import MAX_BODY_BYTES


@pytest.fixture(scope="module")
def guest(linkis_server: ServerProcess) -> requests.Session:
    return guest_client(linkis_server)


@pytest.fixture(scope="module")
def owner_files(linkis_server: ServerProcess) -> dict[str, Any]:
    """A finished job of the main user: its ids, log path, result folder and the data dir."""
    job = linkis_server.submit("select 'owner-only' as secret")
    assert linkis_server.wait(job["execID"]) == wire.SUCCEED
    task = linkis_server.get_data(f"jobhistory/{job['taskID']}/get")["task"]
    return {
        **job,
        "log": task["logPath"],
        "dir": task["resultLocation"],
        "data_dir": str(linkis_server.data_dir),
    }


def test_another_user_cannot_stop_a_running_job(
    linkis_server: ServerProcess, guest: requests.Session
) -> None:
    job = linkis_server.submit("sleep 20", engine="shell", run_type="shell")
    exec_id, task_id = job["execID"], job["taskID"]
    batch = {"idList": [exec_id], "taskIDList": [task_id]}
    attempts = [
        guest.post(linkis_server.api(f"entrance/{exec_id}/kill"), json={}, timeout=10),
        guest.post(linkis_server.api("entrance/killJobs"), json=batch, timeout=10),
        guest.post(linkis_server.api(f"entrance/{exec_id}/killJobs"), json=batch, timeout=10),
        guest.get(linkis_server.api(f"entrance/{task_id}/log"), timeout=10),
        guest.get(linkis_server.api(f"entrance/{task_id}/progress"), timeout=10),
    ]
    try:
        for response in attempts:
            body = response.json()
            assert response.status_code in (400, 403), response.text
            refusals = [body, *body["data"].get("messages", [])]
            assert any(r["status"] != 0 and _names_a_refusal(r["message"]) for r in refusals), body
        state = linkis_server.get_data(f"entrance/{exec_id}/status")["status"]
        assert state in (wire.SCHEDULED, wire.RUNNING, wire.INITED)
    finally:
        linkis_server.client.get(linkis_server.api(f"entrance/{exec_id}/kill"), timeout=10)
    assert linkis_server.wait(exec_id) == wire.CANCELLED


def _names_a_refusal(message: str) -> bool:
    return "no permission" in message.lower() or "of your" in message


TRAVERSALS = [
    "{data_dir}/result/../credentials.json",
    "{data_dir}//credentials.json",
    "{data_dir}/./users.json",
    "{dir}/./../../{guest}",
    "file://{dir}/%2e%2e/%2e%2e/%2e%2e",
    "file://{data_dir}/log",
    "{data_dir}/history.sqlite",
    "{data_dir}/duckdb/linkis.duckdb",
    "file:/{data_dir}/credentials.json",
    "~/.ssh/id_rsa",
    "\\\\host\\share\\x",
    "/proc/self/environ",
]


@pytest.mark.parametrize("endpoint", ["getDirFileTrees", "openFile", "openLog", "resultsetToExcel"])
@pytest.mark.parametrize("raw", TRAVERSALS)
def test_more_traversal_spellings_are_refused(
    linkis_server: ServerProcess, owner_files: dict[str, Any], endpoint: str, raw: str
) -> None:
    path = raw.format(guest=GUEST["name"], **owner_files)
    response = linkis_server.client.get(
        linkis_server.api(f"filesystem/{endpoint}"), params={"path": path}, timeout=10
    )
    # resultsetToExcel answers errors as HTTP 200 text
    # (docs/linkis-rest.md, "Errors and HTTP codes")
    if endpoint == "resultsetToExcel":
        assert response.status_code == 200 and response.text.startswith("error(错误):")
    else:
        assert response.status_code in (400, 403), response.text
        assert response.json()["status"] != 0
    for secret in (linkis_server.password, linkis_server.token, GUEST["token"]):
        assert secret not in response.text


@pytest.mark.parametrize(
    "job_id", ["..", "%2e%2e", "..%2F..%2Fcredentials.json", "exec_id%00", "%2Fetc%2Fpasswd"]
)
def test_traversal_in_job_ids_is_a_clear_refusal(linkis_server: ServerProcess, job_id: str) -> None:
    for path in (f"entrance/{job_id}/status", f"entrance/{job_id}/log", f"jobhistory/{job_id}/get"):
        response = linkis_server.client.get(linkis_server.api(path), timeout=10)
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["status"] == 1 and body["message"]
        assert "Traceback" not in response.text and "root:" not in response.text


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * min(size, total - sent)
        sent += size


@pytest.mark.parametrize("route", ["entrance/submit", "user/login"])
def test_a_streamed_body_over_the_limit_is_refused(
    linkis_server: ServerProcess, route: str
) -> None:
    response = requests.post(
        linkis_server.api(route),
        data=_chunks(MAX_BODY_BYTES + 1),  # chunked: no Content-Length to check up front
        headers={"Content-Type": "application/json", **linkis_server.token_headers()},
        timeout=30,
    )
    assert response.status_code == 413
    assert "larger than 10 MiB" in response.json()["message"]


def test_a_body_nested_too_deeply_is_refused_clearly(linkis_server: ServerProcess) -> None:
    body = "[" * 100_000 + "]" * 100_000
    response = linkis_server.client.post(
        linkis_server.api("entrance/submit"),
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    message = response.json()["message"]
    assert "nests arrays or objects too deeply" in message and "Recursion" not in message


@pytest.fixture(scope="module")
def login_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("throttle"), users=[GUEST]) as server:
        yield server


def _login(server: ServerProcess, name: str, password: str) -> dict:
    body = {"userName": name, "password": password}
    return requests.post(server.api("user/login"), json=body, timeout=10).json()


def test_throttling_is_per_user_and_hides_which_users_exist(login_server: ServerProcess) -> None:
    server = login_server
    for _ in range(6):
        _login(server, server.user, "wrong")
    throttled = _login(server, server.user, server.password)
    assert throttled["status"] != 0 and throttled["message"].startswith("Too many failed logins")
    assert _login(server, GUEST["name"], GUEST["password"])["status"] == 0
    unknown = [_login(server, "nobody-here", "wrong")["message"] for _ in range(6)]
    known = [_login(server, GUEST["name"], "wrong")["message"] for _ in range(6)]
    # The same answers whether the user exists or not (apart from the name itself).
    assert [m.replace("nobody-here", GUEST["name"]) for m in unknown] == known
    assert known[-1].startswith("Too many failed logins")
    log = Path(server.data_dir, "server.log").read_text()
    assert "wrong" not in log and server.password not in log


def test_oversized_headers_close_the_connection_and_the_server_keeps_answering(
    linkis_server: ServerProcess,
) -> None:
    with pytest.raises(requests.ConnectionError):  # tornado's 64 KiB header limit: no answer
        linkis_server.client.get(
            linkis_server.api("jobhistory/list"), params={"creator": "x" * 100_000}, timeout=10
        )
    assert linkis_server.client.get(linkis_server.api("jobhistory/list"), timeout=10).ok
