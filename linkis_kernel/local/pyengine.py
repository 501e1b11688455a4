"""The program inside a Python engine process (an EngineConn of the embedded server).

Started by `sessions.EngineSession` as `python -P pyengine.py <kind> [<spark> <demo dir>
<app name>]`; a Python engine imports only the standard library at start, so it is up in a
fraction of a second; a `pyspark` engine loads sparkengine.py (a real local Spark or DuckDB's
stand-in). It keeps one namespace for its whole life (variables, imports and functions live on
between jobs) and offers what the Linkis python engine offers: `show(x)` (a pandas or Spark
DataFrame as a table result set, a matplotlib figure as an HTML result set with the PNG inline),
`printlog(x)` (a job log line) and `plt.show()`.

Protocol: one JSON object per line. The server writes `{"op": "run", "code": ..., "job": N,
"language": "python" | "sql", "limit": rows | null}` to the engine's stdin; the engine answers on
its original stdout with `out` (printed text), `log` (a log line), `table`, `html`, `statements`
and `statement` (a SQL script's statements), `stages` (Spark stages) and finally `done`
(`error`, `cancelled`); its first message is `ready` (with `spark`: which Spark it runs).
Everything else written to file descriptors 1 and 2 (subprocesses, C libraries, Spark's JVM)
reaches the server's stderr pipe, and stdin reads as empty. SIGINT while a job runs cancels its
Spark job group (if any) and raises KeyboardInterrupt in it once, unless it is in a call to
Spark's JVM; otherwise it is ignored. The engine ends on `{"op": "exit"}`, at end of input, or
when the server that started it is gone.
"""

from __future__ import annotations

import base64
import importlib.abc
import importlib.machinery
import importlib.util
import io
import json
import linecache
import os
import signal
import sys
import threading
import time
import traceback
from contextlib import nullcontext
from pathlib import Path
from typing import Any, TextIO

PYSPARK = "pyspark"
SQL_LANGUAGE = "sql"
MAX_SHOW_ROWS = 5000  # rows show(spark_df) returns, as the Linkis spark engine caps them
_WATCHDOG_SECONDS = 1.0
_OUT_FLUSH_CHARS = 64 * 1024
_PY4J_PATH = f"{os.sep}py4j{os.sep}"

# pandas dtype name -> Linkis column type (the Linkis python engine's changeDT, with the
# integer and float widths kept so that no value overflows its column).
_DTYPE_TYPES = {
    "int8": "tinyint",
    "int16": "short",
    "int32": "int",
    "int64": "bigint",
    "uint8": "short",
    "uint16": "int",
    "uint32": "bigint",
    "float16": "float",
    "float32": "float",
    "float64": "double",
    "bool": "boolean",
    "boolean": "boolean",
    "Int8": "tinyint",
    "Int16": "short",
    "Int32": "int",
    "Int64": "bigint",
    "Float32": "float",
    "Float64": "double",
}


class Channel:
    """The line-per-message pipe to the server (thread-safe)."""

    def __init__(self, stream: TextIO):
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, op: str, **fields: Any) -> None:
        line = json.dumps({"op": op, **fields}, ensure_ascii=False, default=str)
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()


class OutputStream(io.TextIOBase):
    """sys.stdout of user code: text for the job's text result set."""

    def __init__(self, channel: Channel):
        self._channel = channel
        self._buffer: list[str] = []
        self._size = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buffer.append(text)
        self._size += len(text)
        if self._size >= _OUT_FLUSH_CHARS:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if self._buffer:
            text = "".join(self._buffer)
            self._buffer.clear()
            self._size = 0
            self._channel.send("out", text=text)


class LogStream(io.TextIOBase):
    """sys.stderr of user code: one WARN log line per line written."""

    def __init__(self, channel: Channel, level: str = "WARN"):
        self._channel = channel
        self._level = level
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._channel.send("log", level=self._level, text=line)
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self._channel.send("log", level=self._level, text=self._partial)
            self._partial = ""


