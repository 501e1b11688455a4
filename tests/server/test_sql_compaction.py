"""A user's database file shrinks once a dropped table's space is free (README, "Disk quotas"):
DuckDB gives back only free space at the end of its file, so the SQL engine rewrites a file whose
free space lies before tables still in use, before the next job."""

from __future__ import annotations

from pathlib import Path

from support.serverproc import start_server

from linkis_kernel.job import LinkisClient

BIG = 32 << 20  # bytes (at least) the big table takes in the file


def _fill_then_drop(client: LinkisClient) -> None:
    """A big table, then another after it in the file, then the big one dropped: its space is
    free but not at the end of the file, where a checkpoint would cut it off."""
    _sql(
        client,
        "create table big as select range as i, repeat('x', 100) || range as s "
        "from range(2000000); checkpoint; create table later as select range as i, "
        "repeat('y', 100) || range as s from range(100000); checkpoint; "
        "select count(*) as n from big",
    )
    _sql(client, "drop table big; select 1 as dropped")


def _sql(client: LinkisClient, code: str) -> list[list[object]]:
    job = client.submit(code, engine="hive", run_type="sql")
    job.wait(60)
    return job.result().values.tolist()


def test_a_dropped_tables_space_leaves_the_file_and_everything_else_stays(
    tmp_path: Path,
) -> None:
    # the rewrite runs under the engine's memory cap, as DuckDB's jobs do
    with start_server(tmp_path / "data", args=["--engine-memory", "400MB"]) as server:
        client = server.linkis_client()
        database = server.data_dir / "users" / server.user / "sql.duckdb"
        _sql(
            client,
            "create type mood as enum ('good', 'bad');\n"
            "create sequence tickets start 7;\n"
            "create macro plus_one(x) as x + 1;\n"
            "create schema mine;\n"
            "create table mine.moods (id integer primary key, m mood, note varchar unique);\n"
            "insert into mine.moods values (1, 'good', 'a'), (2, 'bad', 'b');\n"
            "create index by_mood on mine.moods (m);\n"
            "comment on column mine.moods.note is 'why';\n"
            "create view cheap_orders as select * from demo.orders where order_id < 4;\n"
            "select nextval('tickets') as ticket",
        )
        _fill_then_drop(client)
        assert database.stat().st_size > BIG

        rows = _sql(
            client,
            "select (select count(*) from mine.moods where m = 'bad') as bad,"
            " (select count(*) from cheap_orders) as cheap, plus_one(1) as two,"
            " nextval('tickets') as ticket, (select comment from duckdb_columns()"
            " where column_name = 'note') as why",
        )

        assert rows == [[1, 3, 2, 8, "why"]]
        assert database.stat().st_size < BIG // 4
        assert not list((server.data_dir / "sql").glob("*.compacting.duckdb*"))


def test_a_database_that_cannot_be_rewritten_stays_as_it_was_and_is_tried_once(
    tmp_path: Path,
) -> None:
    with start_server(tmp_path / "data") as server:
        client = server.linkis_client()
        _sql(client, "create table kept as select 42 as answer; select 1 as made")
        _fill_then_drop(client)
        database = server.data_dir / "users" / server.user / "sql.duckdb"
        size = database.stat().st_size
        # where the rewrite would be written is taken: the rewrite fails
        (server.data_dir / "sql" / f"{server.user}.compacting.duckdb").mkdir()

        for _ in range(3):
            assert _sql(client, "select answer from kept") == [[42]]

        assert database.stat().st_size == size
        log = (server.data_dir / "server.log").read_text()
        assert log.count("sql.duckdb was not compacted") == 1, log
        # remembered beside it, so a rewrite that failed (or was killed) waits for a change
        assert (server.data_dir / "sql" / f"{server.user}.compacting.duckdb.failed").exists()
