"""SQL isolation on the real server: each user's SQL runs in their own DuckDB database, confined
to their own folder, with the shared demo schema read-only (README, "SQL isolation")."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from support.serverproc import ServerProcess, start_server
from support.twousers import ALICE, BOB, user_session

from linkis_kernel import wire


@dataclass
class Outcome:
    state: str
    err_desc: str
    rows: list[list[str | None]]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("isolation"), users=[ALICE, BOB]) as started:
        yield started


@pytest.fixture(scope="module")
def alice(server: ServerProcess) -> requests.Session:
    return user_session(server, ALICE)


@pytest.fixture(scope="module")
def bob(server: ServerProcess) -> requests.Session:
    return user_session(server, BOB)


def _run(server: ServerProcess, session: requests.Session, code: str) -> Outcome:
    """Submit SQL as the session's user and wait; the state, errDesc and the last result's rows."""
    job = server.submit(code, session=session)
    state = server.wait(job["execID"], session=session)
    task = server.get_data(f"jobhistory/{job['taskID']}/get", session=session)["task"]
    rows: list[list[str | None]] = []
    if state == wire.SUCCEED:
        paths = server.result_paths(job["taskID"], session=session)
        if paths:
            page = server.get_data("filesystem/openFile", session=session, path=paths[-1])
            rows = page["fileContent"]
    return Outcome(state, task.get("errDesc") or "", rows)


def _refused(outcome: Outcome, *needles: str) -> str:
    assert outcome.state == wire.FAILED, outcome
    for needle in needles:
        assert needle in outcome.err_desc, outcome.err_desc
    return outcome.err_desc


def _files_dir(server: ServerProcess, user: dict[str, str]) -> Path:
    return server.data_dir / "users" / user["name"] / "files"


def _unique(name: str) -> str:
    return f"{name}_{uuid.uuid4().hex[:8]}"


# ---- files outside one's own folder -------------------------------------------------------


def test_users_json_is_out_of_reach(server: ServerProcess, bob: requests.Session) -> None:
    users_json = server.data_dir / "users.json"
    desc = _refused(
        _run(server, bob, f"select content from read_text('{users_json}')"),
        "Permission Error",
        "only under your own folder",
        str(_files_dir(server, BOB)),
    )
    for secret in (ALICE["password"], ALICE["token"], server.password, server.token):
        assert secret not in desc


def test_the_servers_environment_is_out_of_reach(
    server: ServerProcess, bob: requests.Session
) -> None:
    code = f"select content from read_text('/proc/{server.process.pid}/environ')"
    desc = _refused(_run(server, bob, code), "Permission Error")
    assert server.token not in desc and server.password not in desc


@pytest.mark.parametrize(
    "template",
    ["copy (select 1 as x) to '{target}.csv'", "attach '{target}.duckdb' as stolen"],
)
def test_nothing_is_written_outside_ones_folder(
    server: ServerProcess, bob: requests.Session, tmp_path: Path, template: str
) -> None:
    target = tmp_path / _unique("outside")
    _refused(_run(server, bob, template.format(target=target)), "Permission Error")
    assert not list(tmp_path.iterdir())


def test_another_users_database_file_cannot_be_attached(
    server: ServerProcess, alice: requests.Session, bob: requests.Session
) -> None:
    kept = _run(server, alice, "create or replace table kept as select 1 as n")
    assert kept.state == wire.SUCCEED  # alice's database exists, with a table in it
    alice_file = server.data_dir / "users" / ALICE["name"] / "sql.duckdb"
    assert alice_file.is_file()
    outcome = _run(server, bob, f"attach '{alice_file}' as a (read_only)")
    # DuckDB finds the file open in the server before it checks the permission
    assert outcome.state == wire.FAILED
    assert "Permission Error" in outcome.err_desc or "already attached" in outcome.err_desc
    assert _run(server, bob, "select count(*) from a.main.kept").state == wire.FAILED
    _refused(_run(server, bob, f"select size from read_blob('{alice_file}')"), "Permission Error")


def test_extensions_cannot_be_installed_and_the_error_names_no_server_home(
    server: ServerProcess, bob: requests.Session
) -> None:
    desc = _refused(_run(server, bob, "install httpfs"), "Permission Error")
    assert str(Path.home()) not in desc.replace(str(server.data_dir), "")
    _refused(_run(server, bob, "load httpfs"), "Permission Error")
    names = "'autoinstall_known_extensions', 'autoload_known_extensions', 'enable_external_access'"
    code = f"select name, value from duckdb_settings() where name in ({names}) order by name"
    assert _run(server, bob, code).rows == [
        ["autoinstall_known_extensions", "false"],
        ["autoload_known_extensions", "false"],
        ["enable_external_access", "false"],
    ]


# ---- other users' tables and settings -----------------------------------------------------


def test_a_users_table_is_theirs_alone(
    server: ServerProcess, alice: requests.Session, bob: requests.Session
) -> None:
    table = _unique("notes")
    created = _run(server, alice, f"create table {table} as select 'alice secret' as note")
    assert created.state == wire.SUCCEED
    _refused(_run(server, bob, f"select * from {table}"), table, "does not exist")
    replaced = _run(server, bob, f"create or replace table {table} as select 'bob' as note")
    assert replaced.state == wire.SUCCEED  # in bob's own database
    assert _run(server, alice, f"select note from {table}").rows == [["alice secret"]]
    assert _run(server, bob, f"select note from {table}").rows == [["bob"]]


def test_settings_are_fixed(
    server: ServerProcess, alice: requests.Session, bob: requests.Session
) -> None:
    before = _run(server, alice, "select current_setting('threads')").rows
    for setting in (
        "set global threads=1",
        "set enable_external_access=true",
        "reset lock_configuration",
    ):
        _refused(_run(server, bob, setting), "configuration has been locked", "fixed by the server")
    assert _run(server, alice, "select current_setting('threads')").rows == before


def test_detaching_affects_only_oneself_and_is_undone(
    server: ServerProcess, alice: requests.Session, bob: requests.Session
) -> None:
    code = "attach ':memory:' as m2; use m2; detach demo; detach sql"
    assert _run(server, bob, code).state == wire.SUCCEED
    count = "select count(*) from demo.orders"
    assert _run(server, alice, count).rows == [["5000"]]
    assert _run(server, bob, count).rows == [["5000"]]  # bob's database was opened afresh
    assert _run(server, bob, "select current_database()").rows == [["sql"]]


def test_the_demo_schema_is_read_only(server: ServerProcess, bob: requests.Session) -> None:
    _refused(_run(server, bob, "delete from demo.orders"), "read-only", "shared and read-only")
    _refused(_run(server, bob, "create table demo.mine (x int)"), "read-only")
    assert _run(server, bob, "select count(*) from demo.orders").rows == [["5000"]]


def test_a_jobs_session_starts_afresh(server: ServerProcess, bob: requests.Session) -> None:
    table = _unique("scratch")
    setup = f"create temp table {table} as select 1 as x; set variable answer = 42"
    assert _run(server, bob, setup).state == wire.SUCCEED
    _refused(_run(server, bob, f"select * from {table}"), "does not exist")
    assert _run(server, bob, "select getvariable('answer')").rows == [["NULL"]]


# ---- metadata -------------------------------------------------------------------------------


def test_metadata_shows_ones_own_objects_and_the_demo_schema(
    server: ServerProcess, alice: requests.Session, bob: requests.Session
) -> None:
    schema, table = _unique("alice_schema"), _unique("orders_copy")
    code = f"create schema {schema}; create table {schema}.{table} as select * from demo.orders"
    assert _run(server, alice, code).state == wire.SUCCEED

    alice_dbs = {db["dbName"] for db in server.get_data("datasource/dbs", session=alice)["dbs"]}
    assert {schema, "main", "demo"} <= alice_dbs
    alice_tables = server.get_data("datasource/tables", session=alice, database=schema)["tables"]
    assert [(t["tableName"], t["createdBy"]) for t in alice_tables] == [(table, ALICE["name"])]
    params = {"database": schema, "table": table}
    columns = server.get_data("datasource/columns", session=alice, **params)["columns"]
    assert [c["columnName"] for c in columns][:2] == ["order_id", "customer_id"]

    bob_dbs = {db["dbName"] for db in server.get_data("datasource/dbs", session=bob)["dbs"]}
    assert schema not in bob_dbs and "demo" in bob_dbs
    assert server.get_data("datasource/tables", session=bob, database=schema)["tables"] == []
    assert server.get_data("datasource/columns", session=bob, **params)["columns"] == []
    everything = server.get_data("datasource/all", session=bob)["dbs"]
    assert schema not in {db["databaseName"] for db in everything}
    demo_tables = server.get_data("datasource/tables", session=bob, database="demo")["tables"]
    assert {"orders", "customers", "order_totals"} <= {t["tableName"] for t in demo_tables}


# ---- what keeps working -------------------------------------------------------------------


def test_files_in_ones_own_folder(server: ServerProcess, bob: requests.Session) -> None:
    folder = _files_dir(server, BOB)
    name = _unique("orders")
    code = (
        f"copy (select order_id, status from demo.orders order by order_id limit 3)"
        f" to '{folder}/{name}.csv';"
        f" copy (select * from read_csv('{folder}/{name}.csv')) to '{folder}/{name}.parquet';"
        f" select count(*), min(order_id) from read_parquet('{folder}/{name}.parquet')"
    )
    assert _run(server, bob, code).rows == [["3", "1"]]
    assert (folder / f"{name}.csv").read_text().splitlines()[0] == "order_id,status"
    (folder / "uploaded.csv").write_text("a,b\n1,x\n2,y\n")  # a file put there by other means
    assert _run(server, bob, f"select sum(a) from '{folder}/uploaded.csv'").rows == [["3"]]


def test_own_tables_survive_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with start_server(data_dir, users=[ALICE]) as first:
        alice = user_session(first, ALICE)
        assert _run(first, alice, "create table kept as select 7 as n").state == wire.SUCCEED
        assert _run(first, alice, "insert into kept values (8)").state == wire.SUCCEED
    with start_server(data_dir, users=[ALICE]) as second:
        alice = user_session(second, ALICE)
        assert _run(second, alice, "select sum(n) from kept").rows == [["15"]]
        assert _run(second, alice, "select count(*) from demo.customers").rows == [["1000"]]
    assert (data_dir / "users" / "alice" / "sql.duckdb").is_file()
    assert not any(name.startswith("kept") for name in os.listdir(data_dir))
