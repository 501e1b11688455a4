"""Engine spark on a real local Spark: SQL, PySpark, show(), stage progress, kill."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from support.serverproc import ServerProcess
from support.waiting import wait_until

from linkis_kernel import LinkisClient, wire

JOB_TIMEOUT = 120.0  # generous: the machine may be busy; a healthy run takes seconds
HEAVY = (
    "from pyspark.sql import functions as F\n"
    "df = spark.range(0, 20_000_000, numPartitions=24).repartition(24)\n"
    "rows = df.groupBy((F.col('id') % 1000).alias('k')).agg(F.sum('id')).collect()\n"
    "print(len(rows))\n"
)
ENDLESS = "spark.range(0, 10**13, numPartitions=8).where('id % 7 = 99').count()\n"


def _run(client: LinkisClient, code: str, run_type: str = "python"):
    job = client.submit(code, engine="spark", run_type=run_type)
    job.wait(JOB_TIMEOUT)
    return job


def _text(job) -> str:
    return "\n".join(str(r.data) for r in job.results())


def test_a_job_killed_while_spark_starts_ends_at_once_and_the_engine_serves_the_next(
    spark_server: ServerProcess,
) -> None:
    """The first test of the module: its job starts the module's Spark engine."""
    client = spark_server.linkis_client()
    job = client.submit("print('first')", engine="spark", run_type="python")
    wait_until(
        lambda: any("Starting a new spark engine" in line for line in job.log()),
        JOB_TIMEOUT,
        0.05,
        message="the job never said its engine was starting",
    )
    job.kill(wait=0)
    job.wait(JOB_TIMEOUT, raise_on_failure=False)
    assert job.state == wire.CANCELLED
    assert "first" not in "\n".join(str(r.data) for r in job.results())

    second = _run(client, "print('second')")
    assert "Succeed to reuse ec" in "\n".join(second.log())  # the engine the first one started
    assert _text(second).strip() == "second"
    log = "\n".join(job.log())  # now that the engine is up
    assert "Your job was killed by the user (status Cancelled)." in log
    assert "Succeed to create new ec" not in log  # the start is not reported after the end


def test_spark_sql_takes_spark_only_syntax(spark_client: LinkisClient) -> None:
    job = _run(spark_client, "SELECT explode(array(1, 2, 3)) AS n;\nSELECT 'a' AS s", "sql")
    first, second = job.results()
    assert first.data["n"].tolist() == [1, 2, 3]
    assert str(first.data["n"].dtype) == "Int32"  # Linkis type int
    assert second.data["s"].tolist() == ["a"]
    log = "\n".join(job.log())
    assert "A real Spark runs this job: Spark 4." in log
    assert "Statement 1: SELECT explode(array(1, 2, 3)) AS n" in log


# The same values in Spark SQL and in DuckDB SQL: both engines write the same cell text.
NESTED_VALUES = {
    "spark": "SELECT array(1, 2) AS a, map('k', 1.5D) AS m, named_struct('x', 1, 'y', 'b') AS s, "
    "array(named_struct('z', true)) AS l, TIMESTAMP '2024-02-29 12:00:00.5' AS ts",
    "hive": "SELECT [1, 2] AS a, map {'k': 1.5::double} AS m, {'x': 1, 'y': 'b'} AS s, "
    "[{'z': true}] AS l, TIMESTAMP '2024-02-29 12:00:00.5' AS ts",
}


def test_spark_and_duckdb_write_nested_values_as_the_same_text(spark_client: LinkisClient) -> None:
    rows = {}
    for engine, code in NESTED_VALUES.items():
        job = spark_client.submit(code, engine=engine, run_type="sql")
        job.wait(JOB_TIMEOUT)
        rows[engine] = job.result().astype(str).iloc[0].tolist()
    assert rows["spark"] == rows["hive"]
    assert rows["spark"][:4] == ["[1, 2]", '{"k": 1.5}', '{"x": 1, "y": "b"}', '[{"z": true}]']


