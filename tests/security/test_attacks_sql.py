"""Attacks on SQL confinement beyond tests/server/test_sql_isolation.py: bob's SQL uses what
DuckDB still allows him (his allowed paths, his own files folder) to reach what is not his."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.serverproc import ServerProcess, start_server
from support.twousers import ALICE, BOB, user_session

from linkis_kernel import wire


def _run(server: ServerProcess, user: dict[str, str], code: str) -> tuple[str, str]:
    """Run SQL as `user`; the final state and the job's log."""
    session = user_session(server, user)
    job = server.submit(code, session=session)
    state = server.wait(job["execID"], session=session)
    log = session.get(server.api(f"entrance/{job['execID']}/log"), params={"fromLine": 1})
    return state, "\n".join(log.json()["data"]["log"])


def _count(server: ServerProcess, user: dict[str, str], code: str) -> str:
    session = user_session(server, user)
    job = server.submit(code, session=session)
    assert server.wait(job["execID"], session=session) == wire.SUCCEED
    return server.result_rows(job["taskID"], session=session)[0][0]


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server on which no user has run SQL yet (so bob's database is the only one open)."""
    with start_server(tmp_path / "data", users=[ALICE, BOB]) as server:
        yield server


def test_a_detached_demo_database_cannot_be_attached_read_write(
    fresh_server: ServerProcess,
) -> None:
    """The demo file stays among the paths bob's DuckDB may open; detached, it must not become
    writable for him (it is everyone's)."""
    demo = fresh_server.data_dir / "sql" / "demo.duckdb"
    code = (
        f"detach demo; attach '{demo}' as mine;"
        " delete from mine.orders; create table mine.planted as select 1 as x; checkpoint mine"
    )
    state, _ = _run(fresh_server, BOB, code)
    assert state == wire.FAILED
    assert _count(fresh_server, ALICE, "select count(*) from demo.orders") == "5000"
    assert _count(fresh_server, BOB, "select count(*) from demo.orders") == "5000"
    tables = "select count(*) from duckdb_tables() where database_name = 'demo'"
    assert _count(fresh_server, ALICE, tables) == "4"


def test_links_a_shell_job_plants_do_not_widen_sql(fresh_server: ServerProcess) -> None:
    """Bob's Shell job may write into the folder his SQL reads; links it leaves there to
    users.json, the data dir or alice's area must not let his SQL through."""
    data = fresh_server.data_dir
    alice_files = data / "users" / "alice" / "files"
    alice_files.mkdir(parents=True)
    (alice_files / "secret.csv").write_text("secret\nalice's own words\n")
    links = f"ln -s {data}/users.json u.json; ln -s {data} data; ln -s {alice_files} alice"
    session = user_session(fresh_server, BOB)
    job = fresh_server.submit(
        f"cd $HOME && {links}", session=session, engine="shell", run_type="shell"
    )
    assert fresh_server.wait(job["execID"], session=session) == wire.SUCCEED
    mine = data / "users" / "bob" / "files"
    assert (mine / "u.json").is_symlink() and (mine / "alice").is_symlink()
    for code in (
        f"select content from read_text('{mine}/u.json')",
        f"select * from read_csv('{mine}/alice/secret.csv')",
        f"select * from glob('{mine}/data/*')",
        f"select content from read_text('{mine}/data/credentials.json')",
        f"copy (select 1 as x) to '{mine}/alice/planted.csv'",
        f"copy (select 1 as x) to '{mine}/data/planted.csv'",
    ):
        state, log = _run(fresh_server, BOB, code)
        assert state == wire.FAILED, code
        assert "Permission Error" in log, code
        assert "alice's own words" not in log and ALICE["token"] not in log
    assert not (alice_files / "planted.csv").exists() and not (data / "planted.csv").exists()
