"""A user's database file shrinks once a dropped table's space is free (README, "Disk quotas"):
DuckDB never shrinks its file itself, so the SQL engine rewrites it before the next job."""

from __future__ import annotations

from pathlib import Path

from support.serverproc import start_server

from linkis_kernel.job import LinkisClient

BIG = 32 << 20  # bytes (at least) the big table takes in the file


def _sql(client: LinkisClient, code: str) -> list[list[object]]:
    job = client.submit(code, engine="hive", run_type="sql")
    job.wait(60)
    return job.result().values.tolist()


def test_a_dropped_tables_space_leaves_the_file_and_everything_else_stays(
    tmp_path: Path,
) -> None:
    with start_server(tmp_path / "data") as server:
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
            "create view cheap_orders as select * from demo.orders where order_id < 4;\n"
            "select nextval('tickets') as ticket",
        )
        _sql(
            client,
            "create table big as select range as i, repeat('x', 100) || range as s "
            "from range(2000000); checkpoint; select count(*) as n from big",
        )
        assert database.stat().st_size > BIG
        _sql(client, "drop table big; select 1 as dropped")

        rows = _sql(
            client,
            "select (select count(*) from mine.moods where m = 'bad') as bad,"
            " (select count(*) from cheap_orders) as cheap, plus_one(1) as two,"
            " nextval('tickets') as ticket",
        )

        assert rows == [[1, 3, 2, 8]]
        assert database.stat().st_size < BIG // 4
        assert not list((server.data_dir / "sql").glob("*.compacting.duckdb*"))