def test_spark_sql_lateral_view_over_the_demo_tables(spark_client: LinkisClient) -> None:
    code = (
        "SELECT status, count(*) AS orders FROM demo.orders "
        "LATERAL VIEW explode(array(1)) t AS one GROUP BY status ORDER BY status"
    )
    spark = _run(spark_client, code, "sql").result()
    duck = spark_client.submit(
        "SELECT status, count(*) AS orders FROM demo.orders GROUP BY status ORDER BY status",
        engine="hive",
        run_type="sql",
    )
    duck.wait(JOB_TIMEOUT)
    assert spark["status"].tolist() == duck.result()["status"].tolist()
    assert spark["orders"].tolist() == duck.result()["orders"].tolist()


def test_spark_sql_error_fails_the_job_and_names_the_problem(spark_client: LinkisClient) -> None:
    job = spark_client.submit("SELECT * FROM demo.no_such_table", engine="spark", run_type="sql")
    job.wait(JOB_TIMEOUT, raise_on_failure=False)
    assert job.state == wire.FAILED
    assert "no_such_table" in (job.info().err_desc or "")


def test_spark_sc_sqlcontext_and_demo_database_are_predefined(spark_client: LinkisClient) -> None:
    code = (
        "print(type(spark).__module__.split('.')[0], sc.master, sqlContext is spark)\n"
        "print(sorted(t.name for t in spark.catalog.listTables('demo')))\n"
        "print(sc.parallelize(range(10)).sum(), sc.defaultParallelism)\n"
    )
    lines = _text(_run(spark_client, code)).splitlines()
    assert lines[0].split() == ["pyspark", "local[*]", "True"]
    assert "orders" in lines[1] and "customers" in lines[1]
    assert lines[2].split()[0] == "45"


def test_spark_console_lines_go_to_the_log_at_their_level(spark_client: LinkisClient) -> None:
    code = (
        "jvm_log = sc._jvm.org.apache.logging.log4j.LogManager.getLogger('course')\n"
        "jvm_log.warn('a warning from the JVM')\n"
        "jvm_log.error('an error from the JVM')\n"
        "import time\ntime.sleep(1)\n"
        "print('done')"
    )
    job = _run(spark_client, code)
    assert _text(job).strip() == "done"  # Spark's console lines never reach a result set
    assert any("WARN course: a warning from the JVM" in line for line in job.log("warn"))
    assert any("ERROR course: an error from the JVM" in line for line in job.log("error"))
    assert not any("an error from the JVM" in line for line in job.log("warn"))


def test_spark_state_lives_on_between_jobs(spark_client: LinkisClient) -> None:
    _run(spark_client, "kept = spark.range(7).toDF('n')")
    assert _text(_run(spark_client, "print(kept.count())")).strip() == "7"


def test_spark_show_gives_a_typed_table_capped_as_linkis_caps_it(
    spark_client: LinkisClient,
) -> None:
    code = (
        "show(spark.range(6000).selectExpr('id', 'id * 1.5D AS x', 'id * 1.5 AS d', "
        "'cast(id AS string) AS s'))"
    )
    job = _run(spark_client, code)
    frame = job.result()
    assert len(frame) == 5000
    assert frame["id"].tolist()[:3] == [0, 1, 2]
    assert pd.api.types.is_integer_dtype(frame["id"]) and pd.api.types.is_float_dtype(frame["x"])
    assert str(frame["d"].iloc[3]) == "4.5"  # decimal, typed from Spark's schema
    assert any("show() returned the first 5000 rows" in line for line in job.log("warn"))


