"""`JobBook`: job history and scheduling of the embedded server.

It owns the history database, the jobs this process holds in memory, the exec indices it has
issued, the worker pool with its queue and progress monitor, and the takeover at restart (jobs
a previous process left unfinished are failed).
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import threading
from pathlib import Path

from ..wire import (
    CANCELLED,
    FAILED,
    RUNNING,
    SCHEDULED,
    SQL_DEFAULT_LIMIT,
    SQL_LIMIT_CREATOR,
    SUCCEED,
)
from .engineconns import EngineManager, engine_kind
from .engines import (
    ERR_ENGINE,
    ERR_RESTART,
    PYTHON,
    SQL,
    JobCancelled,
    JobFailed,
    run_shell,
)
from .errors import ServiceError, no_permission
from .history import MAX_LIST_CODE_CHARS, History, ListTooLarge, now_ms, task_vo
from .ids import ShortId, parse_exec_id
from .jobdetails import MSG_JOB_ID_EMPTY, checked_filter, diagnosis, diagnosis_task_id, extra_info
from .jobs import Job, ProgressMonitor, Scheduler, finish_line, kill_running
from .logfile import ERROR, INFO, format_line
from .paths import local_path, schema_path
from .quota import ERR_DISK_QUOTA, DiskQuota, QuotaWatcher
from .sessions import EngineKey, EngineSession
from .sqlengines import SqlEngines

MSG_HISTORY_NOT_FOUND = (
    "The corresponding job was not found, or there may be no permission to view the job"
    "(没有找到对应的job，也可能是没有查看该job的权限)"
)
MSG_RESTARTED = (
    "The embedded Linkis server restarted while this job ran, so it was stopped; submit it again."
)
MSG_KILLED_BY_USER = "Job is killed by user!"
MSG_SERVER_STOPPED = "The embedded Linkis server stopped before the job could finish."
MSG_NOT_STARTED = "The embedded Linkis server is not started; call start() first"
UNDONE_STATES = "Running,Inited,Scheduled"
SPARK = "spark"
_DAY_MS = 86_400_000


def progress_text(value: float) -> str:
    """A progress fraction as job history stores it."""
    return str(round(value, 2))


class JobBook:
    """Job history, the jobs held in memory, and the workers that run them.

    SQL jobs run on their user's SQL engine (`sql`), Python jobs on the engine sessions of
    `engines`.
    """

    def __init__(
        self,
        history_file: Path,
        *,
        instance: str,
        workers: int,
        sql: SqlEngines,
        engines: EngineManager,
        quota: DiskQuota,
    ):
        self.instance = instance
        self.engines = engines
        self.quota = quota
        self._history_file = history_file
        self._sql = sql
        self._lock = threading.Lock()
        self._by_task: dict[int, Job] = {}
        self._by_short: dict[str, Job] = {}
        # group -> highest index ever issued (incl. history); holds only groups this process used
        self._issued: dict[str, int] = {}
        self._history: History | None = None
        self._scheduler = Scheduler(workers, self._run)
        self._monitor = ProgressMonitor(self._scheduler, self._persist_progress)
        self._quota_watcher = QuotaWatcher(quota, self._scheduler.running, self._stop_over_quota)
        self._started = False

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Open job history, fail the jobs a previous process left unfinished, start monitoring."""
        self._history = History(self._history_file)
        self._fail_interrupted_jobs()
        self.engines.start()
        self._monitor.start()
        self._quota_watcher.start()
        self._started = True

    def _fail_interrupted_jobs(self) -> None:
        for row in self.history.fail_unfinished(ERR_RESTART, MSG_RESTARTED):
            log = local_path(row["log_path"])
            if log.is_file():
                with open(log, "a", encoding="utf-8") as f:
                    f.write(format_line(ERROR, MSG_RESTARTED) + "\n")

    def close(self) -> None:
        """Cancel queued and running jobs, stop the workers and close job history."""
        if self._started:
            for job in self._scheduler.drain():
                self._finish(job, CANCELLED, None, MSG_SERVER_STOPPED)
            for job in self._scheduler.running():
                job.cancel_reason = MSG_SERVER_STOPPED
                kill_running(job)
            self._scheduler.join(5.0)
            self._monitor.stop()
            self._quota_watcher.stop()
            self.engines.close()
            self._sql.close()  # what still ran there ends now: let its workers write that down
            self._scheduler.join(2.0)
        if self._history is not None:
            self._history.close()

    @property
    def history(self) -> History:
        if self._history is None:
            raise ServiceError(MSG_NOT_STARTED)
        return self._history

    # ---- accepting jobs --------------------------------------------------------------------
    def next_index(self, group: str) -> int:
        """The next exec index of `group`, never one that job history already holds."""
        with self._lock:
            if group not in self._issued:
                self._issued[group] = self.history.max_index(group)
            self._issued[group] += 1
            return self._issued[group]

    def hold(self, job: Job) -> None:
        """Keep `job` in memory, findable by taskID and short exec id."""
        with self._lock:
            self._by_task[job.task_id] = job
            self._by_short[str(job.short_id)] = job

    def schedule(self, job: Job) -> None:
        """Mark `job` Scheduled and queue it for a worker."""
        self.history.update(job.task_id, status=SCHEDULED)
        self._scheduler.submit(job)

    def cancel(self, job: Job) -> None:
        """Kill `job`: dropped from the queue if it waits there, its engine stopped if it runs."""
        if job.finished:
            return
        job.cancelled.set()
        if self._scheduler.remove_waiting(job):
            self._finish(job, CANCELLED, None, MSG_KILLED_BY_USER)
        elif job.waits_for_engine():  # ends now; the engine starts on, for the next job
            self._finish(job, *_stopped(job))
        else:
            kill_running(job)

    def _stop_over_quota(self, job: Job, reason: str) -> None:
        """Stop a running job that passed its disk limit: it ends Failed with `reason`."""
        job.stop_error = JobFailed(ERR_DISK_QUOTA, reason)
        kill_running(job)

    def scratch_dirs(self, user: str) -> list[Path]:
        """The scratch folders of `user`'s running jobs."""
        return [job.scratch_dir for job in self._scheduler.running() if job.user == user]

    # ---- running ---------------------------------------------------------------------------
    def _on_session(self, job: Job) -> bool:
        """Python jobs, and SQL on engine spark when it is a real Spark, run on an engine
        session; other SQL runs on DuckDB, shell in a process of its own."""
        if job.engine.kind == PYTHON:
            return True
        return (
            job.engine.kind == SQL and job.engine.engine_type == SPARK and self.engines.real_spark
        )

    def _run(self, job: Job) -> None:
        """Worker body: get the job's engine session (Python, Spark), then run it."""
        job.disk_limit = self.quota.job_limit(job.user)
        if not self._on_session(job):
            self._run_job(job)
            return
        try:
            key = EngineKey(job.user, job.creator, job.engine.engine_type, job.engine.version)
            session = self.engines.acquire(job, key, engine_kind(job.engine.engine_type))
        except JobCancelled:
            self._finish(job, *_stopped(job))
            return
        job.attach_session(session)
        try:
            self._run_job(job)
        finally:
            job.attach_session(None)
            self.engines.release(session, session.memory())

    def _run_job(self, job: Job) -> None:
        """Move the job to Running, run its engine, record the outcome."""
        if not job.start_running():
            self._finish(job, *_stopped(job))
            return
        started = now_ms()
        job.result_dir.mkdir(parents=True, exist_ok=True)
        self.history.update(
            job.task_id,
            status=RUNNING,
            progress="0.0",
            result_location=schema_path(job.result_dir),
            engine_instance=self.instance,
            is_reuse=job.engine.kind == SQL,
            metrics={"scheduleTime": started, "runningTime": started},
        )
        job.write_log(INFO, "Your job is Running now. Please wait it to complete.")
        state, err_desc = SUCCEED, ""
        err_code: int | None = 0
        details: list[str] = []
        try:
            if job.session is not None:
                self._run_on_engine(job, job.session)
            elif job.engine.kind == SQL:
                self._sql.run(job)
            else:
                settings = self.engines.settings
                sandbox = settings.sandboxing.for_user(job.user)
                run_shell(
                    job, job.scratch_dir, sandbox=sandbox, book=self.engines, memory=settings.memory
                )
        except JobCancelled:
            state, err_code, err_desc = _stopped(job)
        except JobFailed as exc:
            state, err_code, err_desc, details = FAILED, exc.code, str(exc), exc.details
        except ServiceError as exc:  # e.g. the SQL engines closed as the job was to start
            state, err_code, err_desc = FAILED, ERR_ENGINE, exc.desc
        except Exception as exc:  # an engine bug must still end the job, not leave it Running
            state, err_code, err_desc = FAILED, ERR_ENGINE, f"{type(exc).__name__}: {exc}"
        if job.stop_error is not None or (state == SUCCEED and job.cancelled.is_set()):
            (state, err_code, err_desc), details = _stopped(job), []
        self._finish(job, state, err_code, err_desc, details)

    def _run_on_engine(self, job: Job, session: EngineSession) -> None:
        reused = self.engines.prepare(job, session)
        self.history.update(job.task_id, engine_instance=session.instance, is_reuse=reused)
        if session.spark:
            job.write_log(INFO, str(session.spark.get("description", "")))
        if job.engine.kind == SQL:
            limit = SQL_DEFAULT_LIMIT if job.creator == SQL_LIMIT_CREATOR else None
            session.run(job, SQL, limit)
        else:
            session.run(job)

    def _finish(
        self,
        job: Job,
        state: str,
        err_code: int | None,
        err_desc: str,
        details: list[str] | None = None,
    ) -> None:
        if not job.end(state, err_code, err_desc):
            return
        if state == FAILED:
            for line in [*(details or []), *err_desc.splitlines()]:
                job.write_log(ERROR, line)
        level, line = finish_line(job)
        job.write_log(level, line)
        self.history.update(
            job.task_id,
            status=state,
            progress="1.0",
            err_code=err_code,
            err_desc=err_desc,
            metrics={"completeTime": now_ms()},
        )
        shutil.rmtree(job.scratch_dir, ignore_errors=True)
        self.quota.forget(job.user)
        # A job that wrote no result set leaves no result folder, as in Linkis: getDirFileTrees
        # then answers `dirFileTrees: null` for its resultLocation.
        with contextlib.suppress(OSError):
            job.result_dir.rmdir()

    def _persist_progress(self, job: Job, value: float) -> None:
        if not job.finished:
            self.history.update(job.task_id, progress=progress_text(value))

    # ---- finding jobs ----------------------------------------------------------------------
    def find(self, job_id: str) -> tuple[Job | None, int | None, ShortId | None]:
        """(job held in memory, numeric taskID if the id was one, parsed short id otherwise).

        A numeric id stands for the gateway's taskID route, which answers from job history
        once the job has completed: such a job is not returned as held in memory.
        """
        job_id = str(job_id).strip()
        if job_id.isdecimal():
            with self._lock:
                job = self._by_task.get(int(job_id))
            return (None if job is not None and job.finished else job), int(job_id), None
        _, short_id = parse_exec_id(job_id)
        with self._lock:
            return self._by_short.get(str(short_id)), None, short_id

    def owned_row_or_none(self, task_id: int, user: str) -> sqlite3.Row | None:
        """The task's history row if `user` owns it, None when it is absent."""
        row = self.history.row(task_id)
        if row is not None and row["execute_user"] != user:
            raise no_permission(task_id)
        return row

    def owned_row(self, task_id: int, user: str, *, missing: str) -> sqlite3.Row:
        """The task's history row if `user` owns it; `missing` is raised when it is absent."""
        row = self.owned_row_or_none(task_id, user)
        if row is None:
            raise ServiceError(missing)
        return row

    def task_state(self, user: str, task_id: int) -> str:
        """A task's state for the taskID route: memory first (history may lag a moment)."""
        return self.state_of(
            self.owned_row(task_id, user, missing=f"taskId {task_id} is not exists.")
        )

    def state_of(self, row: sqlite3.Row) -> str:
        """A history row's job state: from memory while the job is held (history may lag)."""
        with self._lock:
            job = self._by_task.get(row["task_id"])
        return job.state if job is not None else row["status"]

    def lookup_error(self, short_id: ShortId | None, empty: str, failed: str) -> ServiceError:
        """`empty` for an exec id this process has not issued yet, `failed` otherwise."""
        if short_id is None:
            return ServiceError(failed)
        with self._lock:
            issued = self._issued.get(short_id.group)
        empty_slot = issued is not None and short_id.index > issued
        return ServiceError(empty if empty_slot else failed)

    # ---- job history -----------------------------------------------------------------------
    def _with_live_progress(self, vo: dict) -> dict:
        with self._lock:
            job = self._by_task.get(vo["taskID"])
        if job is not None and job.state == RUNNING:
            vo["progress"] = progress_text(job.progress())
        return vo

    def history_get(self, user: str, task_id: int) -> dict:
        """jobhistory/{id}/get (docs/linkis-rest.md, "Job history"): {"task": QueryTaskVO}."""
        row = self.owned_row(int(task_id), user, missing=MSG_HISTORY_NOT_FOUND)
        return {"task": self._with_live_progress(task_vo(row, with_code=False))}

    def history_list(
        self,
        user: str,
        *,
        start_date: int | None = None,
        end_date: int | None = None,
        status: list[str] | None = None,
        page_now: int = 1,
        page_size: int = 20,
        task_id: int | None = None,
        engine_type: str | None = None,
        creator: str | None = None,
    ) -> dict:
        """jobhistory/list (docs/linkis-rest.md, "Job history"): the caller's tasks, newest
        first; totalPage = rows."""
        if page_now < 1 or page_size < 1:
            raise ServiceError(
                f"pageNow and pageSize must be at least 1 (got pageNow={page_now}, "
                f"pageSize={page_size})"
            )
        try:
            rows, total = self.history.list(
                user,
                start_date=start_date,
                end_date=end_date,
                status=status,
                page_now=page_now,
                page_size=page_size,
                task_id=task_id,
                engine_type=engine_type,
                creator=creator,
            )
        except ListTooLarge:
            raise ServiceError(
                f"The {page_size} tasks of page {page_now} hold more than "
                f"{MAX_LIST_CODE_CHARS >> 20} MiB of code, more than one answer may carry: ask "
                "for fewer tasks per page (pageSize)"
            ) from None
        tasks = [self._with_live_progress(task_vo(r, with_code=True)) for r in rows]
        return {"tasks": tasks, "totalPage": total}

    def undone_tasks(
        self,
        user: str,
        *,
        status: str | None,
        page_now: int,
        page_size: int,
        start_date: int | None,
        end_date: int | None,
        task_id: int | None,
        engine_type: str | None,
        creator: str | None,
    ) -> dict:
        """jobhistory/listundonetasks (docs/linkis-rest.md, "Job details"): the caller's jobs
        not yet finished, submitted in the day before `end_date` unless `start_date` says."""
        engine_type = checked_filter(engine_type, "Invalid engienType: ")
        creator = checked_filter(creator, "Invalid creator : ")
        states = [s for s in (status or UNDONE_STATES).split(",") if s]
        end = end_date if end_date is not None else now_ms()
        start = start_date if start_date else end - _DAY_MS
        return self.history_list(
            user,
            start_date=start,
            end_date=end,
            status=states,
            page_now=page_now,
            page_size=page_size,
            task_id=task_id,
            engine_type=engine_type,
            creator=creator,
        )

    def extra_info(self, user: str, task_id: int | None) -> dict:
        """jobhistory/job-extra-info (docs/linkis-rest.md, "Job details"): the job's metrics,
        code and run time."""
        if task_id is None:
            raise ServiceError(MSG_JOB_ID_EMPTY)
        return extra_info(self.owned_row(task_id, user, missing=MSG_HISTORY_NOT_FOUND))

    def diagnosis(self, user: str, task_id: str | None) -> dict:
        """jobhistory/diagnosis-query (docs/linkis-rest.md, "Job details"); another user's job
        or an unknown one gets an empty diagnosis, as in Linkis."""
        row = self.history.row(diagnosis_task_id(task_id))
        if row is None or row["execute_user"] != user:
            return {"diagnosisMsg": ""}
        return {"diagnosisMsg": diagnosis(row)}


def _stopped(job: Job) -> tuple[str, int | None, str]:
    """(state, errCode, errDesc) of a job whose engine was stopped: Failed when the server
    stopped it for an error (the disk quota), else Cancelled with the kill's reason."""
    if job.stop_error is not None:
        return FAILED, job.stop_error.code, str(job.stop_error)
    return CANCELLED, None, job.cancel_reason or MSG_KILLED_BY_USER
