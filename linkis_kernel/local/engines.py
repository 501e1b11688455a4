"""Engines of the embedded server: which labels it accepts, and how each kind of job runs.

SQL-family run types run in the user's SQL engine process (sqlengine.py, sqlengines.py) on their
own DuckDB database (userdb.py) in place of Hive/JDBC/...
(and of Spark when no real Spark is installed; with one, engine spark runs SQL on it: sessions.py);
shell code runs in a subprocess (one process group per job, so a kill reaches everything the
script started); Python code runs on long-lived engine sessions (sessions.py, engineconns.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import IO, Any, Protocol

import duckdb

from ..wire import (
    DEFAULT_ENGINE_VERSIONS,
    RESULT_TABLE,
    RESULT_TEXT,
    SHELL_RUN_TYPES,
    SQL_DEFAULT_LIMIT,
    SQL_LIMIT_CREATOR,
)
from .celltext import cell_text, timestamp_text
from .cgroups import UserGroup
from .demo import SCHEMA
from .dolphin import Column, ResultWriter
from .errors import ServiceError
from .logfile import INFO, WARN
from .sandbox import Sandbox, SandboxRefused, start_process
from .userdb import SqlSession

SQL, PYTHON, SHELL = "sql", "python", "shell"
# Run types the local DuckDB engine takes: the SQL family plus its own name.
SQL_FAMILY = ("sql", "hql", "jdbc", "psql", "tsql", "duckdb", "hive", "fql", "isql")
PYTHON_RUN_TYPES = ("py", "python")
# Engine type -> {run type -> kind of job}.
ENGINE_RUN_TYPES: dict[str, dict[str, str]] = {
    **{e: dict.fromkeys(SQL_FAMILY, SQL) for e in ("hive", "jdbc", "presto", "trino", "duckdb")},
    "spark": {**dict.fromkeys(SQL_FAMILY, SQL), **dict.fromkeys(PYTHON_RUN_TYPES, PYTHON)},
    "python": dict.fromkeys(PYTHON_RUN_TYPES, PYTHON),
    "shell": dict.fromkeys(sorted(SHELL_RUN_TYPES), SHELL),
}

# errCode values of failed jobs (Linkis-like; the engine's own message goes to errDesc).
ERR_SQL = 21304
ERR_PYTHON = 21305
ERR_SHELL = 21306
ERR_ENGINE = 21307
ERR_RESTART = 21308
ERR_SANDBOX = 21309
ERR_VARIABLE = 20050

_FETCH_ROWS = 2048
_KILL_GRACE_SECONDS = 2.0
_ERROR_TAIL_LINES = 30
# The server's own credentials never reach the code users run.
_SECRET_ENV = frozenset({"LINKIS_PASSWORD", "LINKIS_TOKEN"})
# An output line longer than this becomes several rows (or log lines) of at most this size, so
# a line without end cannot fill the server's memory.
MAX_LINE_BYTES = 1 << 20


def memory_hint(memory: int | None) -> str:
    """What to do when an engine ran out of the memory `serve --engine-memory` gives it."""
    if memory is None:
        return "The machine ran out of memory; work on less data at once."
    return (
        f"Each engine process on this server may use at most {memory >> 20} MB "
        "(serve --engine-memory); work on less data at once (filter or aggregate first, fetch "
        "fewer rows), or ask the server's owner for more."
    )


def ended_hint(memory: int | None, group: UserGroup | None, kills_before: int) -> str:
    """What may have ended an engine process: its own memory cap, or its user's memory limit
    (the kernel ended one of their processes since `oom_kills()` was `kills_before`)."""
    hint = f" If it ran out of memory: {memory_hint(memory)}" if memory else ""
    return hint + (group.limit_note(kills_before) if group is not None else "")


def label_error(desc: str) -> ServiceError:
    return ServiceError(f"Label params invalid {desc}", code=20009)


@dataclass(frozen=True)
class EngineChoice:
    engine_type: str
    version: str
    run_type: str
    kind: str

    @property
    def label(self) -> str:
        return f"{self.engine_type}-{self.version}"


def choose_engine(engine_label: str, run_type: str) -> EngineChoice:
    """Resolve `spark-3.2.1`/`spark` and a run type to what runs it here, or a 20009 error."""
    engine_type, _, version = engine_label.strip().partition("-")
    engine_type = engine_type.lower()
    if engine_type not in ENGINE_RUN_TYPES:
        raise label_error(
            f"engine type '{engine_type}' is not available on the embedded Linkis server; "
            f"it runs: {', '.join(sorted(ENGINE_RUN_TYPES))}"
        )
    version = version or DEFAULT_ENGINE_VERSIONS.get(engine_type, "*")
    kinds = ENGINE_RUN_TYPES[engine_type]
    kind = kinds.get(run_type.lower())
    if kind is None:
        raise label_error(
            f"run type (codeType) '{run_type}' is not supported by engine {engine_type} on the "
            f"embedded Linkis server; use one of: {', '.join(kinds)}"
        )
    return EngineChoice(engine_type, version, run_type.lower(), kind)


class JobCancelled(Exception):
    """The job was killed while it ran."""


class JobFailed(Exception):
    """The engine reported an error; `code` becomes errCode, the message errDesc.

    `details` (e.g. a traceback) go to the log as ERROR lines but not into errDesc.
    """

    def __init__(self, code: int, message: str, details: list[str] | None = None):
        super().__init__(message)
        self.code = code
        self.details = details or []


class JobOutput(Protocol):
    """Where a running job's log, results and progress go."""

    task_id: int
    creator: str
    code: str
    cancelled: threading.Event

    def write_log(self, level: str, message: str) -> None: ...
    def new_result(self, type_code: str, columns: list[Column] | None) -> ResultWriter: ...
    def start_statements(self, count: int) -> None: ...
    def statement_progress(self, index: int, fraction: float) -> None: ...


