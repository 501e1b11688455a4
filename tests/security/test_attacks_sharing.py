"""One user's jobs must not keep another user's from running: bob fills every worker with
endless jobs and queues more, and alice's job still starts and ends."""

from __future__ import annotations

from pathlib import Path

import requests
from support.serverproc import ServerProcess, start_server
from support.waiting import wait_until

from linkis_kernel import wire

ALICE = {"name": "alice", "password": "alice-password-1", "token": "alice-token-1"}
BOB = {"name": "bob", "password": "bob-password-1", "token": "bob-token-1"}
ENDLESS = "select count(*) from range(100000000000000)"
WORKERS = 2


def _as(server: ServerProcess, user: dict[str, str]) -> requests.Session:
    session = requests.Session()
    session.headers.update(server.token_headers(user["name"], user["token"]))
    return session


def test_a_user_who_fills_every_worker_does_not_hold_up_another(tmp_path: Path) -> None:
    args = ["--workers", str(WORKERS)]
    with start_server(tmp_path / "data", users=[ALICE, BOB], args=args) as server:
        alice, bob = _as(server, ALICE), _as(server, BOB)
        endless = [server.submit(ENDLESS, session=bob) for _ in range(WORKERS + 2)]
        try:
            first = endless[0]["execID"]
            wait_until(lambda: server.status(first, session=bob) == wire.RUNNING, 20)
            queued = endless[-1]["execID"]
            assert server.status(queued, session=bob) == wire.SCHEDULED  # bob's own limit holds
            job = server.submit("select 42 as answer", session=alice)
            assert server.wait(job["execID"], session=alice, timeout=20) == wire.SUCCEED
            assert server.status(queued, session=bob) == wire.SCHEDULED
        finally:
            for each in endless:
                bob.get(server.api(f"entrance/{each['execID']}/kill"), timeout=10)