class Engine:
    """One interpreter namespace and the jobs run in it."""

    def __init__(self, channel: Channel, kind: str):
        self.channel = channel
        self.kind = kind
        self.stdout = OutputStream(channel)
        self.stderr = LogStream(channel)
        self.running = False
        self.interrupted = False  # a kill arrived while the current job ran
        self.raised = False  # ... and raised KeyboardInterrupt in it
        self.job = 0
        self.spark: Any = None  # sparkengine.SparkRuntime of a pyspark engine
        self.namespace: dict[str, Any] = {
            "__name__": "__main__",
            "__builtins__": __builtins__,
            "show": self.show,
            "printlog": self.printlog,
        }

    # -- what user code calls -------------------------------------------------------------------
    def printlog(self, obj: Any) -> None:
        """A job log line, framed as the Linkis python engine frames it."""
        self.stdout.flush()
        for text in ("+++++++++++++++", str(obj), "+++++++++++++++"):
            self.channel.send("log", level="INFO", text=text)

    def show(self, obj: Any = None, **kwargs: Any) -> None:
        """A DataFrame as a table result set, a figure as an HTML result set."""
        if obj is None or getattr(obj, "__name__", "") == "matplotlib.pyplot":
            self.show_matplotlib(obj, **kwargs)
        elif type(obj).__name__ == "DataFrame":
            self.show_dataframe(obj)
        elif type(obj).__name__ == "Figure" and hasattr(obj, "savefig"):
            self.show_matplotlib(obj, **kwargs)
        elif callable(obj):
            obj()
        else:
            print(obj)

    def show_dataframe(self, df: Any) -> None:
        spark_types: list[str] | None = None
        if not hasattr(df, "dtypes") or not hasattr(df, "iloc"):  # a Spark DataFrame
            spark_types = self.spark.column_types(df) if self.spark is not None else None
            df = self._spark_to_pandas(df)
        types = spark_types or [_DTYPE_TYPES.get(str(t), _other_type(str(t))) for t in df.dtypes]
        columns = [
            [str(name), data_type] for name, data_type in zip(df.columns, types, strict=True)
        ]
        isna = df.isna().to_numpy()
        rows = [
            [None if isna[r][c] else str(value) for c, value in enumerate(row)]
            for r, row in enumerate(df.itertuples(index=False, name=None))
        ]
        self.stdout.flush()
        self.channel.send("table", columns=columns, rows=rows)

    def _spark_to_pandas(self, df: Any) -> Any:
        limited = df.limit(MAX_SHOW_ROWS + 1).toPandas()
        if len(limited) > MAX_SHOW_ROWS:
            self.channel.send(
                "log",
                level="WARN",
                text=f"show() returned the first {MAX_SHOW_ROWS} rows of the DataFrame, as "
                "Linkis caps them; aggregate or filter it, or write it to a table, to see all.",
            )
            limited = limited.head(MAX_SHOW_ROWS)
        return limited

    def show_matplotlib(
        self, p: Any = None, fmt: str = "png", width: str = "auto", height: str = "auto", **_: Any
    ) -> None:
        """The figure as the Linkis python engine writes it: HTML around a base64 PNG."""
        import matplotlib.pyplot as plt

        target = plt if p is None else p
        image = io.BytesIO()
        target.savefig(image, format=fmt)
        if fmt == "svg":
            body = image.getvalue().decode("utf-8")
        else:
            data = base64.b64encode(image.getvalue().strip()).decode("ascii")
            body = f"<img src=data:image/png;base64,{data} style='width={width};height:{height}'>"
        html = f"<div style='width:{width};height:{height}'>{body}<div>"
        self.stdout.flush()
        self.channel.send("html", html=html)
        plt.close("all" if p is None or p is plt else p)

    # -- running jobs -----------------------------------------------------------------------
    def run(self, code: str, job: int, language: str = "python", limit: int | None = None) -> None:
        filename = f"<job {job}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        error: dict[str, Any] | None = None
        cancelled = False
        self.job = job
        self.interrupted = self.raised = False
        sys.stdout, sys.stderr = self.stdout, self.stderr
        try:
            with self._job_scope(job):
                if language == SQL_LANGUAGE:
                    self.running = True
                    self.spark.run_sql(code, limit, self.channel.send)
                else:
                    compiled = compile(code, filename, "exec")
                    self.running = True
                    exec(compiled, self.namespace)
        except KeyboardInterrupt:
            cancelled = True
        except SystemExit as exc:
            if exc.code not in (None, 0):
                error = {"summary": f"SystemExit: {exc.code}", "traceback": []}
        except BaseException as exc:
            cancelled = self.interrupted  # a cancelled Spark job fails the call it ran in
            error = None if cancelled else _error_of(exc)
        finally:
            self.running = False
            try:
                self.stdout.flush()
                self.stderr.flush()
            except KeyboardInterrupt:  # a late interrupt must not lose the answer
                cancelled = True
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
        self.channel.send("done", error=error, cancelled=cancelled)

    def _job_scope(self, job: int) -> Any:
        return self.spark.job_scope(job, self.channel.send) if self.spark else nullcontext()

    def on_sigint(self, signum: int, frame: Any) -> None:
        """A kill: cancel the job's Spark jobs (again at every signal, as one may start after
        the first) and interrupt the statement once (the server repeats SIGINT until a job
        stops). Never inside a py4j call: that would break the JVM connection mid-answer, and
        the cancelled Spark job ends the call anyway."""
        if not self.running:
            return
        self.interrupted = True
        if self.spark is not None:
            threading.Thread(target=self.spark.cancel, args=(self.job,), daemon=True).start()
        if not self.raised and not _in_py4j(frame):
            self.raised = True
            raise KeyboardInterrupt


