"""Each user's SQL engine process (local/sqlengines.py) through a real server: ended when idle
and started again, restarted for the metadata endpoints after it died, gone with the server."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from support.bodies import LONG_SQL
from support.serverproc import history_state, sql_engine_pids, start_server
from support.twousers import ALICE, BOB, user_client, user_session
from support.waiting import wait_until

from linkis_kernel.wire import CANCELLED, RUNNING, TERMINAL_STATES


def test_an_idle_sql_engine_ends_and_the_next_job_starts_another(tmp_path: Path) -> None:
    args = ["--engine-idle-timeout", "1s"]
    with start_server(tmp_path / "data", args=args, users=[ALICE, BOB]) as server:
        alice = user_client(server, ALICE)
        alice.submit("create table kept as select 5 as v", engine="hive").wait(timeout=60)
        busy = alice.submit(LONG_SQL, engine="hive")
        assert history_state(alice, busy.task_id, {RUNNING}, 15) == RUNNING
        (first,) = sql_engine_pids(server, "alice")  # busy: the idle timeout cannot end it yet
        busy.kill()
        assert history_state(alice, busy.task_id, TERMINAL_STATES, 10) == CANCELLED
        assert wait_until(lambda: not sql_engine_pids(server, "alice"), 15)
        again = alice.submit("select v from kept", engine="hive")  # needs a new engine
        again.wait(timeout=60)
        assert again.results()[0].data.iloc[0, 0] == 5
        assert first not in sql_engine_pids(server, "alice")


def test_the_metadata_endpoints_start_a_new_engine_after_one_died(tmp_path: Path) -> None:
    with start_server(tmp_path / "data", users=[ALICE, BOB]) as server:
        user_client(server, ALICE).submit("create table t as select 1 as x", engine="hive").wait(60)
        (pid,) = sql_engine_pids(server, "alice")
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: pid not in sql_engine_pids(server, "alice"), 10)
        session = user_session(server, ALICE)
        answer = session.get(server.api("datasource/tables?database=main"), timeout=60).json()
        assert answer["status"] == 0, answer
        assert [t["tableName"] for t in answer["data"]["tables"]] == ["t"]
        (now,) = sql_engine_pids(server, "alice")
        assert now != pid


def test_sql_engines_end_with_the_server(tmp_path: Path) -> None:
    with start_server(tmp_path / "data", users=[ALICE, BOB]) as server:
        user_client(server, ALICE).submit("select 1", engine="hive").wait(timeout=60)
        assert sql_engine_pids(server, "alice")
    assert wait_until(lambda: not sql_engine_pids(server, "alice"), 10)
