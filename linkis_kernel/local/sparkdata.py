"""Which Spark the embedded server's spark engine runs, and the demo data it sees.

`LINKIS_KERNEL_SPARK` chooses: `auto` (the default) runs a real local Spark when pyspark is
installed and `java` is found, else DuckDB's Spark-compatible stand-in; `pyspark` insists on the
real Spark (a spark engine then fails to start without it); `duckdb` always uses the stand-in.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import threading
from pathlib import Path

import duckdb

from . import demo
from .paths import Layout
from .sparkengine import REAL, STAND_IN

SPARK_ENV = "LINKIS_KERNEL_SPARK"
AUTO = "auto"
MODES = (AUTO, REAL, STAND_IN)
_write_lock = threading.Lock()


class SparkModeError(ValueError):
    """LINKIS_KERNEL_SPARK holds something other than auto, pyspark or duckdb."""


def spark_mode() -> str:
    """`pyspark` (a real local Spark) or `duckdb` (the stand-in), from LINKIS_KERNEL_SPARK."""
    wanted = os.environ.get(SPARK_ENV, AUTO).strip().lower() or AUTO
    if wanted not in MODES:
        raise SparkModeError(
            f"{SPARK_ENV} must be one of {', '.join(MODES)}, got {wanted!r}; unset it to run a "
            "real Spark when pyspark and Java are installed."
        )
    if wanted != AUTO:
        return wanted
    return REAL if real_spark_installed() else STAND_IN


def real_spark_installed() -> bool:
    """pyspark importable and a `java` to run it (JAVA_HOME or on PATH)."""
    java_home = os.environ.get("JAVA_HOME")
    java = (java_home and Path(java_home, "bin", "java").is_file()) or shutil.which("java")
    return bool(java) and importlib.util.find_spec("pyspark") is not None


def demo_parquet(root: Path) -> Path:
    """`<root>/spark/demo/`: one Parquet file per demo table and view, written once from a
    fresh in-memory copy of the demo schema (so it holds what a new data dir's DuckDB holds)."""
    folder = Layout(root).spark_dir / demo.SCHEMA
    with _write_lock:
        if folder.is_dir():
            return folder
        partial = folder.with_name(f".{folder.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        with duckdb.connect(":memory:") as connection:
            demo.seed(connection)
            names = connection.execute(
                "select table_name from information_schema.tables where table_schema = ?",
                [demo.SCHEMA],
            ).fetchall()
            for (name,) in names:
                target = str(partial / f"{name}.parquet").replace("'", "''")
                connection.execute(
                    f"COPY (SELECT * FROM {demo.SCHEMA}.\"{name}\") TO '{target}' (FORMAT parquet)"
                )
        partial.rename(folder)
    return folder
