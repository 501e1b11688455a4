"""Engine sessions: one long-lived Python engine process (an EngineConn) and the jobs it runs.

An `EngineSession` starts `pyengine.py` in its own process group, sends it one job at a time and
turns its answers into result sets and log lines of that job. A kill interrupts the running
statement (SIGINT, i.e. KeyboardInterrupt in the engine); if the statement has not stopped after
`kill_grace` seconds the whole process group is ended. `EngineManager` (engineconns.py) decides
which session a job gets.

A pyspark engine runs Spark in its own JVM; Spark's console output (log4j lines) reaches the
running job's log at the level its line names, and the stages it reports become the job's
`progressInfo`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NoReturn

from ..wire import RESULT_HTML, RESULT_TABLE, RESULT_TEXT
from .cgroups import UserGroup
from .dolphin import Column, ResultWriter
from .engines import (
    ERR_ENGINE,
    ERR_PYTHON,
    ERR_SQL,
    MAX_LINE_BYTES,
    JobCancelled,
    JobFailed,
    RunContext,
    ended_hint,
    memory_hint,
    output_lines,
    sample_resources,
    spawn_engine,
    stop_process,
)
from .history import now_ms
from .logfile import ERROR, INFO, WARN
from .sandbox import Sandbox

log = logging.getLogger("linkis_kernel.local")

ENGINE_SCRIPT = Path(__file__).with_name("pyengine.py")
ENGINECONN_APPLICATION = "linkis-cg-engineconn"
# The Linkis python engine's PYSPARK_PROCESSS_STOPPED (errCode 60003).
ERR_ENGINE_STOPPED = 60003
MSG_ENGINE_STOPPED = "Pyspark process  has stopped, query failed!(Pyspark 进程已停止，查询失败！)"
START_TIMEOUT = 60.0
_STOP_GRACE = 2.0
_INTERRUPT_REPEAT = 0.5
# A message from an engine longer than this (one print of more text) is dropped, not read whole.
MAX_MESSAGE_BYTES = 64 << 20
MSG_MESSAGE_DROPPED = (
    "The engine's output of more than 64 MiB written at once was dropped; print it in parts"
)

# NodeStatus names of Linkis, as the LinkisManager endpoints show them.
STARTING, UNLOCK, BUSY, SHUTTING_DOWN = "Starting", "Unlock", "Busy", "ShuttingDown"
# A log4j line as Spark prints it: `26/11/30 23:36:20 WARN NativeCodeLoader: ...`.
_LOG4J_LINE = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (TRACE|DEBUG|INFO|WARN|ERROR|FATAL) ")
_JSON_LOG_LINE = re.compile(r'^\{"ts": "[^"]*", "level": "(TRACE|DEBUG|INFO|WARN|ERROR|FATAL)"')
_LOG4J_LEVELS = {"TRACE": INFO, "DEBUG": INFO, "INFO": INFO, "WARN": WARN, "ERROR": ERROR,
                 "FATAL": ERROR}  # fmt: skip


@dataclass(frozen=True)
class EngineKey:
    """The labels an engine is shared under: one engine per user, creator and engine."""

    user: str
    creator: str
    engine_type: str
    version: str

    @property
    def user_creator(self) -> str:
        return f"{self.user}-{self.creator}"

    @property
    def engine_label(self) -> str:
        return f"{self.engine_type}-{self.version}"


class EngineSession:
    """One engine process and what it is doing."""

    def __init__(self, key: EngineKey, host: str, *, engine_kind: str, kill_grace: float):
        self.key = key
        self.host = host
        self.engine_kind = engine_kind  # "python" or "pyspark" (what pyengine.py predefines)
        self.kill_grace = kill_grace
        self.options: tuple[str, ...] = ()  # more arguments of pyengine.py (which Spark, ...)
        self.memory_cap: int | None = None  # bytes each of its processes may use
        self.group: UserGroup | None = None  # its user's cgroups, with their memory limit
        self.spark: dict[str, Any] | None = None  # what a pyspark engine said about its Spark
        self.ticket_id = str(uuid.uuid4())
        self.process: subprocess.Popen[bytes] | None = None
        self.status = STARTING
        self.started_ms = 0
        self.start_seconds = 0.0
        self.last_used = time.monotonic()
        self.jobs_run = 0
        self.holder: RunContext | None = None  # the job this session is reserved for
        self.end_reason: str | None = None
        self.record_id: int | None = None
        self._lock = threading.Lock()
        self._killed_job: RunContext | None = None

    # -- identity ---------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    @property
    def instance(self) -> str:
        """The EngineConn's `host:port`; the engine process id stands in for the port."""
        return f"{self.host}:{self.pid}"

    def service_instance(self) -> str:
        """`ServiceInstance(...)` as Linkis prints it in job logs."""
        return f"ServiceInstance({ENGINECONN_APPLICATION}, {self.instance}, {self.started_ms})"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None and not self.end_reason

    @property
    def started(self) -> bool:
        return self.process is not None

    def memory(self) -> int:
        """The engine's resident memory in bytes, with what it started (a Spark JVM); 0 before
        it starts or once gone."""
        sample = sample_resources(self.pid, 0.0) if self.started else None
        return sample.rss_bytes if sample is not None else 0

    @property
    def real_spark(self) -> bool:
        return bool(self.spark and self.spark.get("real"))

    @property
    def cores(self) -> int:
        """The cores Spark runs tasks on (sc.defaultParallelism); 0 for other engines."""
        return int((self.spark or {}).get("cores") or 0)

    def idle_seconds(self) -> float:
        return 0.0 if self.holder is not None else time.monotonic() - self.last_used

    # -- start ------------------------------------------------------------------------------
    def start(
        self, scratch: Path, sandbox: Sandbox | None = None, memory: int | None = None
    ) -> None:
        """Start the engine process (under `sandbox` if given, capped at `memory` bytes) and wait
        until it is ready."""
        began = time.monotonic()
        self.started_ms = now_ms()
        scratch.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-P", "-u", str(ENGINE_SCRIPT), self.engine_kind, *self.options]
        self.memory_cap = memory
        self.group = sandbox.group if sandbox is not None else None
        self.process = spawn_engine(
            command, scratch, stdin=subprocess.PIPE, what="python", sandbox=sandbox, memory=memory
        )
        threading.Thread(target=self._pump_stderr, daemon=True, name="linkis-ec-stderr").start()
        ready = read_ready(self.process, START_TIMEOUT)
        if ready is not None and isinstance(ready.get("spark"), dict):
            self.spark = ready["spark"]
        if ready is None or ready.get("op") != "ready":
            code = self.stop()
            raise JobFailed(
                ERR_ENGINE,
                f"the python engine did not start (it exited with status {code}); "
                "see the WARN lines above for what it printed",
            )
        self.start_seconds = time.monotonic() - began
        self.status = UNLOCK

    def _pump_stderr(self) -> None:
        """What the engine writes to fds 1 and 2: the log of the job it runs or starts for (at
        the level a log4j line names, WARN otherwise), else the server log."""
        process = self.process
        assert process is not None and process.stderr is not None
        level = WARN
        for raw in output_lines(process.stderr):
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            level = _log_level(line, level)
            job = self.holder
            if job is not None and self.status in (BUSY, STARTING):
                job.write_log(level, line)
            else:
                log.info("engine %s: %s", self.instance, line)

    # -- running a job ----------------------------------------------------------------------
    def run(self, job: RunContext, language: str = "python", limit: int | None = None) -> None:
        """Run `job` (Python code, or a SQL script on the engine's Spark) on this engine;
        raises JobFailed / JobCancelled as the job ends."""
        assert self.process is not None and self.process.stdin is not None
        with self._lock:
            self.status = BUSY
            self.jobs_run += 1
        job.start_statements(1)
        job.statement_progress(0, 0.0)
        results = ResultStream(job)
        kills = self.group.oom_kills() if self.group is not None else 0
        request = {"op": "run", "code": job.code, "job": job.task_id, "language": language,
                   "limit": limit}  # fmt: skip
        try:
            try:
                self.process.stdin.write((json.dumps(request) + "\n").encode())
                self.process.stdin.flush()
            except OSError:
                pass  # the engine is gone: reading its answer says so
            if job.cancelled.is_set():  # killed while the request was on its way
                self.interrupt(job)
            done = self._read_until_done(job, results)
        finally:
            results.close()
            with self._lock:
                self.last_used = time.monotonic()
                if self.status == BUSY:
                    self.status = UNLOCK
        if done is None:
            self._engine_died(job, kills)
        if done.get("cancelled") or job.cancelled.is_set():
            raise JobCancelled
        error = done.get("error")
        if error:
            code = ERR_SQL if language == "sql" else ERR_PYTHON
            summary = str(error.get("summary"))
            if summary.startswith("MemoryError"):
                summary += "\n" + memory_hint(self.memory_cap)
            raise JobFailed(code, summary, list(error.get("traceback", [])))
        job.finish_statements()

    def _read_until_done(self, job: RunContext, results: ResultStream) -> dict[str, Any] | None:
        current = 0
        assert self.process is not None and self.process.stdout is not None
        while (message := read_message(self.process.stdout)) is not None:
            op = message.get("op")
            if op == "done":
                return message
            if op == "statements":
                job.start_statements(max(1, int(message.get("count", 1))))
            elif op == "statement":
                current = int(message.get("index", 0))
                job.statement_progress(current - 1, 1.0)
                job.write_log(INFO, f"Statement {current + 1}: {message.get('text', '')}")
                job.statement_progress(current, 0.0)
            elif op == "stages":
                job.spark_stages(current, list(message.get("stages", [])))
            elif op == "out":
                results.text(str(message.get("text", "")))
            elif op == "log":
                job.write_log(str(message.get("level", INFO)), str(message.get("text", "")))
            elif op == "table":
                results.table(message.get("columns", []), message.get("rows", []))
            elif op == "html":
                results.html(str(message.get("html", "")))
        return None

    def _engine_died(self, job: RunContext, kills_before: int) -> NoReturn:
        assert self.process is not None
        code = self.process.wait()
        self.status = SHUTTING_DOWN
        killed = self._killed_job is job
        if self.end_reason is None:
            self.end_reason = f"it exited with status {code} while running job {job.task_id}"
        if killed or job.cancelled.is_set():
            raise JobCancelled
        raise JobFailed(
            ERR_ENGINE_STOPPED,
            f"{MSG_ENGINE_STOPPED} The python engine EngineConn {self.instance} exited with "
            f"status {code} while running this job; what it held in memory is lost, and the "
            "next job starts a new engine." + ended_hint(self.memory_cap, self.group, kills_before),
        )

    # -- kill and stop ----------------------------------------------------------------------
    def interrupt(self, job: RunContext) -> None:
        """KeyboardInterrupt in the running statement (a pyspark engine also cancels its Spark
        jobs); the engine ends if it has not stopped within the grace period."""
        if self.holder is not job or not self.alive:
            return
        threading.Thread(target=self._interrupt_until_stopped, args=(job,), daemon=True).start()

    def _interrupt_until_stopped(self, job: RunContext) -> None:
        """SIGINT now and again while the job runs (an engine that had not begun the statement
        when a signal came ignores it; it interrupts a statement once), then the grace ends."""
        deadline = time.monotonic() + self.kill_grace
        while self._still_running(job) and (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGINT)
            time.sleep(min(_INTERRUPT_REPEAT, left))
        self._end_if_still_running(job)

    def _still_running(self, job: RunContext) -> bool:
        return self.holder is job and self.status == BUSY and self.alive

    def _end_if_still_running(self, job: RunContext) -> None:
        if not self._still_running(job):
            return
        self._killed_job = job
        job.write_log(
            WARN,
            f"The statement did not stop within {self.kill_grace:g} s of the kill, so engine "
            f"EngineConn {self.instance} was ended; the next job starts a new engine.",
        )
        self.end_reason = f"job {job.task_id} was killed and did not stop within the grace period"
        self.stop()

    def stop(self) -> int | None:
        """End the engine's whole process group (SIGTERM, then SIGKILL); its exit status."""
        process = self.process
        if process is None:
            return None
        self.status = SHUTTING_DOWN
        if process.poll() is None and process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        for signum in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signum)
            with contextlib.suppress(subprocess.TimeoutExpired):
                return process.wait(_STOP_GRACE)
        return process.poll()


