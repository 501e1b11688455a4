"""HTTP attacks on the server's memory: answers a user asks for and never reads stay in the
server until sent, so only ANSWERS_PER_USER of one user's requests are answered at once."""

from __future__ import annotations

import select
import socket
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import pytest
import requests
from support.serverproc import ServerProcess, start_server
from support.twousers import ALICE, BOB, user_session
from support.waiting import wait_until

from linkis_kernel import wire
from linkis_kernel.local.handler import ANSWERS_PER_USER
from linkis_kernel.local.history import MAX_LIST_CODE_CHARS


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    with start_server(tmp_path / "data", users=[ALICE, BOB]) as started:
        yield started


def _big_result(server: ServerProcess, bob: requests.Session) -> str:
    """A result set of 10 MB (more than the sockets of a connection buffer)."""
    job = server.submit("select repeat('x', 10000) as s from range(1000)", session=bob)
    assert server.wait(job["execID"], session=bob) == wire.SUCCEED
    task = bob.get(server.api(f"jobhistory/{job['taskID']}/get"), timeout=10).json()["data"]
    return f"{task['task']['resultLocation']}/_0.dolphin"


def _unread_requests(server: ServerProcess, path: str, count: int) -> list[socket.socket]:
    """`count` connections asking bob's big page, whose answers are never read."""
    host, port = urllib.parse.urlsplit(server.url).netloc.split(":")
    query = urllib.parse.urlencode({"path": path, "pageSize": 1000})
    request = (
        f"GET {wire.API_PREFIX}/filesystem/openFile?{query} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"{wire.TOKEN_USER_HEADER}: {BOB['name']}\r\n"
        f"{wire.TOKEN_CODE_HEADER}: {BOB['token']}\r\n\r\n"
    )
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((host, int(port)))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(request.encode())
        sockets.append(sock)
    return sockets


def _answering(sockets: list[socket.socket]) -> int:
    """How many of `sockets` have the first bytes of their answer waiting (in flight)."""
    readable, _, _ = select.select(sockets, [], [], 0)
    return len(readable)


def test_answers_a_user_leaves_unread_hold_up_only_that_users_requests(
    server: ServerProcess,
) -> None:
    alice, bob = user_session(server, ALICE), user_session(server, BOB)
    path = _big_result(server, bob)
    assert bob.get(server.api("jobhistory/list"), timeout=10).json()["status"] == 0
    sockets = _unread_requests(server, path, ANSWERS_PER_USER + 4)
    assert wait_until(lambda: _answering(sockets) >= ANSWERS_PER_USER, 30)
    assert _answering(sockets) == ANSWERS_PER_USER  # the others wait for a slot
    with ThreadPoolExecutor(1) as pool:
        try:
            held = pool.submit(bob.get, server.api("jobhistory/list"), timeout=60)
            # Bob's answers in flight are at their cap: his request waits (an answer takes
            # milliseconds; nothing signals that one is held, so give it 3 s to come).
            with pytest.raises(FutureTimeout):
                held.result(timeout=3)
            listed = alice.get(server.api("jobhistory/list"), timeout=10)
            assert listed.status_code == 200 and listed.json()["status"] == 0
            assert not held.done(), "bob's request was answered while his cap was reached"
        finally:
            for sock in sockets:
                sock.close()
        # Once his unread answers are gone, the request that waited is answered.
        assert held.result(timeout=20).json()["status"] == 0


def test_a_history_page_of_huge_code_is_refused_not_read_whole(server: ServerProcess) -> None:
    """Each submit may carry 10 MiB of code; one jobhistory/list page reads at most
    MAX_LIST_CODE_CHARS of it (and listundonetasks, which uses the same query)."""
    bob = user_session(server, BOB)
    code = "select 1 as n -- " + "x" * (MAX_LIST_CODE_CHARS // 4)
    for _ in range(5):
        job = server.submit(code, session=bob)
        assert server.wait(job["execID"], session=bob) == wire.SUCCEED
    refused = bob.get(server.api("jobhistory/list"), params={"pageSize": 5}, timeout=30)
    assert refused.status_code == 400
    assert "ask for fewer tasks per page" in refused.json()["message"]
    listed = bob.get(server.api("jobhistory/list"), params={"pageSize": 2}, timeout=30).json()
    assert listed["status"] == 0 and len(listed["data"]["tasks"]) == 2
    assert listed["data"]["tasks"][0]["executionCode"] == code


def test_unfinished_tasks_of_huge_code_are_refused_not_read_whole(server: ServerProcess) -> None:
    """jobhistory/listundonetasks lists running and waiting jobs with their code: a page of
    them also reads at most MAX_LIST_CODE_CHARS."""
    bob = user_session(server, BOB)
    # One engine runs them one at a time: the first runs, the others wait for it.
    code = "import time\ntime.sleep(60)  # " + "x" * (MAX_LIST_CODE_CHARS // 4)
    jobs = [server.submit(code, engine="python", run_type="python", session=bob) for _ in range(5)]
    try:
        undone = server.api("jobhistory/listundonetasks")
        refused = bob.get(undone, params={"pageSize": 5}, timeout=30)
        assert refused.status_code == 400
        assert "ask for fewer tasks per page" in refused.json()["message"]
        listed = bob.get(undone, params={"pageSize": 2}, timeout=30).json()
        assert listed["status"] == 0 and listed["data"]["totalPage"] == 5
        tasks = listed["data"]["tasks"]
        assert [task["taskID"] for task in tasks] == [jobs[4]["taskID"], jobs[3]["taskID"]]
        assert tasks[0]["executionCode"] == code
    finally:
        for job in jobs:
            bob.get(server.api(f"entrance/{job['execID']}/kill"), timeout=10)
