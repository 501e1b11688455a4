"""The program inside a user's SQL engine process (the EngineConn of the SQL family).

Started by `sqlengines.SqlEngine` as `python -m linkis_kernel.local.sqlengine <data dir> <user>
<cursors> <memory bytes, 0 for no cap>`. It opens the user's own DuckDB database (userdb.py),
runs SQL jobs on it, each on a thread and a cursor of its own, writes their result sets itself,
and answers the catalog questions of the metadata endpoints. What a query builds lives in this
process, under the memory cap of `serve --engine-memory`, never in the server.

Protocol: one JSON object per line. The server writes `run` (`job`, `code`, `creator`,
`engine_type`, `result_dir`), `interrupt` (`job`), `catalog` (`call`, `what`: databases, tables
or columns, `args`) and `exit`. The engine answers `ready` first, then for a job `log` (`level`,
`text`), `statements` (`count`), `progress` (`index`, `fraction`) and finally `done` (`error`:
`code`, `message`, `details`; or `cancelled`), and for a catalog call `answer` (`value`, or
`error`: `message`, `status`, `code`). The engine ends on `exit`, at end of input, or when the
server that started it is gone.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from . import catalog
from .dolphin import Column, ResultWriter
from .engines import (
    ERR_ENGINE,
    ERR_SQL,
    JobCancelled,
    JobFailed,
    interrupt,
    memory_hint,
    query_percent,
    run_sql,
)
from .errors import ServiceError
from .paths import Layout
from .pyengine import Channel, take_standard_streams, watch_parent
from .ticker import Ticker
from .userdb import UserDatabases, database_file

T = TypeVar("T")

_PROGRESS_SECONDS = 0.2


class RemoteJob:
    """A SQL job this process runs for the server: what it does goes back as messages."""

    def __init__(self, channel: Channel, request: dict[str, Any]):
        self.task_id = int(request["job"])
        self.creator = str(request.get("creator", ""))
        self.code = str(request.get("code", ""))
        self.engine_type = str(request.get("engine_type", "duckdb"))
        self.result_dir = Path(request["result_dir"])
        self.cancelled = threading.Event()
        self._channel = channel
        self._cursor: duckdb.DuckDBPyConnection | None = None
        self._statement = 0
        self._percent = -1.0
        self._results = 0

    def _send(self, op: str, **fields: Any) -> None:
        self._channel.send(op, job=self.task_id, **fields)

    def write_log(self, level: str, message: str) -> None:
        self._send("log", level=level, text=message)

    def new_result(self, type_code: str, columns: list[Column] | None) -> ResultWriter:
        number, self._results = self._results, self._results + 1
        return ResultWriter(self.result_dir / f"_{number}.dolphin", type_code, columns)

    def start_statements(self, count: int) -> None:
        self._send("statements", count=count)

    def statement_progress(self, index: int, fraction: float) -> None:
        self._statement, self._percent = index, -1.0
        self._send("progress", index=index, fraction=fraction)

    def attach_cursor(self, cursor: duckdb.DuckDBPyConnection | None) -> None:
        self._cursor = cursor

    def stop(self) -> None:
        self.cancelled.set()
        cursor = self._cursor
        if cursor is not None:
            interrupt(cursor)

    def report_progress(self) -> None:
        """Send DuckDB's progress of the running statement when it moved; interrupt it again if
        a kill landed between two statements."""
        cursor, index = self._cursor, self._statement
        if cursor is None:
            return
        if self.cancelled.is_set():
            interrupt(cursor)
            return
        percent = query_percent(cursor)
        if percent >= 0 and percent != self._percent:
            self._percent = percent
            self._send("progress", index=index, fraction=percent / 100)


class SqlRunner:
    """The user's databases and the jobs running on them."""

    def __init__(self, channel: Channel, databases: UserDatabases, user: str, memory: int | None):
        self._channel = channel
        self._databases = databases
        self._user = user
        # who made the shared demo tables: the server's OS user, as whom this process runs
        self._demo_owner = getpass.getuser()
        self._memory = memory
        self._running: dict[int, RemoteJob] = {}
        self._lock = threading.Lock()

    def handle(self, request: dict[str, Any]) -> None:
        op = request.get("op")
        if op == "run":
            job = RemoteJob(self._channel, request)
            with self._lock:
                self._running[job.task_id] = job
            self._start(self._run, job)
        elif op == "interrupt":
            with self._lock:
                target = self._running.get(int(request.get("job", -1)))
            if target is not None:
                target.stop()
        elif op == "catalog":
            self._start(self._answer, request)

    @staticmethod
    def _start(target: Callable[[T], None], argument: T) -> None:
        threading.Thread(target=target, args=(argument,), daemon=True).start()

    def _run(self, job: RemoteJob) -> None:
        outcome: dict[str, Any] = {}
        try:
            with self._databases.job_session(self._user) as session:
                run_sql(job, session, job.engine_type)
        except JobCancelled:
            outcome = {"cancelled": True}
        except JobFailed as exc:
            outcome = {"error": {"code": exc.code, "message": str(exc), "details": exc.details}}
        except MemoryError:
            message = f"MemoryError: the rows were too big to fetch.\n{memory_hint(self._memory)}"
            outcome = {"error": {"code": ERR_SQL, "message": message}}
        except ServiceError as exc:
            outcome = {"error": {"code": ERR_ENGINE, "message": exc.desc}}
        except Exception as exc:  # an engine bug must still end the job
            message = self._databases.layout.hidden(f"{type(exc).__name__}: {exc}")
            outcome = {"error": {"code": ERR_ENGINE, "message": message}}
        finally:
            with self._lock:
                self._running.pop(job.task_id, None)
        try:
            self._channel.send("done", job=job.task_id, **outcome)
        except MemoryError:  # the message itself did not fit: say at least that it failed
            self._channel.send("done", job=job.task_id, error={"code": ERR_SQL,
                               "message": memory_hint(self._memory)})  # fmt: skip

    def _answer(self, request: dict[str, Any]) -> None:
        call = request.get("call")
        try:
            value = self._catalog(str(request.get("what")), dict(request.get("args") or {}))
        except ServiceError as exc:
            error = {"message": exc.desc, "status": exc.status, "code": exc.code}
            self._channel.send("answer", call=call, error=error)
        except (duckdb.Error, MemoryError) as exc:
            self._channel.send("answer", call=call, error={"message": str(exc)})
        else:
            self._channel.send("answer", call=call, value=value)

    def _catalog(self, what: str, args: dict[str, Any]) -> Any:
        with self._databases.metadata_cursor(self._user) as cursor:
            if what == "databases":
                return catalog.databases(cursor)
            if what == "tables":
                return catalog.tables(cursor, args.get("database"), *self._provenances())
            if what == "columns":
                return catalog.columns(cursor, args.get("database"), args.get("table"))
        raise ServiceError(f"unknown catalog question {what!r}")

    def _provenances(self) -> tuple[catalog.Provenance, catalog.Provenance]:
        """Who made the user's own tables and when, and the same for the shared demo ones (the
        server's OS user, as whom this process runs)."""
        layout = self._databases.layout
        own = database_file(layout.user_area(self._user))
        return (
            catalog.Provenance(self._user, catalog.created_at(own)),
            catalog.Provenance(self._demo_owner, catalog.created_at(layout.demo_file)),
        )

    def stop_all(self) -> None:
        with self._lock:
            running = list(self._running.values())
        for job in running:
            job.stop()

    def report_progress(self) -> None:
        """Send the progress of each running job's statement that moved."""
        with self._lock:
            running = list(self._running.values())
        for job in running:
            job.report_progress()


def main() -> None:
    data_dir, user, cursors, memory_text = sys.argv[1:5]
    memory = int(memory_text) or None
    parent = os.getppid()
    requests, replies = take_standard_streams()
    channel = Channel(replies)
    threading.Thread(target=watch_parent, args=(parent,), daemon=True).start()
    databases = UserDatabases(Layout(Path(data_dir)), int(cursors), memory)
    databases.start()
    runner = SqlRunner(channel, databases, user, memory)
    Ticker("linkis-sql-progress", _PROGRESS_SECONDS, runner.report_progress).start()
    channel.send("ready", pid=os.getpid())
    for line in requests:
        request = json.loads(line)
        if request.get("op") == "exit":
            break
        runner.handle(request)
    runner.stop_all()
    databases.close()


if __name__ == "__main__":
    main()