def read_ready(process: subprocess.Popen[bytes], timeout: float) -> dict[str, Any] | None:
    """The first message of an engine process that just started; None if it ended first, or
    said nothing within `timeout` seconds (it is then stopped)."""
    assert process.stdout is not None
    timer = threading.Timer(timeout, stop_process, args=(process,))
    timer.daemon = True
    timer.start()
    try:
        return read_message(process.stdout)
    finally:
        timer.cancel()


def read_message(stream: IO[bytes]) -> dict[str, Any] | None:
    """The next message an engine process wrote on `stream`; None at its end (the engine is
    gone). A message over MAX_MESSAGE_BYTES, or a line that is not one, becomes a WARN log."""
    line = stream.readline(MAX_MESSAGE_BYTES)
    dropped = False
    while len(line) == MAX_MESSAGE_BYTES and not line.endswith(b"\n"):
        dropped = True  # too long to hold: skipped to its end
        line = stream.readline(MAX_MESSAGE_BYTES)
    if dropped:
        return {"op": "log", "level": WARN, "text": MSG_MESSAGE_DROPPED}
    if not line:
        return None
    try:
        message = json.loads(line)
    except ValueError:
        return {"op": "log", "level": WARN, "text": line.decode("utf-8", "replace").rstrip()}
    return message if isinstance(message, dict) else None