def _in_py4j(frame: Any) -> bool:
    while frame is not None:
        if _PY4J_PATH in frame.f_code.co_filename:
            return True
        frame = frame.f_back
    return False


def _other_type(dtype: str) -> str:
    if dtype.startswith("datetime64"):
        return "timestamp"
    return "string"


def _error_of(exc: BaseException) -> dict[str, Any]:
    """The summary line and the traceback, without this file's own frames."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    lines = ["Traceback (most recent call last):\n", *traceback.format_list(frames)]
    lines += traceback.format_exception_only(type(exc), exc)
    text = "".join(lines).rstrip("\n").split("\n")
    summary = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return {"summary": summary, "traceback": text}


class _PyplotHook(importlib.abc.MetaPathFinder):
    """Points `plt.show` at `show` as soon as user code imports matplotlib.pyplot."""

    def __init__(self, engine: Engine):
        self._engine = engine

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "matplotlib.pyplot":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        original = loader.exec_module
        engine = self._engine

        def exec_module(module: Any) -> None:
            original(module)
            module.show = lambda *args, **kwargs: engine.show_matplotlib(module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _predefine_spark(engine: Engine, options: list[str]) -> dict[str, Any]:
    """`spark`, `sc` and `sqlContext` for PySpark jobs (sparkengine.py); what the ready
    message says about them."""
    mode, demo_dir, app_name = options  # engineconns.EngineManager._engine_options
    path = Path(__file__).with_name("sparkengine.py")
    spec = importlib.util.spec_from_file_location("linkis_sparkengine", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    runtime = module.start(mode, demo_dir, app_name)
    engine.spark = runtime
    engine.namespace.update(runtime.names)
    signal.signal(signal.SIGINT, engine.on_sigint)  # pyspark installs its own handler
    return dict(runtime.info())


def watch_parent(parent: int) -> None:
    """End the engine when the server that started it is gone (even if killed -9)."""
    while True:
        time.sleep(_WATCHDOG_SECONDS)
        if os.getppid() != parent:
            os._exit(1)


def take_standard_streams() -> tuple[TextIO, TextIO]:
    """The protocol's own copies of stdin/stdout; fd 0 becomes /dev/null, fd 1 joins fd 2."""
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 (lives as long as the engine)
    return requests, replies


def main() -> None:
    kind = sys.argv[1] if len(sys.argv) > 1 else "python"
    parent = os.getppid()
    requests, replies = take_standard_streams()
    channel = Channel(replies)
    engine = Engine(channel, kind)
    os.environ.setdefault("MPLBACKEND", "Agg")
    sys.meta_path.insert(0, _PyplotHook(engine))
    signal.signal(signal.SIGINT, engine.on_sigint)
    threading.Thread(target=watch_parent, args=(parent,), daemon=True).start()
    spark = _predefine_spark(engine, sys.argv[2:]) if kind == PYSPARK else None
    channel.send("ready", pid=os.getpid(), python=sys.version.split()[0], spark=spark)
    for line in requests:
        request = json.loads(line)
        if request.get("op") == "exit":
            break
        if request.get("op") == "run":
            engine.run(
                request["code"],
                request.get("job", 0),
                request.get("language", "python"),
                request.get("limit"),
            )


if __name__ == "__main__":
    main()
