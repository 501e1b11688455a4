"""Each user's SQL engine: one process per user running their SQL (sqlengine.py).

A user's SQL jobs and the metadata endpoints' questions about their tables go to their own
engine process, started on first use and again after it ended. It writes the jobs' result sets
itself, so what a query builds never lives in the server, and `serve --engine-memory` caps it:
a query that needs more fails there, or ends that engine, and leaves the server and the other
users untouched. Its process group is written down (engines.ProcessBook) so that a server
restarting after a crash ends it, and it dies with the server.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .cgroups import UserGroup
from .engineconns import EngineSettings
from .engines import (
    ERR_ENGINE,
    SQL,
    EngineChoice,
    JobCancelled,
    JobFailed,
    ProcessBook,
    RunContext,
    ended_hint,
    output_lines,
    spawn_engine,
    stop_process,
)
from .errors import ServiceError
from .logfile import WARN
from .paths import Layout
from .sessions import START_TIMEOUT, read_message, read_ready
from .ticker import Ticker
from .userdb import ensure_demo_file, keep_read_only

log = logging.getLogger("linkis_kernel.local")

ENGINE_MODULE = "linkis_kernel.local.sqlengine"
CATALOG_TIMEOUT = 30.0
# Catalog calls of one user at once: each holds one of the server's 8 HTTP threads while it
# waits, so one user whose engine is slow holds at most half of them; more wait a little.
CATALOG_CALLS_PER_USER = 4
_CATALOG_QUEUE_SECONDS = 5.0
_WAIT_SLICE = 0.5
MSG_SQL_NOT_OPEN = "The SQL engines are not running: the server is starting or shutting down"


class EngineGone(ServiceError):
    """The engine ended before it answered."""


class SqlJob(RunContext, Protocol):
    """A job as the SQL engines see it: whose it is, its labels, where its result sets go, and
    which engine runs it."""

    user: str
    engine: EngineChoice
    result_dir: Path

    def attach_sql_engine(self, engine: SqlEngine | None) -> None: ...


@dataclass(eq=False)
class _Waiter:
    """A job or a catalog call waiting for the engine's last word about it."""

    job: SqlJob | None = None
    answer: dict[str, Any] | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def finish(self, answer: dict[str, Any] | None) -> None:
        self.answer = answer
        self.done.set()


