"""Spark inside a pyspark engine process: a real local Spark, or DuckDB's stand-in.

Loaded by pyengine.py only for engines of kind `pyspark` (so Python engines start without it),
by file path: it imports nothing from linkis_kernel, and loads celltext.py beside it by path too.
`start()` predefines `spark`, `sc` and `sqlContext` and registers the demo tables (Parquet
written by the server) as database `demo`; with a real Spark it also runs SQL scripts statement
by statement, gives every job a Spark job group (so a kill cancels its Spark jobs) and reports
the job's stages while it runs.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REAL, STAND_IN = "pyspark", "duckdb"
_POLL_SECONDS = 0.5
# Spark's default of 200 shuffle partitions makes every small local aggregation slow; a job can
# still set its own (spark.conf.set("spark.sql.shuffle.partitions", n)).
_SHUFFLE_PARTITIONS = "8"
_INSTALL_HINT = "pip install 'linkis-kernel[spark]'"
# Spark type name (DataType.typeName()) -> Linkis column type.
_SPARK_TYPES = {
    "byte": "tinyint",
    "short": "short",
    "integer": "int",
    "long": "bigint",
    "float": "float",
    "double": "double",
    "decimal": "decimal",
    "string": "string",
    "varchar": "string",
    "char": "string",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "timestamp_ntz": "timestamp",
    "binary": "binary",
    "array": "array",
    "map": "map",
    "struct": "struct",
}

Send = Callable[..., None]


def _cell_text_function() -> Callable[[Any], str]:
    """celltext.cell_text, loaded by path (see the module docstring)."""
    spec = importlib.util.spec_from_file_location(
        "linkis_celltext", Path(__file__).with_name("celltext.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.cell_text


cell_text = _cell_text_function()


class StandInContext:
    """`sc` of the DuckDB stand-in: there is no SparkContext without a JVM."""

    master = "duckdb"
    defaultParallelism = 1

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(
            f"sc.{name} is not available: this engine's `spark` is DuckDB's Spark-compatible "
            f"API, which has no SparkContext. Use spark.createDataFrame / spark.sql, or install "
            f"a real local Spark ({_INSTALL_HINT}) and restart the server."
        )

    def __repr__(self) -> str:
        return "<StandInContext: DuckDB's Spark-compatible API has no SparkContext>"


class SparkRuntime:
    """What a pyspark engine predefines, and how its jobs run on Spark."""

    def __init__(self, spark: Any, sc: Any, description: str, real: bool):
        self.spark = spark
        self.sc = sc
        self.description = description
        self.real = real

    @property
    def names(self) -> dict[str, Any]:
        return {"spark": self.spark, "sc": self.sc, "sqlContext": self.spark}

    def info(self) -> dict[str, Any]:
        """What the server needs to know: which Spark and its cores."""
        info: dict[str, Any] = {"real": self.real, "description": self.description}
        if self.real:
            info["cores"] = int(self.sc.defaultParallelism)
        return info

    @contextlib.contextmanager
    def job_scope(self, job: int, send: Send) -> Iterator[None]:
        """Run one engine job in Spark job group `job`, reporting its stages meanwhile."""
        if not self.real:
            yield
            return
        group = str(job)
        self.sc.setJobGroup(group, f"Linkis job {job}", interruptOnCancel=True)
        watcher = StageWatcher(self.sc, group, send)
        watcher.start()
        try:
            yield
        finally:
            watcher.stop()  # the next job sets its own group

    def cancel(self, job: int) -> None:
        """Cancel the Spark jobs of engine job `job` (from another thread)."""
        if self.real:
            with contextlib.suppress(Exception):
                self.sc.cancelJobGroup(str(job))

    def run_sql(self, code: str, limit: int | None, send: Send) -> None:
        """Each statement through spark.sql; a statement that returns columns is a table."""
        statements = split_statements(code)
        send("statements", count=len(statements))
        for index, statement in enumerate(statements):
            send("statement", index=index, text=statement)
            frame = self.spark.sql(statement)
            if frame.columns:
                self._send_table(frame, index, limit, send)

    def column_types(self, frame: Any) -> list[str] | None:
        """The Linkis column types of a Spark DataFrame's columns; None if it has no schema."""
        try:
            fields = frame.schema.fields
            return [_SPARK_TYPES.get(f.dataType.typeName(), "string") for f in fields]
        except Exception:
            return None

    def _send_table(self, frame: Any, index: int, limit: int | None, send: Send) -> None:
        types = self.column_types(frame) or ["string"] * len(frame.columns)
        columns = [[name, data_type] for name, data_type in zip(frame.columns, types, strict=True)]
        source = frame.limit(limit + 1) if limit is not None else frame
        rows: list[list[str | None]] = []
        for row in source.toLocalIterator():
            if limit is not None and len(rows) >= limit:
                send("log", level="WARN", text=f"The result of statement {index + 1} was "
                     f"limited to {limit} rows, as Linkis limits SQL results for this creator; "
                     "submit with another creator to get every row.")  # fmt: skip
                break
            rows.append([None if v is None else cell_text(v) for v in row])
        send("table", columns=columns, rows=rows)