class SqlRun(JobOutput, Protocol):
    """A SQL job in a SQL engine process (sqlengine.py): it tracks the cursor running it."""

    def attach_cursor(self, cursor: duckdb.DuckDBPyConnection | None) -> None: ...


class RunContext(JobOutput, Protocol):
    """A job in the server, as the shell engine and the engine sessions see it."""

    def finish_statements(self) -> None: ...
    def spark_stages(self, index: int, stages: list[dict]) -> None: ...
    def attach_process(self, process: subprocess.Popen | None) -> None: ...


# ---- DuckDB values -> Linkis result cells ---------------------------------------------------

_TYPE_NAMES = {
    "boolean": "boolean",
    "tinyint": "tinyint",
    "utinyint": "short",
    "smallint": "short",
    "usmallint": "int",
    "integer": "int",
    "uinteger": "bigint",
    "bigint": "bigint",
    "ubigint": "decimal",
    "hugeint": "decimal",
    "uhugeint": "decimal",
    "float": "float",
    "double": "double",
    "decimal": "decimal",
    "date": "date",
    "timestamp": "timestamp",
    "timestamp_s": "timestamp",
    "timestamp_ms": "timestamp",
    "timestamp_ns": "timestamp",
    "timestamp with time zone": "timestamp",
    "varchar": "string",
    "blob": "binary",
    "list": "array",
    "array": "array",
    "map": "map",
    "struct": "struct",
}


def linkis_type(duck_type: Any) -> str:
    """The normalised Linkis dataType name for a DuckDB column type."""
    return _TYPE_NAMES.get(getattr(duck_type, "id", str(duck_type).lower()), "string")


# Fast paths for the common column types; anything else goes through cell_text.
_INTEGER_TYPES = (
    "tinyint", "smallint", "integer", "bigint", "hugeint",
    "utinyint", "usmallint", "uinteger", "ubigint", "uhugeint",
)  # fmt: skip
_FORMATTERS: dict[str, Callable[[Any], str]] = {
    **dict.fromkeys(_INTEGER_TYPES, str),
    "varchar": str,
    "double": repr,
    "float": repr,
    "boolean": lambda v: "true" if v else "false",
    "decimal": lambda v: format(v, "f"),
    "date": date.isoformat,
    "timestamp": timestamp_text,
}


def cell_formatter(duck_type: Any) -> Callable[[Any], str]:
    """How to turn a non-null value of a DuckDB column type into Linkis cell text."""
    return _FORMATTERS.get(getattr(duck_type, "id", ""), cell_text)