def test_spark_stages_show_in_progress_with_resource(
    spark_server: ServerProcess, spark_client: LinkisClient
) -> None:
    cores = int(_text(_run(spark_client, "print(sc.defaultParallelism)")).strip())
    job = spark_client.submit(HEAVY, engine="spark", run_type="python")
    url = spark_server.api(f"entrance/{job.exec_id}/progressWithResource")
    seen: list[dict] = []

    def moving_stage() -> dict | None:
        data = spark_server.client.get(url, timeout=10).json()["data"]
        stages = [s for s in data.get("progressInfo", []) if s["id"].startswith("jobId_")]
        if stages and any(s["runningTasks"] or s["succeedTasks"] for s in stages):
            seen.append(data)
            return data
        return None

    data = wait_until(moving_stage, JOB_TIMEOUT, interval=0.2, message="no Spark stage moved")
    job.wait(JOB_TIMEOUT)
    stage = next(s for s in data["progressInfo"] if s["id"].startswith("jobId_"))
    assert set(stage) == {"id", "succeedTasks", "failedTasks", "runningTasks", "totalTasks"}
    assert stage["totalTasks"] >= 8
    assert 0 <= data["progress"] < 1
    resource = data["yarnMetrics"]["yarnResource"][0]
    assert resource["queueCores"] == cores and resource["queueMemory"] > 100 * 2**20
    assert _text(job).strip() == "1000"


def test_spark_kill_cancels_the_spark_job_and_keeps_the_engine(
    spark_server: ServerProcess, spark_client: LinkisClient
) -> None:
    before = _engine(spark_server, _run(spark_client, "x = 1").task_id)
    job = spark_client.submit(ENDLESS, engine="spark", run_type="python")
    url = spark_server.api(f"entrance/{job.exec_id}/progress")

    def running_stage() -> bool:
        data = spark_server.client.get(url, timeout=10).json()["data"]
        return any(s["id"].startswith("jobId_") for s in data.get("progressInfo", []))

    wait_until(running_stage, JOB_TIMEOUT, interval=0.2, message="the Spark job never started")
    job.kill(wait=15.0)
    assert job.state == wire.CANCELLED
    after = _run(spark_client, "print(sc.parallelize(range(5)).count(), x)")
    assert _text(after).split() == ["5", "1"]
    assert _engine(spark_server, after.task_id) == before


def _engine(server: ServerProcess, task_id: int) -> str:
    """The EngineConn instance a job ran on, from job history."""
    answer = server.client.get(server.api(f"jobhistory/{task_id}/get"), timeout=10).json()
    return str(answer["data"]["task"]["engineInstance"])


@pytest.mark.parametrize(
    "query",
    [
        "select country, count(*) as customers from demo.customers group by country "
        "order by customers desc, country",
        "select t.order_id, t.amount from demo.order_totals t join demo.orders o "
        "on o.order_id = t.order_id order by t.order_id limit 5",
    ],
)
def test_spark_and_duckdb_answer_the_demo_queries_alike(
    spark_client: LinkisClient, query: str
) -> None:
    spark = _run(spark_client, query, "sql").result()
    duck = spark_client.submit(query, engine="hive", run_type="sql")
    duck.wait(JOB_TIMEOUT)
    expected = duck.result()
    assert list(spark.columns) == list(expected.columns)
    assert spark.astype(str).values.tolist() == expected.astype(str).values.tolist()


def _rss(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_spark_engine_memory_counts_its_jvm_once(spark_client: LinkisClient) -> None:
    """listUserEngines' memory of a Spark engine is its Python process plus its JVM child."""
    _run(spark_client, "print(1)")
    engine = next(e for e in spark_client.engines() if e.status == "Unlock")
    port = int(engine.instance.rsplit(":", 1)[1])
    children = Path(f"/proc/{port}/task/{port}/children").read_text().split()
    java = [int(pid) for pid in children if Path(f"/proc/{pid}/comm").read_text() == "java\n"]
    assert len(java) == 1, children
    both = _rss(port) + _rss(java[0])
    assert engine.memory_bytes is not None
    assert 0.8 * both < engine.memory_bytes < 1.2 * both


def test_spark_runs_local_with_its_ui_off_and_an_app_name_naming_the_engine(
    spark_server: ServerProcess, spark_client: LinkisClient
) -> None:
    code = (
        "print(sc.master, spark.conf.get('spark.ui.enabled'), sc.uiWebUrl, "
        "spark.conf.get('spark.sql.shuffle.partitions'), sc.appName)"
    )
    master, ui, ui_url, partitions, app = _text(_run(spark_client, code)).split()
    assert (master, ui, ui_url, partitions) == ("local[*]", "false", "None", "8")
    assert app == f"linkis-spark-3.2.1-{spark_server.user}-IDE"
