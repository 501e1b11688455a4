"""`EngineManager`: which engine session a job runs on, and the engines' lifecycle.

Like the LinkisManager, it keeps one engine per (user, creator, engine type and version):
a job reuses the idle engine with its labels, or gets a new one. A user has at most
`max_per_user` engines: when one more is needed the oldest idle one is ended, and when all are
busy the job waits (Scheduled) until one is free. Engines idle for `idle_timeout` seconds end.
Every engine is recorded (`EngineRecords`, what `ecinfo/ecrHistoryList` lists) and its process
id is written down, so a server that restarts after a crash ends the engines it left behind.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import signal
import sqlite3
import threading
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..wire import SCHEDULED
from .engines import JobCancelled, RunContext
from .history import now_ms
from .logfile import INFO
from .pyengine import PYSPARK
from .sandbox import Sandboxing
from .sessions import ENGINE_SCRIPT, STARTING, UNLOCK, EngineKey, EngineSession
from .sparkdata import REAL, demo_parquet, spark_mode

log = logging.getLogger("linkis_kernel.local")

DEFAULT_IDLE_TIMEOUT = 30 * 60.0
DEFAULT_MAX_PER_USER = 10  # Linkis' wds.linkis.rm.instance
DEFAULT_KILL_GRACE = 5.0
# Cancelling a Spark job group and letting its tasks stop takes longer than a Python interrupt.
DEFAULT_SPARK_KILL_GRACE = 20.0
MANAGER_APPLICATION = "linkis-cg-linkismanager"
_WAIT_SLICE = 0.2
PYTHON_RUNTIME = f"Python {platform.python_version()}"  # engines run on this server's Python
# Record statuses (NodeStatus names, as ecrHistoryList shows them).
REC_RUNNING, REC_SUCCESS, REC_FAILED = "Running", "Success", "Failed"


class EngineJob(RunContext, Protocol):
    """A job as the engine manager sees it: it can also show the engine start as a step."""

    def engine_starting(self, starting: bool) -> None: ...


@dataclass(frozen=True)
class EngineSettings:
    """`serve --engine-idle-timeout`, `--max-engines-per-user` and `--engine-kill-grace` (None:
    5 s for Python engines, 20 s for Spark engines), and which Spark the spark engine runs
    (`pyspark` or `duckdb`; None: as LINKIS_KERNEL_SPARK says, sparkdata.py)."""

    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    max_per_user: int = DEFAULT_MAX_PER_USER
    kill_grace: float | None = None
    spark: str | None = None
    sandboxing: Sandboxing = field(default_factory=Sandboxing)  # `serve --sandbox`: sandbox.py
    memory: int | None = None  # `serve --engine-memory`: bytes each engine process may use

    def kill_grace_for(self, engine_kind: str) -> float:
        if self.kill_grace is not None:
            return self.kill_grace
        return DEFAULT_SPARK_KILL_GRACE if engine_kind == PYSPARK else DEFAULT_KILL_GRACE


class EngineRecords:
    """Every engine this data dir has seen (SQLite), and the process ids of the live ones."""

    def __init__(self, folder: Path):
        self.db_file = folder / "engines.sqlite"
        self.pid_file = folder / "engines.pids"
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.db_file, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")  # as job history: no fsync per job
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._db:
            self._db.execute(
                "create table if not exists ecr (id integer primary key autoincrement, "
                "create_user text, creator text, engine_type text, version text, ticket_id text, "
                "service_instance text, ecm_instance text, used_times integer default 0, "
                "create_time integer, used_time integer, release_time integer, status text, "
                "memory integer default 0)"
            )

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "EngineRecords.open() first"
        return self._db

    def add(self, session: EngineSession, ecm_instance: str) -> int:
        key = session.key
        with self._lock, self.db:
            cursor = self.db.execute(
                "insert into ecr (create_user, creator, engine_type, version, ticket_id, "
                "service_instance, ecm_instance, create_time, status) values (?,?,?,?,?,?,?,?,?)",
                (key.user, key.creator, key.engine_type, key.version, session.ticket_id,
                 session.instance, ecm_instance, session.started_ms, REC_RUNNING),
            )  # fmt: skip
        return int(cursor.lastrowid or 0)

    def used(self, record_id: int, memory: int) -> None:
        with self._lock, self.db:
            self.db.execute(
                "update ecr set used_times = used_times + 1, used_time = ?, "
                "memory = max(memory, ?) where id = ?",
                (now_ms(), memory, record_id),
            )

    def released(self, record_id: int, status: str) -> None:
        with self._lock, self.db:
            self.db.execute(
                "update ecr set release_time = ?, status = ? where id = ? and release_time is null",
                (now_ms(), status, record_id),
            )

    def release_all_running(self) -> None:
        """At start: engines recorded as running belonged to a previous server process."""
        with self._lock, self.db:
            self.db.execute(
                "update ecr set release_time = ?, status = ? where release_time is null",
                (now_ms(), REC_FAILED),
            )

    def query(
        self, user: str | None, where: dict[str, Any], page_now: int, page_size: int
    ) -> tuple[list[sqlite3.Row], int]:
        clauses, args = ["create_time between ? and ?"], [where["start"], where["end"]]
        if user is not None:
            clauses.append("create_user = ?")
            args.append(user)
        for column in ("service_instance", "engine_type", "status"):
            if where.get(column):
                clauses.append(f"{column} = ?")
                args.append(where[column])
        sql = " where " + " and ".join(clauses)
        with self._lock:
            total = self.db.execute(f"select count(*) from ecr{sql}", args).fetchone()[0]
            rows = self.db.execute(
                f"select * from ecr{sql} order by create_time desc, id desc limit ? offset ?",
                [*args, page_size, (page_now - 1) * page_size],
            ).fetchall()
        return rows, int(total)

    # -- process ids, to end what a crashed server left behind -----------------------------
    def write_pids(self, pids: list[int]) -> None:
        entries = [{"pid": pid, "start": _process_start(pid)} for pid in pids]
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(entries))
        os.replace(tmp, self.pid_file)

    def reap_leftovers(self) -> int:
        """End engine and shell job processes a previous server process left running; how
        many there were."""
        try:
            entries = json.loads(self.pid_file.read_text())
        except (OSError, ValueError):
            return 0
        ended = 0
        for entry in entries if isinstance(entries, list) else []:
            pid = int(entry.get("pid", 0))
            if pid > 0 and _is_ours(pid, entry.get("start"), str(self.db_file.parent)):
                with suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                    ended += 1
        self.pid_file.unlink(missing_ok=True)
        return ended


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (tells a reused pid apart)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _is_ours(pid: int, start: object, data_dir: str) -> bool:
    """An engine (it runs pyengine.py) or a shell job (its script is in the data dir)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().decode("utf-8", "replace")
    except OSError:
        return False
    ours = str(ENGINE_SCRIPT) in cmdline or data_dir in cmdline
    return ours and _process_start(pid) == start