class SqlEngine:
    """One user's SQL engine process and the jobs and catalog calls it is serving."""

    def __init__(
        self, user: str, layout: Layout, cursors: int, memory: int | None, kill_grace: float
    ):
        self.user = user
        self.layout = layout
        self.cursors = cursors
        self.memory = memory
        self.kill_grace = kill_grace
        self.process: subprocess.Popen[bytes] | None = None
        self.group: UserGroup | None = None  # the user's cgroups it runs in
        self.last_used = time.monotonic()
        self._jobs: dict[int, _Waiter] = {}
        self._calls: dict[int, _Waiter] = {}
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._ended = threading.Event()

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    @property
    def alive(self) -> bool:
        return self.process is not None and not self._ended.is_set()

    def busy(self) -> bool:
        with self._lock:
            return bool(self._jobs or self._calls)

    # -- start and stop ---------------------------------------------------------------------
    def start(self, group: UserGroup | None = None) -> None:
        """Start the engine process (in the user's cgroups `group`, if any) and wait until it
        is ready (JobFailed if it is not)."""
        area = self.layout.user_area(self.user)
        area.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", ENGINE_MODULE, str(self.layout.root), self.user,
                   str(self.cursors), str(self.memory or 0)]  # fmt: skip
        self.process = spawn_engine(
            command, area, stdin=subprocess.PIPE, what="SQL", memory=self.memory, group=group
        )
        self.group = group
        threading.Thread(target=self._pump_stderr, daemon=True, name="linkis-sql-stderr").start()
        ready = read_ready(self.process, START_TIMEOUT)
        if ready is None or ready.get("op") != "ready":
            stop_process(self.process)
            self._ended.set()
            log.warning("SQL engine of %s did not start (what it wrote is above)", self.user)
            raise JobFailed(
                ERR_ENGINE,
                "your SQL engine did not start; try again, and if it fails again ask the "
                "server's owner to look at server.log",
            )
        threading.Thread(target=self._read_answers, daemon=True, name="linkis-sql").start()

    def stop(self) -> None:
        """Ask the engine to end, then end its process group (unless it already ended: its
        process id may be another's by now)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        self._send({"op": "exit"})
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(2.0)
        stop_process(process)

    # -- jobs and catalog calls --------------------------------------------------------------
    def run(self, job: SqlJob) -> None:
        """Run `job`'s SQL; raises JobFailed / JobCancelled as it ends."""
        waiter = _Waiter(job)
        kills = self.group.oom_kills() if self.group is not None else 0  # its user's, so far
        with self._lock:
            self._jobs[job.task_id] = waiter
        job.attach_sql_engine(self)
        try:
            self._send({"op": "run", "job": job.task_id, "code": job.code,
                        "creator": job.creator, "engine_type": job.engine.engine_type,
                        "result_dir": str(job.result_dir)})  # fmt: skip
            if job.cancelled.is_set():  # killed while the request was on its way
                self.interrupt(job)
            if self._ended.is_set():
                waiter.finish(None)
            self._wait_within_kill_grace(job, waiter)
        finally:
            job.attach_sql_engine(None)
            with self._lock:
                self._jobs.pop(job.task_id, None)
                self.last_used = time.monotonic()
        _raise_outcome(waiter.answer, job, lambda: self.died(kills))

    def _wait_within_kill_grace(self, job: SqlJob, waiter: _Waiter) -> None:
        """Wait for the job's end; one that has not stopped `kill_grace` seconds after its kill
        ends the engine (and with it the user's other SQL jobs: their engine is gone)."""
        killed_at: float | None = None
        while not waiter.done.wait(_WAIT_SLICE):
            if not job.cancelled.is_set():
                continue
            killed_at = killed_at or time.monotonic()
            if time.monotonic() - killed_at >= self.kill_grace:
                job.write_log(
                    WARN,
                    f"The statement did not stop within {self.kill_grace:g} s of the kill, so your "
                    "SQL engine was ended; the next SQL job starts a new one.",
                )
                self.stop()
                waiter.done.wait()

    def interrupt(self, job: RunContext) -> None:
        self._send({"op": "interrupt", "job": job.task_id})

    def ask(self, what: str, **args: Any) -> Any:
        """The engine's answer to a catalog question (catalog.py); ServiceError if it fails."""
        waiter = _Waiter()
        number = next(self._numbers)
        with self._lock:
            self._calls[number] = waiter
        try:
            self._send({"op": "catalog", "call": number, "what": what, "args": args})
            if self._ended.is_set():
                waiter.finish(None)
            if not waiter.done.wait(CATALOG_TIMEOUT):
                raise ServiceError("Your SQL engine did not answer; try again")
        finally:
            with self._lock:
                self._calls.pop(number, None)
                self.last_used = time.monotonic()
        answer = waiter.answer
        if answer is None:
            raise EngineGone("Your SQL engine stopped; try again")
        error = answer.get("error")
        if error:
            raise ServiceError(
                str(error.get("message")), status=int(error.get("status") or 1),
                code=error.get("code"),
            )  # fmt: skip
        return answer.get("value")

    def _send(self, request: dict[str, Any]) -> None:
        process = self.process
        if process is None or process.stdin is None:
            return
        with self._write_lock, contextlib.suppress(OSError, ValueError):
            process.stdin.write((json.dumps(request) + "\n").encode())
            process.stdin.flush()  # a gone engine: reading its answers says so

    # -- what the engine says ---------------------------------------------------------------
    def _read_answers(self) -> None:
        """Hand each message to its job or call until the engine ends, then wake them all."""
        process = self.process
        assert process is not None and process.stdout is not None
        try:
            while (message := read_message(process.stdout)) is not None:
                try:
                    self._dispatch(message)
                except Exception:  # a job's log cannot be written: the engine goes on
                    log.exception("SQL engine of %s: a message could not be handled", self.user)
        finally:
            process.wait()  # it closed its output: it is ending
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            self._ended.set()
            with self._lock:
                waiting = [*self._jobs.values(), *self._calls.values()]
            for waiter in waiting:
                waiter.finish(None)

    def _dispatch(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        with self._lock:
            if op == "answer":
                call = self._calls.get(int(message.get("call") or 0))
                if call is not None:
                    call.finish(message)
                return
            waiter = self._jobs.get(int(message.get("job") or 0))
        if waiter is None or waiter.job is None:
            return
        job = waiter.job
        if op == "log":
            job.write_log(str(message.get("level")), str(message.get("text", "")))
        elif op == "statements":
            job.start_statements(int(message.get("count", 1)))
        elif op == "progress":
            job.statement_progress(int(message.get("index", 0)), float(message.get("fraction", 0)))
        elif op == "done":
            waiter.finish(message)

    def _pump_stderr(self) -> None:
        process = self.process
        assert process is not None and process.stderr is not None
        for raw in output_lines(process.stderr):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            log.info("SQL engine of %s: %s", self.user, line)

    def died(self, kills_before: int) -> str:
        """How the engine ended, for a job it was running that started when its user's
        cgroups had seen `kills_before` processes ended at their memory limit."""
        code = self.process.wait() if self.process is not None else None
        text = f"Your SQL engine (pid {self.pid}) exited with status {code} while running this job"
        hint = ended_hint(self.memory, self.group, kills_before)
        return f"{text}; the next SQL job starts a new one.{hint}"


def _raise_outcome(
    answer: dict[str, Any] | None, job: SqlJob, how_it_died: Callable[[], str]
) -> None:
    """End the job as the engine's `done` says (None: the engine died)."""
    if answer is None:
        if job.cancelled.is_set():
            raise JobCancelled
        raise JobFailed(ERR_ENGINE, how_it_died())
    if answer.get("cancelled") or job.cancelled.is_set():
        raise JobCancelled
    error = answer.get("error")
    if error:
        code = int(error.get("code") or ERR_ENGINE)
        raise JobFailed(code, str(error.get("message")), list(error.get("details") or []))


class SqlEngines:
    """The users' SQL engines of one server, each with `cursors` cursors for jobs: started on
    first use (and again after one ended), in the user's cgroups, ended when idle for the
    settings' idle timeout, all ended on close. A statement that has not stopped within the
    kill grace of its kill ends its engine."""

    def __init__(self, layout: Layout, cursors: int, settings: EngineSettings, book: ProcessBook):
        self.layout = layout
        self._cursors = cursors
        self._settings = settings
        self._book = book
        self._idle_timeout = settings.idle_timeout
        self._engines: dict[str, SqlEngine] = {}
        self._starting: dict[str, threading.Lock] = {}  # held while a user's engine starts or ends
        self._calls: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()
        self._running = False
        self._idle_check = Ticker(
            "linkis-sql-idle", max(0.05, min(10.0, self._idle_timeout / 4)), self._end_idle
        )
        self._demo_keeper: Any = None

    def start(self) -> None:
        """Create the demo database the first time, and hold it read-only so that no engine
        can open it read-write."""
        ensure_demo_file(self.layout.demo_file)
        self._demo_keeper = keep_read_only(self.layout.demo_file)
        self._running = True
        self._idle_check.start()

    def _user_lock(self, user: str) -> threading.Lock:
        with self._lock:
            if not self._running:
                raise ServiceError(MSG_SQL_NOT_OPEN)
            return self._starting.setdefault(user, threading.Lock())

    def engine(self, user: str) -> SqlEngine:
        """`user`'s running SQL engine, started if there is none."""
        with self._user_lock(user):
            with self._lock:
                engine = self._engines.get(user)
                if engine is not None and engine.alive:
                    engine.last_used = time.monotonic()  # not idle: a job or a call comes
                    return engine
            if engine is not None:
                self._book.remove_process(engine.pid)
            memory, grace = self._settings.memory, self._settings.kill_grace_for(SQL)
            engine = SqlEngine(user, self.layout, self._cursors, memory, grace)
            engine.start(self._settings.sandboxing.group_for(user))
            self._book.add_process(engine.pid)
            with self._lock:
                running = self._running
                if running:
                    self._engines[user] = engine
            if not running:  # the server closed while it started
                self._end(engine)
                raise ServiceError(MSG_SQL_NOT_OPEN)
            return engine

    def run(self, job: SqlJob) -> None:
        self.engine(job.user).run(job)

    def tables(self, user: str, database: str | None) -> Any:
        return self._ask(user, "tables", database=database)

    def columns(self, user: str, database: str | None, table: str | None) -> Any:
        return self._ask(user, "columns", database=database, table=table)

    def databases(self, user: str) -> Any:
        return self._ask(user, "databases")

    def _ask(self, user: str, what: str, **args: Any) -> Any:
        """A catalog question to `user`'s engine; at most CATALOG_CALLS_PER_USER at once, so a
        user whose engine is slow cannot hold every HTTP thread of the server."""
        with self._lock:
            calls = self._calls.setdefault(user, threading.BoundedSemaphore(CATALOG_CALLS_PER_USER))
        if not calls.acquire(timeout=_CATALOG_QUEUE_SECONDS):
            raise ServiceError(
                "Your SQL engine is still answering your earlier requests about your tables; "
                "try again in a moment"
            )
        try:
            try:
                return self.engine(user).ask(what, **args)
            except EngineGone:  # it died before we knew: the next one answers
                return self.engine(user).ask(what, **args)
        except JobFailed as exc:
            raise ServiceError(str(exc)) from None
        finally:
            calls.release()

    def _end_idle(self) -> None:
        now = time.monotonic()
        with self._lock:
            idle = [
                user for user, engine in self._engines.items()
                if not engine.busy() and now - engine.last_used >= self._idle_timeout
            ]  # fmt: skip
        for user in idle:
            with self._user_lock(user):  # no engine of this user starts until this one ended
                with self._lock:
                    engine = self._engines.get(user)
                    if (
                        engine is None
                        or engine.busy()
                        or now - engine.last_used < self._idle_timeout
                    ):
                        continue
                    del self._engines[user]
                self._end(engine)

    def _end(self, engine: SqlEngine) -> None:
        engine.stop()
        self._book.remove_process(engine.pid)

    def close(self) -> None:
        """End every engine (their jobs were killed before) and let go of the demo database."""
        self._idle_check.stop()
        with self._lock:
            self._running = False
            engines = list(self._engines.values())
            self._engines.clear()
        for engine in engines:
            self._end(engine)
        if self._demo_keeper is not None:
            self._demo_keeper.close()
            self._demo_keeper = None
