"""Users' own DuckDB databases through LocalLinkis: the layout, an older data dir, cursors
shared by a user's jobs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from support.localsvc import OTHER, USER, sql_body, wait_final, wait_state
from support.waiting import wait_until

from linkis_kernel.local import demo
from linkis_kernel.local.errors import ServiceError
from linkis_kernel.local.paths import Layout
from linkis_kernel.local.service import LocalLinkis
from linkis_kernel.wire import CANCELLED, FAILED, RUNNING, SUCCEED

ENDLESS_SQL = (
    "select count(*) from range(200000) a, range(200000) b where (a.range * b.range) % 7 = 3"
)


def _first_cell(service: LocalLinkis, run: Callable[..., dict], code: str) -> str:
    submitted = run(service, code, creator="nb")
    task = service.history_get(USER, submitted["taskID"])["task"]
    assert task["status"] == SUCCEED, task["errDesc"]
    (child,) = service.dir_tree(USER, task["resultLocation"])["dirFileTrees"]["children"]
    return service.open_file(USER, child["path"])["fileContent"][0][0]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_older_data_dir_is_left_as_it_was(tmp_path: Path, run) -> None:
    layout = Layout(tmp_path / "data")
    layout.legacy_duckdb_file.parent.mkdir(parents=True)
    with duckdb.connect(str(layout.legacy_duckdb_file)) as old:
        old.execute("create schema demo; create table demo.orders as select 1 as order_id")
        old.execute("create table old_notes as select 'kept' as note")
    before = _digest(layout.legacy_duckdb_file)
    service = LocalLinkis(layout.root)
    service.start()
    try:
        assert _first_cell(service, run, "select count(*) from demo.orders") == "5000"
        failed = run(service, "select * from old_notes")
        task = service.history_get(USER, failed["taskID"])["task"]
        assert task["status"] == FAILED and "old_notes does not exist" in task["errDesc"]
    finally:
        service.close()
    assert _digest(layout.legacy_duckdb_file) == before
    assert layout.demo_file.is_file() and (layout.user_area(USER) / "sql.duckdb").is_file()
    # README, "SQL isolation": how the server's owner hands an old table to a user
    with duckdb.connect(str(layout.user_area(USER) / "sql.duckdb")) as db:
        db.execute(f"attach '{layout.legacy_duckdb_file}' as old (read_only)")
        db.execute("create table old_notes as select * from old.main.old_notes")
    service = LocalLinkis(layout.root)
    service.start()
    try:
        assert _first_cell(service, run, "select note from old_notes") == "kept"
    finally:
        service.close()


def test_user_names_map_to_folders_of_their_own() -> None:
    layout = Layout(Path("/data"))
    assert layout.user_area("alice") == Path("/data/users/alice")
    assert layout.user_area("a.b@example.com") == Path("/data/users/a.b@example.com")
    odd = {layout.user_area(name) for name in ("..", "a/b", "x y", "")}
    assert len(odd) == 4 and all(area.parent == Path("/data/users") for area in odd)
    assert all(area.name.startswith("u-") for area in odd)


def test_a_users_jobs_run_side_by_side_and_a_kill_leaves_the_cursor_usable(
    linkis: LocalLinkis, run
) -> None:
    endless = [linkis.submit(USER, sql_body(ENDLESS_SQL)) for _ in range(2)]
    for job in endless:  # two workers: both run at once on the same user's database
        wait_state(linkis, job["execID"], RUNNING)
    for job in endless:
        wait_until(
            lambda job=job: linkis.progress(USER, job["execID"], None)["progress"] > 0,
            10,
            message="the SQL statement reported no progress",
        )
        linkis.kill(USER, job["execID"], None)
        assert wait_final(linkis, job["execID"], 5.0) == CANCELLED
    for _ in range(3):  # each cursor that was interrupted runs the next job normally
        assert _first_cell(linkis, run, "select 6 * 7") == "42"


def test_metadata_before_any_sql_creates_the_users_database(linkis: LocalLinkis) -> None:
    assert {db["dbName"] for db in linkis.databases(OTHER)["dbs"]} == {"demo", "main"}
    assert linkis.tables(OTHER, "main") == {"tables": []}
    assert (linkis.layout.user_area(OTHER) / "sql.duckdb").is_file()


def test_a_closed_server_refuses_metadata(tmp_path: Path) -> None:
    service = LocalLinkis(tmp_path / "data")
    service.start()
    service.close()
    with pytest.raises(ServiceError, match="SQL engines are not running"):
        service.databases(USER)


def test_a_broken_database_gives_a_clear_error_and_a_lost_demo_file_comes_back(
    tmp_path: Path, run
) -> None:
    layout = Layout(tmp_path / "data")
    service = LocalLinkis(layout.root)
    service.start()
    service.close()
    layout.demo_file.unlink()  # its marker stays
    area = layout.user_area(USER)
    area.mkdir(parents=True)
    (area / "sql.duckdb").write_bytes(b"not a database")
    service = LocalLinkis(layout.root)
    service.start()
    try:
        failed = run(service, "select 1")
        task = service.history_get(USER, failed["taskID"])["task"]
        assert task["status"] == FAILED and "Your SQL database" in task["errDesc"]
        with pytest.raises(ServiceError, match="cannot be opened"):
            service.databases(USER)
        assert {db["dbName"] for db in service.databases(OTHER)["dbs"]} == {"demo", "main"}
        assert len(service.tables(OTHER, "demo")["tables"]) == 5
    finally:
        service.close()


def test_seed_fills_a_schema_with_the_rows_of_the_demo_database(linkis: LocalLinkis) -> None:
    counts = (
        "select (select count(*) from demo.orders), (select sum(amount) from demo.order_totals)"
    )
    with duckdb.connect() as memory:
        demo.seed(memory)
        demo.seed(memory)  # a second call leaves the schema as it is
        seeded = memory.execute(counts).fetchall()
    with duckdb.connect(str(linkis.layout.demo_file), read_only=True) as shared:
        assert shared.execute(counts.replace("demo.", "")).fetchall() == seeded
    assert seeded[0][0] == 5000