def _column_of(description: tuple) -> Column:
    name, duck_type = description[0], description[1]
    data_type = linkis_type(duck_type)
    comment = str(duck_type).lower() if data_type == "decimal" else None
    return Column(str(name), data_type, comment)


# ---- SQL on DuckDB -------------------------------------------------------------------------


def _returns_rows(statement: Any) -> bool:
    return list(statement.expected_result_type) == [duckdb.ExpectedResultType.QUERY_RESULT]


def run_sql(job: SqlRun, session: SqlSession, engine_type: str) -> None:
    """Run a SQL script statement by statement on the session's cursor (progress tracking on);
    each row-returning statement yields a table result."""
    cursor = session.cursor
    try:
        job.attach_cursor(cursor)
        stand_in = "" if engine_type == "duckdb" else f" in place of {engine_type}"
        job.write_log(INFO, f"The local DuckDB engine runs this SQL{stand_in}.")
        try:
            statements = cursor.extract_statements(job.code)
        except duckdb.Error as exc:
            raise JobFailed(ERR_SQL, str(exc)) from None
        job.start_statements(len(statements))
        for index, statement in enumerate(statements):
            _run_statement(job, session, index, statement)
    finally:
        job.attach_cursor(None)


def _sql_error(exc: duckdb.Error, session: SqlSession) -> str:
    """DuckDB's error, with what the user can do when it comes from how the server runs SQL."""
    if isinstance(exc, duckdb.OutOfMemoryException):
        # DuckDB's own advice (raise memory_limit) is not the user's to follow here
        return f"{str(exc).splitlines()[0]}\n{memory_hint(session.memory)}"
    hint = _confinement_hint(exc, session.files_dir)
    return f"{exc}\n{hint}" if hint else str(exc)


def _confinement_hint(exc: duckdb.Error, files_dir: Path) -> str:
    """What the user can do when DuckDB refused a statement because of the confinement."""
    text = str(exc)
    if isinstance(exc, duckdb.PermissionException):
        return (
            f"SQL on this server reads and writes files only under your own folder {files_dir}/ "
            "(absolute paths); other files, and extensions that are not built in, are out of reach."
        )
    if "configuration has been locked" in text:
        return "The settings of the local DuckDB engine are fixed by the server."
    if f'database "{SCHEMA}" which is attached in read-only mode' in text:
        return (
            f"The {SCHEMA} schema is shared and read-only; copy what you need into your own "
            f"database, e.g. CREATE TABLE my_orders AS SELECT * FROM {SCHEMA}.orders."
        )
    return ""


def _run_statement(job: SqlRun, session: SqlSession, index: int, statement: Any) -> None:
    cursor = session.cursor
    if job.cancelled.is_set():
        raise JobCancelled
    query = statement.query.strip()
    job.write_log(INFO, f"Statement {index + 1}: {query}")
    job.statement_progress(index, 0.0)
    try:
        cursor.execute(query)
        if _returns_rows(statement):
            _write_table(job, cursor, index)
    except duckdb.InterruptException:
        raise JobCancelled from None
    except duckdb.Error as exc:
        if job.cancelled.is_set():
            raise JobCancelled from None
        raise JobFailed(ERR_SQL, _sql_error(exc, session)) from None
    job.statement_progress(index, 1.0)


def _write_table(job: SqlRun, cursor: Any, index: int) -> None:
    columns = [_column_of(d) for d in cursor.description]
    formatters = [cell_formatter(d[1]) for d in cursor.description]
    limit = SQL_DEFAULT_LIMIT if job.creator == SQL_LIMIT_CREATOR else None
    with job.new_result(RESULT_TABLE, columns) as writer:
        truncated = False
        while batch := cursor.fetchmany(_FETCH_ROWS):
            if job.cancelled.is_set():
                raise JobCancelled
            for row in batch:
                if limit is not None and writer.rows >= limit:
                    truncated = True
                    break
                writer.write_row(
                    [None if v is None else f(v) for f, v in zip(formatters, row, strict=True)]
                )
            if truncated:
                break
        rows = writer.rows
    if truncated:
        job.write_log(
            WARN,
            f"The result of statement {index + 1} was limited to {SQL_DEFAULT_LIMIT} rows, as "
            f"Linkis limits SQL results for creator {SQL_LIMIT_CREATOR}; submit with another "
            "creator to get every row.",
        )
    job.write_log(INFO, f"Result set {writer.path.name} written ({rows} rows).")


