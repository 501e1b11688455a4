"""One user's jobs must not keep another user's from running: bob fills every worker with
endless jobs and queues more, and alice's job still starts and ends."""

from __future__ import annotations

from pathlib import Path

from support.serverproc import start_server
from support.twousers import ALICE, BOB, user_session
from support.waiting import wait_until

from linkis_kernel import wire

ENDLESS = "select count(*) from range(100000000000000)"
WORKERS = 2


def test_a_user_who_fills_every_worker_does_not_hold_up_another(tmp_path: Path) -> None:
    args = ["--workers", str(WORKERS)]
    with start_server(tmp_path / "data", users=[ALICE, BOB], args=args) as server:
        alice, bob = user_session(server, ALICE), user_session(server, BOB)
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