class EngineManager:
    """The engine sessions of one server process."""

    def __init__(self, folder: Path, scratch: Path, host: str, manager_instance: str,
                 settings: EngineSettings):  # fmt: skip
        self.settings = settings
        self.spark = settings.spark or spark_mode()
        self.host = host
        self.manager_instance = manager_instance
        self.records = EngineRecords(folder)
        self.folder = folder
        self._scratch = scratch
        self._cond = threading.Condition()
        self._sessions: dict[EngineKey, EngineSession] = {}
        self._ended_reasons: dict[EngineKey, str] = {}
        self._job_pids: set[int] = set()
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap_idle, daemon=True, name="linkis-ec-idle")

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self.records.open()
        ended = self.records.reap_leftovers()
        if ended:
            log.warning("ended %d engine process(es) left by a previous server process", ended)
        self.records.release_all_running()
        self._reaper.start()

    def close(self) -> None:
        """End every engine (none is left running) and close the records."""
        self._stop.set()
        with self._cond:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for session in sessions:
            self._end(session, "the server stopped")
        if self._reaper.is_alive():
            self._reaper.join(2)
        self._save_pids()
        self.records.close()

    def _scratch_dir(self, session: EngineSession) -> Path:
        """The engine's working folder."""
        return self._scratch / f"ec-{session.ticket_id}"

    def scratch_dirs(self, user: str) -> list[Path]:
        """The working folders of `user`'s engines, which their jobs may write in."""
        with self._cond:
            return [self._scratch_dir(s) for s in self._sessions.values() if s.key.user == user]

    # -- sessions for jobs ------------------------------------------------------------------
    def acquire(self, job: RunContext, key: EngineKey, engine_kind: str) -> EngineSession:
        """The session `job` runs on, reserved for it: the idle one with its labels, or a new
        one (not started yet). Waits while the labels' engine is busy or the user is at the
        limit of engines, saying why in the job log; JobCancelled if killed meanwhile."""
        said: str | None = None
        with self._cond:
            while True:
                if job.cancelled.is_set():
                    raise JobCancelled
                session, why = self._try_reserve(job, key, engine_kind)
                if session is not None:
                    return session
                if why != said:
                    job.write_log(INFO, f"Your job waits in state {SCHEDULED}: {why}")
                    said = why
                self._cond.wait(_WAIT_SLICE)

    def _try_reserve(
        self, job: RunContext, key: EngineKey, engine_kind: str
    ) -> tuple[EngineSession | None, str]:
        session = self._sessions.get(key)
        if session is not None and session.started and not session.alive:
            self._forget(session, session.end_reason or "it exited")
            session = None
        if session is not None:
            if session.holder is None:
                session.holder = job
                return session, ""
            return None, (
                f"engine EngineConn {session.instance} with the same labels runs another job; "
                "this one starts when it is free."
            )
        mine = [s for s in self._sessions.values() if s.key.user == key.user]
        if len(mine) >= self.settings.max_per_user:
            idle = [s for s in mine if s.holder is None]
            if not idle:
                return None, (
                    f"{key.user} already has {len(mine)} engines, all busy (at most "
                    f"{self.settings.max_per_user} per user: serve --max-engines-per-user); it "
                    "starts when one of them is free."
                )
            oldest = min(idle, key=lambda s: s.last_used)
            job.write_log(
                INFO,
                f"Ending idle engine EngineConn {oldest.instance} ({oldest.key.creator}, "
                f"{oldest.key.engine_label}) to stay within {self.settings.max_per_user} "
                f"engines per user.",
            )
            self._forget(oldest, "it was the user's oldest idle engine when a new one was needed")
            threading.Thread(target=self._end, args=(oldest, None), daemon=True).start()
        session = EngineSession(
            key,
            self.host,
            engine_kind=engine_kind,
            kill_grace=self.settings.kill_grace_for(engine_kind),
        )
        session.holder = job
        self._sessions[key] = session
        return session, ""

    @property
    def real_spark(self) -> bool:
        """Whether engine spark runs a real local Spark (and so also its SQL jobs)."""
        return self.spark == REAL

    def _engine_options(self, key: EngineKey, engine_kind: str) -> tuple[str, ...]:
        """pyengine.py's arguments after the kind: which Spark, the demo data, the app name."""
        if engine_kind != PYSPARK:
            return ()
        app_name = f"linkis-{key.engine_label}-{key.user_creator}"
        return (self.spark, str(demo_parquet(self.folder)), app_name)

    def prepare(self, job: EngineJob, session: EngineSession) -> bool:
        """Start `session` for `job` if it is new, saying in the job log what happened as the
        Linkis entrance does; True when an existing engine is reused. JobCancelled if the job
        was killed while the engine started (the job has ended; the engine serves the next)."""
        if session.started:
            job.write_log(INFO, f"Succeed to reuse ec : {session.service_instance()}")
            job.write_log(
                INFO,
                f"Reusing engine EngineConn {session.instance} (idle for "
                f"{session.idle_seconds():.1f} s; {session.jobs_run} job(s) ran on it before): "
                f"{PYTHON_RUNTIME} runs it.",
            )
            return True
        ask = f"EngineAskAsyncResponse({uuid.uuid4()},ServiceInstance({MANAGER_APPLICATION}, "
        job.write_log(INFO, f"Request LinkisManager:{ask}{self.manager_instance}, 0))")
        with self._cond:
            previous = self._ended_reasons.pop(session.key, None)
        if previous:
            job.write_log(INFO, f"The previous engine with these labels is gone ({previous}).")
        key = session.key
        job.write_log(
            INFO,
            f"Starting a new {key.engine_type} engine for {key.user_creator}, "
            f"{key.engine_label}; later jobs with these labels reuse it.",
        )
        job.engine_starting(True)
        try:
            session.options = self._engine_options(key, session.engine_kind)
            sandbox = self.settings.sandboxing.for_user(key.user)
            session.start(self._scratch_dir(session), sandbox, self.settings.memory)
        except BaseException:
            with self._cond:
                self._forget(session, "it failed to start")
            raise
        finally:
            job.engine_starting(False)
        session.record_id = self.records.add(session, self.manager_instance)
        self._save_pids()
        if job.cancelled.is_set():  # its log is closed: the start is not reported there
            raise JobCancelled
        job.write_log(INFO, f"Succeed to create new ec : {session.service_instance()}")
        job.write_log(
            INFO,
            f"Engine EngineConn {session.instance} started in {session.start_seconds:.2f} s "
            f"(pid {session.pid}): {PYTHON_RUNTIME} runs it.",
        )
        return False

    def release(self, session: EngineSession, memory: int) -> None:
        """The job on `session` ended: the session is free again (or forgotten if it died)."""
        if session.record_id is not None and session.started:
            self.records.used(session.record_id, memory)
        with self._cond:
            session.holder = None
            session.last_used = time.monotonic()
            if session.started and not session.alive:
                self._forget(session, session.end_reason or "it exited")
                threading.Thread(target=self._end, args=(session, None), daemon=True).start()
            elif not session.started:
                self._sessions.pop(session.key, None)
            self._cond.notify_all()

    def _forget(self, session: EngineSession, reason: str) -> None:
        """Take a session out of the registry (caller holds the lock)."""
        if self._sessions.get(session.key) is session:
            del self._sessions[session.key]
            self._ended_reasons[session.key] = f"EngineConn {session.instance} ended: {reason}"
        session.end_reason = session.end_reason or reason
        self._cond.notify_all()

    def _end(self, session: EngineSession, reason: str | None) -> None:
        if reason is not None:
            session.end_reason = session.end_reason or reason
        code = session.stop()
        if session.record_id is not None:
            failed = code not in (None, 0, -signal.SIGTERM, -signal.SIGKILL)
            self.records.released(session.record_id, REC_FAILED if failed else REC_SUCCESS)
        log.info("engine %s ended: %s", session.instance, session.end_reason)
        self._save_pids()

    def add_process(self, pid: int) -> None:
        """A shell job's process group: written down with the engines' (engines.ProcessBook)."""
        with self._cond:
            self._job_pids.add(pid)
        self._save_pids()

    def remove_process(self, pid: int) -> None:
        with self._cond:
            self._job_pids.discard(pid)
        self._save_pids()

    def _save_pids(self) -> None:
        with self._cond:
            pids = [s.pid for s in self._sessions.values() if s.started and s.alive]
            pids += sorted(self._job_pids)
        with suppress(OSError):
            self.records.write_pids(pids)

    def _reap_idle(self) -> None:
        slice_ = max(0.05, min(1.0, self.settings.idle_timeout / 4))
        while not self._stop.wait(slice_):
            expired = []
            with self._cond:
                for session in list(self._sessions.values()):
                    if (
                        session.holder is None
                        and session.started
                        and (session.idle_seconds() >= self.settings.idle_timeout)
                    ):
                        self._forget(session, "it was idle longer than the idle timeout")
                        expired.append(session)
            for session in expired:
                self._end(session, None)

    # -- what the LinkisManager endpoints show ----------------------------------------------
    def sessions_of(self, user: str | None) -> list[EngineSession]:
        """The started engines of `user` (None: everyone's), oldest first."""
        with self._cond:
            found = [
                s for s in self._sessions.values()
                if s.started and s.alive and (user is None or s.key.user == user)
            ]  # fmt: skip
        return sorted(found, key=lambda s: s.started_ms)

    def find(self, instance: str) -> EngineSession | None:
        return next((s for s in self.sessions_of(None) if s.instance == instance), None)

    def kill(self, session: EngineSession, reason: str) -> None:
        """End an engine on request; a job running on it is interrupted first."""
        with self._cond:
            self._forget(session, reason)
        holder = session.holder
        if holder is not None:
            holder.cancelled.set()
        self._end(session, None)


def engine_kind(engine_type: str) -> str:
    """What the engine process predefines: `spark` for engine spark, nothing for python."""
    return PYSPARK if engine_type == "spark" else "python"


def engine_status(session: EngineSession) -> str:
    """The NodeStatus of a session."""
    if not session.started:
        return STARTING
    return session.status if session.holder is not None else UNLOCK