# ---- shell in subprocesses -------------------------------------------------------


class ProcessBook(Protocol):
    """Where the process groups of running jobs are written down, so that a server restarting
    after a crash ends what they left behind (engineconns.EngineManager)."""

    def add_process(self, pid: int) -> None: ...
    def remove_process(self, pid: int) -> None: ...


def run_shell(
    job: RunContext,
    scratch: Path,
    *,
    sandbox: Sandbox | None = None,
    book: ProcessBook | None = None,
    memory: int | None = None,
) -> None:
    """Run bash code in a process of its own (under `sandbox` if given, its process group
    written down in `book`, each of its processes capped at `memory` bytes); stdout becomes a
    text result, stderr goes to the log. (Python code runs on engine sessions: sessions.py.)"""
    scratch.mkdir(parents=True, exist_ok=True)
    script = scratch / "main.sh"
    script.write_text(job.code + "\n", encoding="utf-8")
    group = sandbox.group if sandbox is not None else None
    kills = group.oom_kills() if group is not None else 0  # the user's memory limit, at start
    process = spawn_engine(
        ["bash", str(script)],
        scratch,
        stdin=subprocess.DEVNULL,
        what="shell",
        sandbox=sandbox,
        memory=memory,
    )
    if book is not None:
        book.add_process(process.pid)
    try:
        _follow_shell(job, process, "in the process sandbox" if sandbox else "")
    except JobFailed as exc:
        if group is not None and (note := group.limit_note(kills)):
            raise JobFailed(exc.code, f"{str(exc).rstrip('.')}.{note}", exc.details) from None
        raise
    finally:
        if book is not None:
            book.remove_process(process.pid)


def _follow_shell(job: RunContext, process: subprocess.Popen, where: str) -> None:
    job.attach_process(process)
    if job.cancelled.is_set():  # killed while the process was starting
        stop_process(process)
    runs = f"bash runs it {where}" if where else "bash runs it"
    job.write_log(INFO, f"The local shell engine started (pid {process.pid}): {runs}.")
    job.start_statements(1)
    job.statement_progress(0, 0.0)
    stderr_tail: list[str] = []
    reader = threading.Thread(target=_pump_stderr, args=(job, process, stderr_tail), daemon=True)
    reader.start()
    try:
        _pump_stdout(job, process)
        code = process.wait()
        reader.join()
    finally:
        job.attach_process(None)
    if job.cancelled.is_set():
        raise JobCancelled
    if code != 0:
        last = next((line for line in reversed(stderr_tail) if line.strip()), "")
        raise JobFailed(
            ERR_SHELL,
            f"shell exited with status {code}" + (f": {last.strip()}" if last else ""),
            _error_tail(stderr_tail),
        )
    job.statement_progress(0, 1.0)


def _error_tail(stderr: list[str]) -> list[str]:
    """The part of stderr that explains a failure: the last traceback, else the last lines."""
    starts = [i for i, line in enumerate(stderr) if line.startswith("Traceback ")]
    tail = stderr[starts[-1] :] if starts else stderr[-_ERROR_TAIL_LINES:]
    return [line for line in tail if line.strip()][-_ERROR_TAIL_LINES:]


def output_lines(stream: IO[bytes]) -> Iterator[bytes]:
    """The lines of an engine's output, one longer than MAX_LINE_BYTES cut into pieces of that
    size."""
    return iter(lambda: stream.readline(MAX_LINE_BYTES), b"")


