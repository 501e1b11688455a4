"""`serve --engine-memory`: no job of one user can take the server's memory.

Each engine process (a user's SQL engine, Python and PySpark engines, shell jobs) may use at most
the memory the option gives it. A job that asks for more fails with an error saying so, the
server and the other user's jobs go on, and the next job of the same user runs again.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.procfs import stat_fields
from support.serverproc import ServerProcess, sql_engine_pids, start_server
from support.twousers import ALICE, BOB, user_client
from support.waiting import wait_until

from linkis_kernel.local.engines import ERR_ENGINE

CAP = "400MB"
PYTHON_HOG = "hog = bytearray(2 << 30)"
SHELL_HOG = "python3 -c 'hog = bytearray(2 << 30)'"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("engine-memory")
    with start_server(data, args=["--engine-memory", CAP], users=[BOB, ALICE]) as started:
        yield started


def test_a_python_job_gets_a_memory_error_naming_the_cap(server: ServerProcess) -> None:
    bob = user_client(server, BOB)
    bob.submit("kept = 41", engine="python").wait(timeout=90)
    hog = bob.submit(PYTHON_HOG, engine="python")
    hog.wait(timeout=90, raise_on_failure=False)
    assert hog.state == "Failed"
    failure = str(hog.failure())
    assert "MemoryError" in failure and "at most 400 MB" in failure
    assert "serve --engine-memory" in failure
    after = bob.submit("print(kept + 1)", engine="python")
    after.wait(timeout=90)
    assert str(after.results()[0].data).strip() == "42"  # the engine lived on


def test_a_shell_job_cannot_take_more_than_the_cap(server: ServerProcess) -> None:
    hog = user_client(server, BOB).submit(SHELL_HOG, engine="shell")
    hog.wait(timeout=90, raise_on_failure=False)
    assert hog.state == "Failed"
    assert "MemoryError" in str(hog.failure())


def test_memory_under_the_cap_is_there(server: ServerProcess) -> None:
    job = user_client(server, ALICE).submit(
        "fits = bytearray(200 << 20)\nprint(len(fits) >> 20)", engine="python"
    )
    job.wait(timeout=90)
    assert str(job.results()[0].data).strip() == "200"


def test_a_sql_query_whose_values_exceed_the_cap_fails_alone(server: ServerProcess) -> None:
    bob, alice = user_client(server, BOB), user_client(server, ALICE)
    bob.submit("create table mine as select 7 as x", engine="hive").wait(timeout=90)
    hog = bob.submit("select repeat('x', 10000000) from range(5000)", engine="hive")
    hog.wait(timeout=120, raise_on_failure=False)
    assert hog.state == "Failed"
    failure = str(hog.failure())
    assert "at most 400 MB" in failure and "serve --engine-memory" in failure
    assert "SET memory_limit" not in failure  # DuckDB's advice is not the user's to follow
    assert server.process.poll() is None
    theirs = alice.submit("select count(*) from demo.orders", engine="hive")
    theirs.wait(timeout=90)
    mine = bob.submit("select x from mine", engine="hive")
    mine.wait(timeout=90)
    assert mine.results()[0].data.iloc[0, 0] == 7  # what bob had is still there


def test_a_sql_engine_that_dies_fails_its_job_and_the_next_starts_a_new_one(
    server: ServerProcess,
) -> None:
    alice = user_client(server, ALICE)
    alice.submit("create table kept as select 42 as answer", engine="hive").wait(timeout=90)
    (pid,) = sql_engine_pids(server, "alice")
    slow = alice.submit("select count(*) from range(10000000000) a", engine="hive")
    wait_until(lambda: slow.refresh().state == "Running", 30)
    os.kill(pid, signal.SIGKILL)
    slow.wait(timeout=60, raise_on_failure=False)
    assert slow.state == "Failed"
    failure = slow.failure()
    assert failure.err_code == ERR_ENGINE
    assert f"Your SQL engine (pid {pid}) exited" in str(failure.err_desc)
    again = alice.submit("select answer from kept", engine="hive")  # the database kept it
    again.wait(timeout=90)
    assert again.results()[0].data.iloc[0, 0] == 42
    (now,) = sql_engine_pids(server, "alice")
    assert now != pid


def test_sql_runs_outside_the_server_process(server: ServerProcess) -> None:
    bob = user_client(server, BOB)
    bob.submit("select 1", engine="jdbc").wait(timeout=90)
    (pid,) = sql_engine_pids(server, "bob")
    assert _parent(pid) == server.process.pid
    limit = (Path(f"/proc/{pid}/limits").read_text()).splitlines()
    data = next(line for line in limit if line.startswith("Max data size"))
    assert data.split()[3] == str(400 << 20)


def _parent(pid: int) -> int:
    return int(stat_fields(pid)[1])