class StageWatcher:
    """Polls the status tracker for the stages of one job group and sends them when changed."""

    def __init__(self, sc: Any, group: str, send: Send):
        self._sc = sc
        self._group = group
        self._send = send
        self._stop = threading.Event()
        self._stages: dict[int, dict[str, Any]] = {}
        self._sent: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._loop, daemon=True, name="spark-stages")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2 * _POLL_SECONDS)
        with contextlib.suppress(Exception):
            self._poll()

    def _loop(self) -> None:
        while not self._stop.wait(_POLL_SECONDS):
            with contextlib.suppress(Exception):
                self._poll()

    def _poll(self) -> None:
        tracker = self._sc.statusTracker()
        for job_id in tracker.getJobIdsForGroup(self._group):
            job = tracker.getJobInfo(job_id)
            for stage_id in job.stageIds if job is not None else []:
                stage = tracker.getStageInfo(stage_id)
                if stage is not None:
                    self._stages[stage_id] = {
                        "id": f"jobId_{job_id}_stage_{stage_id}",
                        "totalTasks": stage.numTasks,
                        "runningTasks": stage.numActiveTasks,
                        "failedTasks": stage.numFailedTasks,
                        "succeedTasks": stage.numCompletedTasks,
                    }
        stages = [self._stages[k] for k in sorted(self._stages)]
        if stages != self._sent:
            self._sent = [dict(s) for s in stages]
            self._send("stages", stages=stages)


def start(mode: str, demo_dir: str, app_name: str) -> SparkRuntime:
    """A real local Spark (mode `pyspark`) or DuckDB's Spark-compatible API (`duckdb`)."""
    if mode == STAND_IN:
        return _stand_in(Path(demo_dir))
    return _real_spark(Path(demo_dir), app_name)


def _stand_in(demo_dir: Path) -> SparkRuntime:
    from duckdb.experimental.spark.sql import SparkSession

    spark = SparkSession.builder.getOrCreate()
    if demo_dir.is_dir():  # the demo tables as views of schema demo of its DuckDB
        spark.conn.execute("CREATE SCHEMA IF NOT EXISTS demo")
        for parquet in sorted(demo_dir.glob("*.parquet")):
            location = str(parquet).replace("'", "''")
            spark.conn.execute(
                f"CREATE VIEW demo.\"{parquet.stem}\" AS SELECT * FROM read_parquet('{location}')"
            )
    description = (
        "This Spark job runs on DuckDB's Spark-compatible API (duckdb.experimental.spark), not "
        "on a real Spark: `spark` is a DuckDB-backed SparkSession and `sc` has no methods. For a "
        f"real local Spark, install pyspark and Java 17 ({_INSTALL_HINT}) and restart the server."
    )
    return SparkRuntime(spark, StandInContext(), description, real=False)


def _real_spark(demo_dir: Path, app_name: str) -> SparkRuntime:
    # What the engine's Spark needs: its Python workers run this interpreter, it listens on
    # loopback only, and it does not wait for a reverse DNS lookup of the host name.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("SPARK_LOCAL_HOSTNAME", "localhost")
    from pyspark.sql import SparkSession

    ui = os.environ.get("LINKIS_KERNEL_SPARK_UI", "").lower() in ("1", "true", "yes")
    builder = (
        SparkSession.builder.master("local[*]")
        .appName(app_name)
        .config("spark.ui.enabled", "true" if ui else "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", _SHUFFLE_PARTITIONS)
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.warehouse.dir", str(Path.cwd() / "spark-warehouse"))
    )
    spark = builder.getOrCreate()
    sc = spark.sparkContext
    _register_demo(spark, demo_dir)
    description = (
        f"A real Spark runs this job: Spark {spark.version}, master {sc.master}, "
        f"{sc.defaultParallelism} cores, application {sc.applicationId}"
        + (f", Spark UI at {sc.uiWebUrl}" if ui and sc.uiWebUrl else ", Spark UI off")
        + "; database demo holds the demo tables."
    )
    return SparkRuntime(spark, sc, description, real=True)


def _register_demo(spark: Any, demo_dir: Path) -> None:
    """The demo tables (Parquet the server wrote) as views of database `demo`."""
    if not demo_dir.is_dir():
        return
    spark.sql("CREATE DATABASE IF NOT EXISTS demo")
    for parquet in sorted(demo_dir.glob("*.parquet")):
        location = str(parquet).replace("'", "''")
        spark.sql(
            f"CREATE TABLE IF NOT EXISTS demo.`{parquet.stem}` USING parquet LOCATION '{location}'"
        )


def split_statements(code: str) -> list[str]:
    """The statements of a SQL script: split at `;` outside quotes and comments."""
    statements, current, i, quote = [], [], 0, ""
    while i < len(code):
        ch = code[i]
        if quote:
            current.append(ch)
            if ch == "\\" and quote != "`" and i + 1 < len(code):
                current.append(code[i + 1])
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
            current.append(ch)
        elif code.startswith("--", i):
            end = code.find("\n", i)
            i = len(code) if end < 0 else end
            continue
        elif code.startswith("/*", i):
            end = code.find("*/", i + 2)
            i = len(code) if end < 0 else end + 2
            continue
        elif ch == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]