def _pump_stdout(job: RunContext, process: subprocess.Popen) -> None:
    assert process.stdout is not None
    writer: ResultWriter | None = None
    try:
        for raw in output_lines(process.stdout):
            if writer is None:
                writer = job.new_result(RESULT_TEXT, None)
            writer.write_line(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
    finally:
        if writer is not None:
            writer.close()
            job.write_log(INFO, f"Result set {writer.path.name} written ({writer.rows} lines).")


def _pump_stderr(job: RunContext, process: subprocess.Popen, tail: list[str]) -> None:
    assert process.stderr is not None
    for raw in output_lines(process.stderr):
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        tail.append(line)
        del tail[:-200]
        job.write_log(WARN, line)


def interrupt(cursor: Any) -> None:
    """Stop the statement running on a job's cursor; a closed cursor has nothing to stop."""
    with contextlib.suppress(duckdb.Error):
        cursor.interrupt()


def query_percent(cursor: Any) -> float:
    """DuckDB's progress of the cursor's running statement in percent, -1 when unknown."""
    try:
        return float(cursor.query_progress())
    except duckdb.Error:  # the statement ended and the cursor closed under us
        return -1.0


def spawn_engine(
    command: list[str],
    scratch: Path,
    *,
    stdin: int,
    what: str,
    sandbox: Sandbox | None = None,
    memory: int | None = None,
    group: UserGroup | None = None,
) -> subprocess.Popen:
    """Start an engine process in a process group of its own (so kill reaches all it starts),
    in `scratch`, without the server's secrets in its environment, under `sandbox` if given
    (sandbox.py) or else in the cgroups `group` (cgroups.py), each of its processes capped at
    `memory` bytes; piped stdout and stderr. It dies when the server dies."""
    env = {k: v for k, v in os.environ.items() if k not in _SECRET_ENV}
    env.update(PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
    try:
        return start_process(
            command, scratch, stdin=stdin, env=env, sandbox=sandbox, memory=memory, group=group
        )
    except SandboxRefused as exc:
        raise JobFailed(ERR_SANDBOX, str(exc)) from None
    except OSError as exc:
        raise JobFailed(ERR_ENGINE, f"could not start the {what} engine: {exc}") from None


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM the job's process group, then SIGKILL whatever is left after a short grace."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(_KILL_GRACE_SECONDS)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


# ---- local resource figures for progressWithResource ------------------------------------


@dataclass(frozen=True)
class ResourceSample:
    pid: int
    rss_bytes: int
    cpu_seconds: float
    taken_at: float


def sample_resources(pid: int, taken_at: float) -> ResourceSample | None:
    """Resident memory and CPU time used so far by a process and those it started (a sandboxed
    job is bwrap's child), from /proc; None if it is gone."""
    rss_pages = ticks = 0
    for index, each in enumerate(_process_tree(pid)):
        try:
            with open(f"/proc/{each}/statm") as f:
                rss_pages += int(f.read().split()[1])
            with open(f"/proc/{each}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        except (OSError, IndexError, ValueError):
            if index == 0:
                return None
    return ResourceSample(
        pid,
        rss_pages * os.sysconf("SC_PAGE_SIZE"),
        ticks / os.sysconf("SC_CLK_TCK"),
        taken_at,
    )


def _process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (those started by each process's main thread)."""
    tree = [pid]
    for each in tree:
        try:
            with open(f"/proc/{each}/task/{each}/children") as f:
                tree += [int(child) for child in f.read().split()]
        except (OSError, ValueError):
            continue
    return tree


def _rgb(fraction: float) -> str:
    if fraction <= 0.5:
        return "green"
    return "yellow" if fraction <= 0.7 else "red"


def yarn_metrics(sample: ResourceSample, cores: float) -> dict:
    """Local figures in the shape of `yarnMetrics` (docs/linkis-rest.md, "Progress")."""
    total_memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cpu_count = os.cpu_count() or 1
    core_percent = min(cores / cpu_count, 1.0)
    memory_percent = sample.rss_bytes / total_memory if total_memory else 0.0
    return {
        "yarnResource": [
            {
                "applicationId": f"local_{sample.pid}",
                "queueMemory": sample.rss_bytes,
                "queueCores": max(1, round(cores)),
                "queueInstances": 1,
                "jobStatus": "RUNNING",
                "queue": "local",
            }
        ],
        "corePercent": core_percent,
        "memoryPercent": memory_percent,
        "coreRGB": _rgb(core_percent),
        "memoryRGB": _rgb(memory_percent),
    }
