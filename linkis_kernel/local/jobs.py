"""Jobs of the embedded server: in-memory state, the bounded worker pool, progress, kill."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..wire import (
    CANCELLED,
    FAILED,
    QUEUE_POSITION_LOG,
    RUNNING,
    SCHEDULED,
    SUCCEED,
    TERMINAL_STATES,
)
from .dolphin import Column, ResultWriter
from .engines import (
    EngineChoice,
    JobFailed,
    ResourceSample,
    sample_resources,
    stop_process,
    yarn_metrics,
)
from .ids import ShortId
from .logfile import ERROR, INFO, JobLog
from .sessions import EngineSession
from .sqlengines import SqlEngine
from .ticker import Ticker

_MONITOR_SECONDS = 0.2
_PERSIST_SECONDS = 0.5
_NOT_DONE_CAP = 0.99
_CPU_WINDOW_SECONDS = 0.5
_STAGE_FIELDS = ("id", "succeedTasks", "failedTasks", "runningTasks", "totalTasks")


@dataclass(eq=False)
class Job:
    """A job this server process holds in memory (the entrance's view of it)."""

    task_id: int
    exec_id: str
    short_id: ShortId
    user: str
    creator: str
    engine: EngineChoice
    code: str
    log: JobLog
    result_dir: Path
    scratch_dir: Path
    state: str = SCHEDULED
    cancelled: threading.Event = field(default_factory=threading.Event)
    err_code: int | None = None
    err_desc: str | None = None
    queue_position: int | None = None
    cancel_reason: str | None = None  # errDesc when the job ends Cancelled; None: killed by user
    stop_error: JobFailed | None = None  # why the server stopped the job, which ends Failed
    # The user's disk usage past which the server stops the job (quota.py); None until it starts.
    disk_limit: int | None = None
    process: subprocess.Popen | None = None  # a shell job's process
    session: EngineSession | None = None  # the engine (EngineConn) a Python job runs on
    sql_engine: SqlEngine | None = None  # the user's SQL engine, while it runs this job
    _engine_start: int | None = None  # None: no engine start shown; 0 starting; 1 started
    _fractions: list[float] = field(default_factory=list)
    _stages: list[dict] = field(default_factory=list)
    _sample: ResourceSample | None = None
    _cores: float = 0.0
    _shown: float = 0.0
    _results: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- RunContext, used by the engines ------------------------------------------------------
    def write_log(self, level: str, message: str) -> None:
        self.log.write(level, message)

    def new_result(self, type_code: str, columns: list[Column] | None) -> ResultWriter:
        with self._lock:
            number = self._results
            self._results += 1
        return ResultWriter(self.result_dir / f"_{number}.dolphin", type_code, columns)

    def start_statements(self, count: int) -> None:
        with self._lock:
            self._fractions = [0.0] * count

    def statement_progress(self, index: int, fraction: float) -> None:
        with self._lock:
            if 0 <= index < len(self._fractions):
                self._fractions[index] = max(self._fractions[index], min(max(fraction, 0.0), 1.0))

    def finish_statements(self) -> None:
        with self._lock:
            self._fractions = [1.0] * len(self._fractions)

    def spark_stages(self, index: int, stages: list[dict]) -> None:
        """The Spark stages of the job so far; statement `index` is their finished-task share."""
        total = sum(int(s.get("totalTasks", 0)) for s in stages)
        done = sum(int(s.get("succeedTasks", 0)) for s in stages)
        with self._lock:
            self._stages = [{key: stage[key] for key in _STAGE_FIELDS} for stage in stages]
        if total:
            self.statement_progress(index, done / total)

    def attach_process(self, process: subprocess.Popen | None) -> None:
        with self._lock:
            self.process = process

    def attach_sql_engine(self, engine: SqlEngine | None) -> None:
        with self._lock:
            self.sql_engine = engine

    def engine_starting(self, starting: bool) -> None:
        """Show the engine start as a step of progressInfo while it lasts, done after."""
        with self._lock:
            self._engine_start = 0 if starting else 1

    def waits_for_engine(self) -> bool:
        """Whether the job's engine is still starting (nothing of the job runs yet)."""
        with self._lock:
            return self._engine_start == 0

    def attach_session(self, session: EngineSession | None) -> None:
        with self._lock:
            self.session = session

    # -- views ----------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES

    def progress(self) -> float:
        """Overall progress: monotonic, below 1 until the job is final, then exactly 1.0."""
        with self._lock:
            if self.state in TERMINAL_STATES:
                return 1.0
            if not self._fractions:
                return self._shown
            value = min(sum(self._fractions) / len(self._fractions), _NOT_DONE_CAP)
            self._shown = max(self._shown, value)
            return self._shown

    def progress_info(self) -> list[dict]:
        """The engine start while a job waits for its engine, then the stages a real Spark
        reports (docs/linkis-rest.md, "Progress"); DuckDB, Python and Shell have no stages, so
        none are made up for them."""
        with self._lock:
            start = [] if self._engine_start is None else [self._engine_stage()]
            return start + [dict(stage) for stage in self._stages]

    def _engine_stage(self) -> dict:
        done = self._engine_start or 0
        return {
            "id": f"jobId_{self.task_id}_engineconn_start",
            "succeedTasks": done,
            "failedTasks": 0,
            "runningTasks": 1 - done,
            "totalTasks": 1,
        }

    def start_running(self) -> bool:
        """Scheduled -> Running; False when the job was killed before it could start."""
        with self._lock:
            if self.state in TERMINAL_STATES or self.cancelled.is_set():
                return False
            self.state = RUNNING
            return True

    def end(self, state: str, err_code: int | None, err_desc: str) -> bool:
        """Move to a final state once; False when the job had already ended."""
        with self._lock:
            if self.state in TERMINAL_STATES:
                return False
            self.state, self.err_code, self.err_desc = state, err_code, err_desc
            return True

    def engine_handles(self) -> tuple[SqlEngine | None, subprocess.Popen | None]:
        """The SQL engine or the process currently doing the work (either may be None)."""
        with self._lock:
            return self.sql_engine, self.process

    def engine_pid(self) -> int:
        """The process doing the work: the job's engine or subprocess, else this server."""
        with self._lock:
            if self.session is not None and self.session.started:
                return self.session.pid
            if self.sql_engine is not None:
                return self.sql_engine.pid
            return self.process.pid if self.process is not None else os.getpid()

    def sample_resources(self) -> None:
        """Refresh memory and cores-in-use figures (cores from CPU time over the last window)."""
        sample = sample_resources(self.engine_pid(), time.monotonic())
        if sample is None:
            return
        with self._lock:
            previous = self._sample
            if previous is not None and previous.pid == sample.pid:
                elapsed = sample.taken_at - previous.taken_at
                if elapsed < _CPU_WINDOW_SECONDS:
                    return
                self._cores = max(0.0, (sample.cpu_seconds - previous.cpu_seconds) / elapsed)
            self._sample = sample

    def yarn_metrics(self) -> dict:
        """Local resource use in the yarnMetrics shape (for a running job): a Spark engine's
        cores and memory (its JVM's too), else the CPU use of the process doing the work."""
        with self._lock:
            session = self.session
        if session is not None and session.real_spark:
            spark = ResourceSample(session.pid, session.memory(), 0.0, time.monotonic())
            return yarn_metrics(spark, float(session.cores))
        with self._lock:
            sample, cores = self._sample, self._cores
        if sample is None:
            self.sample_resources()
            with self._lock:
                sample, cores = self._sample, self._cores
        if sample is None:
            sample = ResourceSample(self.engine_pid(), 0, 0.0, time.monotonic())
        return yarn_metrics(sample, cores)


class Scheduler:
    """At most `workers` jobs of each user run at once; the rest wait as Scheduled, each user's
    in FIFO order, so one user's jobs never keep another's from starting."""

    def __init__(self, workers: int, run: Callable[[Job], None]):
        self.workers = max(1, workers)
        self._run = run
        self._lock = threading.Lock()
        self._waiting: deque[Job] = deque()
        self._running: set[Job] = set()
        self._threads: set[threading.Thread] = set()

    def submit(self, job: Job) -> None:
        with self._lock:
            self._waiting.append(job)
            self._start_what_may_run()

    def _start_what_may_run(self) -> None:
        """Start each waiting job whose user runs fewer than `workers` jobs (call locked)."""
        for job in list(self._waiting):
            if sum(1 for other in self._running if other.user == job.user) < self.workers:
                self._waiting.remove(job)
                self._start(job)
        self._announce_positions()

    def _start(self, job: Job) -> None:
        self._running.add(job)
        thread = threading.Thread(
            target=self._work, args=(job,), name=f"linkis-job-{job.task_id}", daemon=True
        )
        self._threads.add(thread)
        thread.start()

    def _work(self, job: Job) -> None:
        try:
            self._run(job)
        finally:
            with self._lock:
                self._running.discard(job)
                self._threads.discard(threading.current_thread())
                self._start_what_may_run()

    def _announce_positions(self) -> None:
        """Tell each waiting job how many jobs of its user wait before it."""
        ahead_of: dict[str, int] = {}
        for job in self._waiting:
            ahead = ahead_of.get(job.user, 0)
            ahead_of[job.user] = ahead + 1
            if job.queue_position != ahead:
                job.queue_position = ahead
                job.write_log(INFO, QUEUE_POSITION_LOG.format(ahead=ahead))

    def remove_waiting(self, job: Job) -> bool:
        """Take a queued job out of the queue; False when it already started."""
        with self._lock:
            if job not in self._waiting:
                return False
            self._waiting.remove(job)
            self._announce_positions()
            return True

    def drain(self) -> list[Job]:
        """Empty the queue (on shutdown); returns the jobs that were waiting."""
        with self._lock:
            jobs = list(self._waiting)
            self._waiting.clear()
            return jobs

    def running(self) -> list[Job]:
        with self._lock:
            return list(self._running)

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


class ProgressMonitor:
    """Samples the resources of running jobs' engines and persists their progress, throttled."""

    def __init__(self, scheduler: Scheduler, persist: Callable[[Job, float], None]):
        self._scheduler = scheduler
        self._persist = persist
        self._last: dict[int, tuple[float, float]] = {}
        self._ticker = Ticker("linkis-progress", _MONITOR_SECONDS, self._poll_all)

    def start(self) -> None:
        self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()

    def _poll_all(self) -> None:
        running = self._scheduler.running()
        for job in running:
            self._poll(job)
        live = {job.task_id for job in running}
        for task_id in [t for t in self._last if t not in live]:
            del self._last[task_id]

    def _poll(self, job: Job) -> None:
        job.sample_resources()
        value = job.progress()
        stamp, shown = self._last.get(job.task_id, (0.0, -1.0))
        now = time.monotonic()
        if value != shown and now - stamp >= _PERSIST_SECONDS:
            self._last[job.task_id] = (now, value)
            self._persist(job, value)


def kill_running(job: Job) -> None:
    """Stop a running job's engine without waiting for it: interrupt the statement of its SQL
    engine or engine session, or kill the job's process group."""
    job.cancelled.set()
    if job.session is not None:
        job.session.interrupt(job)
    sql_engine, process = job.engine_handles()
    if sql_engine is not None:
        sql_engine.interrupt(job)
    if process is not None:
        threading.Thread(target=stop_process, args=(process,), daemon=True).start()


def finish_line(job: Job) -> tuple[str, str]:
    """The closing log line for a job's final state."""
    if job.state == SUCCEED:
        return INFO, "Congratulations. Your job completed with status Success."
    if job.state == CANCELLED:
        return INFO, "Your job was killed by the user (status Cancelled)."
    if job.state == FAILED:
        return ERROR, f"Your job failed with errCode {job.err_code}; see the ERROR lines above."
    return INFO, f"Your job ended with status {job.state}."