def _log_level(line: str, previous: str) -> str:
    """The job log level of a line the engine printed: the level a log4j line (plain or JSON,
    as pyspark logs) names, the previous line's for the rest of a stack trace, else WARN."""
    match = _LOG4J_LINE.match(line) or _JSON_LOG_LINE.match(line)
    if match is not None:
        return _LOG4J_LEVELS[match.group(1)]
    return previous if line[:1].isspace() else WARN


class ResultStream:
    """Turns an engine's output into the job's result sets, in the order it came."""

    def __init__(self, job: RunContext):
        self.job = job
        self._text: ResultWriter | None = None
        self._partial = ""

    def text(self, chunk: str) -> None:
        lines = (self._partial + chunk).split("\n")
        self._partial = lines.pop()
        for line in lines:
            self._write_text(line.rstrip("\r"))
        while len(self._partial) > MAX_LINE_BYTES:
            self._write_text(self._partial[:MAX_LINE_BYTES])
            self._partial = self._partial[MAX_LINE_BYTES:]

    def _write_text(self, line: str) -> None:
        """`line` as rows of at most MAX_LINE_BYTES characters."""
        writer = self._text_writer()
        for start in range(0, max(len(line), 1), MAX_LINE_BYTES):
            writer.write_line(line[start : start + MAX_LINE_BYTES])

    def _text_writer(self) -> ResultWriter:
        if self._text is None:
            self._text = self.job.new_result(RESULT_TEXT, None)
        return self._text

    def table(self, columns: list, rows: list) -> None:
        self._end_text()
        described = [Column(str(name), str(data_type)) for name, data_type in columns]
        with self.job.new_result(RESULT_TABLE, described) as writer:
            for row in rows:
                writer.write_row([None if cell is None else str(cell) for cell in row])
        self._written(writer, "rows")

    def html(self, html: str) -> None:
        self._end_text()
        with self.job.new_result(RESULT_HTML, None) as writer:
            writer.write_line(html)
        self._written(writer, "lines")

    def _end_text(self) -> None:
        if self._partial:
            self._text_writer().write_line(self._partial)
            self._partial = ""
        if self._text is not None:
            self._text.close()
            self._written(self._text, "lines")
            self._text = None

    def _written(self, writer: ResultWriter, unit: str) -> None:
        self.job.write_log(INFO, f"Result set {writer.path.name} written ({writer.rows} {unit}).")

    def close(self) -> None:
        self._end_text()
