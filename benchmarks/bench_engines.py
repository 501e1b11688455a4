"""Benchmark 8: Python and Spark jobs on engine sessions against a fresh process per job.

End to end through the REST API (submit, then poll status until Succeed): the first Python job
of a creator (its engine starts), the next ones (the engine is reused), and, as the baseline, a
fresh Python process per job (a shell job that runs `python -c`, which is what the server did
for every Python job before engine sessions). Warm and baseline jobs alternate. The same for a
real local Spark, on a second server started with LINKIS_KERNEL_SPARK=pyspark: PySpark and Spark
SQL jobs on engine spark against a shell job that starts a fresh local SparkSession per job. The
idle engines' memory (the engine process and its children, a Spark engine's JVM included) is
read from /proc through `linkisManager/listUserEngines`.
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import requests
from benchlib import Section, Server, mb, median, ms, secs, start_server

from linkis_kernel import wire

POLL_SECONDS = 0.002
SLOW_POLL_SECONDS = 0.05  # jobs of seconds: a 2 ms poll would only load the 2 cores meanwhile
TARGET_SPEEDUP = 3.0
REAL_SPARK_ENV = {"LINKIS_KERNEL_SPARK": "pyspark"}
PYSPARK_CODE = "print(spark.range(1000).count())"
SPARK_SQL_CODE = "select count(*) from demo.orders"
# What a system without engine sessions runs per job: a fresh local SparkSession, configured as
# the engine configures its own (sparkengine.py), then the job's statement.
FRESH_SPARK_SESSION = (
    "import os, sys",
    "os.environ['PYSPARK_PYTHON'] = sys.executable",
    "os.environ.setdefault('SPARK_LOCAL_IP', '127.0.0.1')",
    "os.environ.setdefault('SPARK_LOCAL_HOSTNAME', 'localhost')",
    "from pyspark.sql import SparkSession",
    "spark = SparkSession.builder.master('local[*]').config('spark.ui.enabled', 'false')"
    ".config('spark.ui.showConsoleProgress', 'false')"
    ".config('spark.sql.shuffle.partitions', '8')"
    ".config('spark.driver.bindAddress', '127.0.0.1').getOrCreate()",
)


def timed_job(session: requests.Session, server: Server, engine: str, run_type: str,
              code: str, creator: str, poll: float = POLL_SECONDS) -> float:  # fmt: skip
    """Seconds from submit to Succeed, for the user whose token headers `session` sends."""
    user = session.headers.get(wire.TOKEN_USER_HEADER) or server.user
    body = {
        "executionContent": {"code": code, "runType": run_type},
        "labels": {"engineType": engine, "userCreator": f"{user}-{creator}"},
    }
    started = time.perf_counter()
    answer = session.post(server.api("entrance/submit"), json=body, timeout=30).json()
    exec_id = answer["data"]["execID"]
    while True:
        status = session.get(server.api(f"entrance/{exec_id}/status"), timeout=30).json()
        state = status["data"]["status"]
        if state in wire.TERMINAL_STATES:
            break
        time.sleep(poll)
    elapsed = time.perf_counter() - started
    if state != wire.SUCCEED:
        raise RuntimeError(f"{engine} job {exec_id} ended {state}")
    return elapsed


def engine_memory_kb(session: requests.Session, server: Server) -> dict[str, float]:
    """Resident kB of each idle engine, by `engineType:creator`, from listUserEngines."""
    engines = session.get(server.api("linkisManager/listUserEngines"), timeout=30).json()
    return {
        f"{e['labels'][1]['engineType']}:{e['labels'][0]['creator']}": (
            e["nodeResource"]["usedResource"]["memory"] / 1024
        )
        for e in engines["data"]["engines"]
    }


def fresh_spark_command(statement: str) -> str:
    """A shell command that runs `statement` in a fresh Python with a fresh local SparkSession."""
    code = "; ".join([*FRESH_SPARK_SESSION, statement])
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def measure_real_spark(data_dir: Path, reps: int, fresh_reps: int) -> tuple[list, float, str]:
    """Real Spark on a server of its own: the table rows, the idle engine's kB, a note."""
    server = start_server(data_dir, env=REAL_SPARK_ENV)
    try:
        session = server.session()

        def job(run_type: str, code: str, creator: str, poll: float = POLL_SECONDS) -> float:
            engine = "shell" if run_type == "shell" else "spark"
            return timed_job(session, server, engine, run_type, code, creator, poll)

        py_first = job("py", PYSPARK_CODE, "benchpyspark", SLOW_POLL_SECONDS)
        sql_first = job("sql", SPARK_SQL_CODE, "benchsparksql", SLOW_POLL_SECONDS)
        orders = data_dir / "spark" / "demo" / "orders.parquet"
        fresh_py_command = fresh_spark_command(PYSPARK_CODE)
        fresh_sql_command = fresh_spark_command(
            f"spark.read.parquet({str(orders)!r}).createOrReplaceTempView('orders'); "
            "print(spark.sql('select count(*) from orders').collect()[0][0])"
        )
        py_warm, sql_warm, py_fresh, sql_fresh = [], [], [], []
        for rep in range(reps):
            py_warm.append(job("py", PYSPARK_CODE, "benchpyspark"))
            sql_warm.append(job("sql", SPARK_SQL_CODE, "benchsparksql"))
            if rep < fresh_reps:
                py_fresh.append(job("shell", fresh_py_command, "benchfresh", SLOW_POLL_SECONDS))
                sql_fresh.append(job("shell", fresh_sql_command, "benchfresh", SLOW_POLL_SECONDS))
        memory = engine_memory_kb(session, server)["spark:benchpyspark"]
    finally:
        server.stop()
    py_base, sql_base = median(py_fresh), median(sql_fresh)
    rows = [
        ["pyspark on real Spark, first job (engine starts)", 1, secs(py_first),
         f"{py_first / py_base:.2f}x"],
        ["pyspark on real Spark, next jobs (engine reused)", reps, ms(median(py_warm)),
         f"**{median(py_warm) / py_base:.3f}x**"],
        ["fresh python + SparkSession per pyspark job (baseline)", fresh_reps, secs(py_base),
         "1.00x"],
        ["Spark SQL on real Spark, first job (engine starts)", 1, secs(sql_first),
         f"{sql_first / sql_base:.2f}x"],
        ["Spark SQL on real Spark, next jobs (engine reused)", reps, ms(median(sql_warm)),
         f"**{median(sql_warm) / sql_base:.3f}x**"],
        ["fresh python + SparkSession per SQL job (baseline)", fresh_reps, secs(sql_base),
         "1.00x"],
    ]  # fmt: skip
    note = (
        f"Real Spark: `{PYSPARK_CODE}` and `{SPARK_SQL_CODE}`, each creator its own engine; "
        f"first jobs and fresh processes polled every {SLOW_POLL_SECONDS * 1000:g} ms. The "
        "baseline is a shell job running `python -c` that builds a local SparkSession as the "
        "engine does and runs the same statement (the SQL one over a temporary view of the "
        "demo orders Parquet)."
    )
    return rows, memory, note


