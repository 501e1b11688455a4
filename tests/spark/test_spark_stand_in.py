"""Engine spark on DuckDB's stand-in (LINKIS_KERNEL_SPARK=duckdb), as without pyspark."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.serverproc import ServerProcess, start_server

from linkis_kernel import LinkisClient, wire

INSTALL_HINT = "pip install 'linkis-kernel[spark]'"


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LinkisClient]:
    server: ServerProcess = start_server(
        tmp_path_factory.mktemp("stand-in"), env={"LINKIS_KERNEL_SPARK": "duckdb"}
    )
    try:
        yield server.linkis_client()
    finally:
        server.stop()


def test_stand_in_predefines_spark_sc_and_sqlcontext(stand_in: LinkisClient) -> None:
    code = (
        "print(type(spark).__module__.split('.')[0], sqlContext is spark)\n"
        "print(spark.sql('select count(*) as n from demo.orders').collect()[0][0] > 0)\n"
        "print(sc)\n"
    )
    job = stand_in.submit(code, engine="spark", run_type="python")
    job.wait(30)
    lines = str(job.results()[0].data).splitlines()
    assert lines[0] == "duckdb True" and lines[1] == "True"
    assert "has no SparkContext" in lines[2]
    log = "\n".join(job.log())
    assert "DuckDB's Spark-compatible API" in log and INSTALL_HINT in log


def test_stand_in_sc_says_what_is_missing(stand_in: LinkisClient) -> None:
    job = stand_in.submit("sc.parallelize([1, 2])", engine="spark", run_type="python")
    job.wait(30, raise_on_failure=False)
    assert job.state == wire.FAILED
    desc = job.info().err_desc or ""
    assert "NotImplementedError: sc.parallelize is not available" in desc
    assert INSTALL_HINT in desc


def test_stand_in_runs_spark_sql_on_duckdb(stand_in: LinkisClient) -> None:
    job = stand_in.submit("select 1 + 1 as two", engine="spark", run_type="sql")
    job.wait(30)
    assert job.result()["two"].tolist() == [2]
    assert any("The local DuckDB engine runs this SQL in place of spark" in line
               for line in job.log())  # fmt: skip