def measure_engines(
    server: Server, reps: int, starts: int, spark: tuple[int, int] | None = (10, 3)
) -> Section:
    """Section 8; `spark` is (warm reps, fresh-process reps) of the real Spark part, None to
    leave it out (each of its jobs takes seconds)."""
    session = server.session()
    fresh = f"{shlex.quote(sys.executable)} -c 'print(1)'"
    first = [
        timed_job(session, server, "python", "python", "print(1)", f"benchfirst{i}")
        for i in range(starts)
    ]
    warm, baseline = [], []
    timed_job(session, server, "python", "python", "print(1)", "benchwarm")  # start it
    for _ in range(reps):
        warm.append(timed_job(session, server, "python", "python", "print(1)", "benchwarm"))
        baseline.append(timed_job(session, server, "shell", "shell", fresh, "benchfresh"))
    spark_first = timed_job(session, server, "spark", "py", "print(1)", "benchspark")
    spark_warm = median(
        [timed_job(session, server, "spark", "py", "print(1)", "benchspark") for _ in range(reps)]
    )
    memory = engine_memory_kb(session, server)
    if spark is None:
        spark_rows, spark_kb = [], 0.0
        spark_note = "Real Spark is left out of this run (`--quick`); `make bench` measures it."
    else:
        spark_rows, spark_kb, spark_note = measure_real_spark(
            server.data_dir.parent / "real-spark", *spark
        )
    speedup = median(baseline) / median(warm)
    section = Section("engines", "8. Python and Spark engine sessions vs a fresh process per job")
    section.table(
        ["job, end to end (`print(1)` unless named)", "reps", "median", "vs fresh process"],
        [
            ["python, first job (engine starts)", starts, ms(median(first)),
             f"{median(first) / median(baseline):.2f}x"],
            ["python, next jobs (engine reused)", reps, ms(median(warm)),
             f"**{1 / speedup:.2f}x**"],
            ["fresh python process per job (baseline)", reps, ms(median(baseline)), "1.00x"],
            ["pyspark (DuckDB stand-in), first job", 1, ms(spark_first), "-"],
            ["pyspark (DuckDB stand-in), next jobs", reps, ms(spark_warm), "-"],
            *spark_rows,
        ],
    )  # fmt: skip
    section.table(
        ["idle engine", "resident memory"],
        [
            ["python", mb(memory["python:benchwarm"])],
            ["spark, DuckDB stand-in", mb(memory["spark:benchspark"])],
            *([["spark, real Spark (engine process + its JVM)", mb(spark_kb)]] if spark else []),
        ],
    )
    section.note(
        f"Polling status every {POLL_SECONDS * 1000:g} ms; warm and baseline jobs alternate. "
        "Memory: the engine process's resident set and its children's after its jobs (the "
        "stand-in holds DuckDB and pandas). Polled every 10 ms instead, a warm job looks no "
        "faster than the first poll."
    )
    section.note(spark_note)
    section.target(
        "warm python job vs fresh process", f"{speedup:.1f}x faster", f">= {TARGET_SPEEDUP:g}x",
        speedup >= TARGET_SPEEDUP,
    )  # fmt: skip
    return section
