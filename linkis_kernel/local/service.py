"""`LocalLinkis`: the embedded server's services behind its HTTP layer.

Each public method returns the `data` dict of one Linkis endpoint (or raises `ServiceError` with
the Linkis status and message). Methods never wait for a running job: they read memory, one
SQLite row, or one page of a file.
"""

from __future__ import annotations

import getpass
import os
import re
import shutil
import sqlite3
import threading
from datetime import datetime
from pathlib import Path

import duckdb

from ..wire import (
    CANCELLED,
    DEFAULT_CREATOR,
    ENTRANCE_APPLICATION,
    FAILED,
    INITED,
    MSG_JOB_ENDED_PREFIX,
    NULL_MARKER,
    OPEN_FILE_DEFAULT_PAGE_SIZE,
    OPEN_FILE_MAX_PAGE_SIZE,
    RESULT_TABLE,
    RUNNING,
    SCHEDULED,
    STATUS_NO_PERMISSION,
    SUCCEED,
    TERMINAL_STATES,
)
from . import catalog, demo
from .dolphin import DolphinFormatError, read_page
from .engines import (
    ERR_ENGINE,
    ERR_RESTART,
    ERR_VARIABLE,
    SQL,
    EngineChoice,
    JobCancelled,
    JobFailed,
    choose_engine,
    label_error,
    run_process,
    run_sql,
)
from .errors import ServiceError
from .history import History, NewTask, now_ms, task_vo
from .ids import ShortId, full_exec_id, group_name, parse_exec_id
from .jobs import Job, ProgressMonitor, Scheduler, finish_line, kill_running
from .logfile import ERROR, INFO, WARN, JobLog, format_line, read_whole_log
from .paths import Layout, schema_path
from .variables import VariableError, language, substitute

MSG_JOB_ENDED = (
    f"{MSG_JOB_ENDED_PREFIX}. This interface no longer provides a query. It is recommended "
    "that you download the log file for viewing.(您刚刚执行的job已经结束，本接口不再提供查询，"
    "建议您下载日志文件进行查看)"
)
MSG_STATUS_LOOKUP = (
    "Get job by ID error and cannot obtain the corresponding task status."
    "(获取job时发生异常，不能获取相应的任务状态)"
)
MSG_STATUS_EMPTY = (
    "ID The corresponding job is empty and cannot obtain the corresponding task status."
    "(ID 对应的job为空，不能获取相应的任务状态)"
)
MSG_PROGRESS_EMPTY = (
    "The job corresponding to the ID is empty, and the corresponding task progress cannot be "
    "obtained.(ID 对应的job为空，不能获取相应的任务进度)"
)
MSG_KILLED = "Successfully killed the job(成功kill了job)"
MSG_FORCED_KILL = "Forced Kill task (强制杀死任务)"
MSG_KILL_LOOKUP = "Get job by ID error, kill failed.(获取job时发生异常，kill失败)"
MSG_KILL_COMPLETED = "The job already completed. Do not support kill.(任务已经结束，不支持kill)"
MSG_HISTORY_NOT_FOUND = (
    "The corresponding job was not found, or there may be no permission to view the job"
    "(没有找到对应的job，也可能是没有查看该job的权限)"
)
MSG_RESTARTED = (
    "The embedded Linkis server restarted while this job ran, so it was stopped; submit it again."
)
MSG_KILLED_BY_USER = "Job is killed by user!"
MSG_SERVER_STOPPED = "The embedded Linkis server stopped before the job could finish."
_SQL_LIKE_RUN_TYPES = frozenset({"duckdb", "isql"})
_CREATOR_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
_USER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
# Labels every task gets from the request itself; other labels are kept as given.
_CORE_LABELS = ("engineType", "codeType", "userCreator")


def _no_permission_job(job_id: object, owner: str) -> ServiceError:
    return ServiceError(
        f"Job {job_id} belongs to another user ({owner}); you can only access your own jobs",
        status=STATUS_NO_PERMISSION,
    )


def _progress_text(value: float) -> str:
    return str(round(value, 2))


class LocalLinkis:
    """Jobs, engines, results, logs, history and metadata of the embedded Linkis server."""

    def __init__(self, data_dir: Path, *, workers: int = 2, instance: str = "127.0.0.1:9001"):
        self.layout = Layout(Path(data_dir).absolute())
        self.instance = instance
        self.server_user = getpass.getuser()
        self._lock = threading.Lock()
        self._by_task: dict[int, Job] = {}
        self._by_short: dict[str, Job] = {}
        # group -> highest index ever issued (incl. history); holds only groups this process used
        self._issued: dict[str, int] = {}
        self._history: History | None = None
        self._duck: duckdb.DuckDBPyConnection | None = None
        self._scheduler = Scheduler(workers, self._run)
        self._monitor = ProgressMonitor(self._scheduler, self._persist_progress)
        self._started = False
        self._closed = False

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Open the databases (seeding the demo schema the first time) and start the workers."""
        for folder in (self.layout.root, self.layout.duckdb_file.parent, self.layout.scratch_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._history = History(self.layout.history_file)
        self._fail_interrupted_jobs()
        self._duck = duckdb.connect(str(self.layout.duckdb_file))
        if not catalog.is_marked(self.layout.duckdb_file):  # first start (or one cut short)
            demo.seed(self._duck)
            catalog.mark_created(self.layout.duckdb_file)
        self._monitor.start()
        self._started = True

    def _fail_interrupted_jobs(self) -> None:
        for row in self.history.fail_unfinished(ERR_RESTART, MSG_RESTARTED):
            log = Path(row["log_path"].removeprefix("file://"))
            if log.is_file():
                with open(log, "a", encoding="utf-8") as f:
                    f.write(format_line(ERROR, MSG_RESTARTED) + "\n")

    def close(self) -> None:
        """Cancel queued and running jobs, stop the workers and close the databases."""
        if self._closed:
            return
        self._closed = True
        if self._started:
            for job in self._scheduler.drain():
                self._finish(job, CANCELLED, None, MSG_SERVER_STOPPED)
            for job in self._scheduler.running():
                job.cancel_reason = MSG_SERVER_STOPPED
                kill_running(job)
            self._scheduler.join(5.0)
            self._monitor.stop()
        if self._duck is not None:
            self._duck.close()
        if self._history is not None:
            self._history.close()

    @property
    def history(self) -> History:
        if self._history is None:
            raise ServiceError("The embedded Linkis server is not started; call start() first")
        return self._history

    @property
    def duck(self) -> duckdb.DuckDBPyConnection:
        if self._duck is None:
            raise ServiceError("The embedded Linkis server is not started; call start() first")
        return self._duck

    # ---- submit / execute ------------------------------------------------------------------
    def submit(self, user: str, body: dict) -> dict:
        """entrance/submit (CONTRACT §5.1): {"execID", "taskID"}."""
        if not isinstance(body, dict):
            raise ServiceError("The request body must be a JSON object", code=20010)
        content = body.get("executionContent")
        if content is None:
            return self.execute(user, body)
        if not isinstance(content, dict) or "code" not in content:
            raise ServiceError(
                "executionContent must be an object with the code to run in 'code'", code=20010
            )
        code = _code_text(content.get("code"))
        labels = body.get("labels")
        if not isinstance(labels, dict) or not labels:
            raise ServiceError("params cannot be empty ,  labels is null", code=20008)
        engine_label = labels.get("engineType")
        if not engine_label:
            raise label_error("You need to specify engineTypeLabel in labels,such as spark-3.2.1")
        run_type = content.get("runType") or labels.get("codeType")
        if not run_type:
            raise label_error(
                "You need to specify codeType in labels or runType in executionContent, such as sql"
            )
        creator = _creator_of(labels.get("userCreator"))
        choice = choose_engine(str(engine_label), str(run_type))
        extra = {k: v for k, v in labels.items() if k not in _CORE_LABELS}
        return self._accept(
            user, creator, choice, code, _dict(body, "params"), _dict(body, "source"), extra
        )

    def execute(self, user: str, body: dict) -> dict:
        """entrance/execute (CONTRACT §5.2, the 0.x body): {"execID", "taskID"}."""
        if not isinstance(body, dict):
            raise ServiceError("The request body must be a JSON object", code=20010)
        code = _code_text(body.get("executionCode"))
        engine_type = body.get("executeApplicationName")
        if not engine_type:
            raise label_error(
                "You need to specify executeApplicationName (the engine type), such as spark"
            )
        run_type = body.get("runType") or "sql"
        creator = _checked_creator(str(body.get("requestApplicationName") or DEFAULT_CREATOR))
        choice = choose_engine(str(engine_type), str(run_type))
        source = _dict(body, "source")
        if body.get("scriptPath") and "scriptPath" not in source:
            source["scriptPath"] = body["scriptPath"]
        extra = {k: v for k, v in _dict(body, "labels").items() if k not in _CORE_LABELS}
        return self._accept(user, creator, choice, code, _dict(body, "params"), source, extra)

    def _next_index(self, group: str) -> int:
        with self._lock:
            if group not in self._issued:
                self._issued[group] = self.history.max_index(group)
            self._issued[group] += 1
            return self._issued[group]

    def _accept(
        self,
        user: str,
        creator: str,
        choice: EngineChoice,
        code: str,
        params: dict,
        source: dict,
        extra_labels: dict,
    ) -> dict:
        group = group_name(creator, _checked_user(user), choice.engine_type)
        index = self._next_index(group)
        short_id = ShortId(group, index)
        labels = [
            f"userCreator:{user}-{creator}",
            f"engineType:{choice.label}",
            f"codeType:{choice.run_type}",
            *(f"{k}:{v}" for k, v in extra_labels.items()),
        ]
        day = datetime.now().strftime("%Y-%m-%d")
        task_id = self.history.insert(
            NewTask(
                instance=self.instance,
                group_name=group,
                exec_index=index,
                user=user,
                submit_user=user,
                code=code,
                engine_type=choice.engine_type,
                creator=creator,
                run_type=choice.run_type,
                params=params,
                source=source,
                labels=labels,
            ),
            INITED,
        )
        log_file = self.layout.log_file(day, creator, user, task_id)
        self.history.update(task_id, log_path=schema_path(log_file))
        log = JobLog(log_file)
        code = self._substitute(task_id, log, code, choice, params, user)
        job = Job(
            task_id=task_id,
            exec_id=full_exec_id(self.instance, str(short_id)),
            short_id=short_id,
            user=user,
            creator=creator,
            engine=choice,
            code=code,
            log=log,
            result_dir=self.layout.result_dir(day, creator, user, task_id),
            scratch_dir=self.layout.scratch_dir / str(task_id),
        )
        with self._lock:
            self._by_task[task_id] = job
            self._by_short[str(short_id)] = job
        log.write(INFO, f"Job with jobId : {task_id} and execID : {short_id} submitted ")
        log.write(
            INFO,
            f"Your job is accepted,  jobID is {short_id} and jobReqId is {task_id} in "
            f"ServiceInstance({ENTRANCE_APPLICATION}, {self.instance}). "
            "Please wait it to be scheduled",
        )
        self.history.update(task_id, status=SCHEDULED)
        self._scheduler.submit(job)
        return {"execID": job.exec_id, "taskID": task_id}

    def _substitute(
        self, task_id: int, log: JobLog, code: str, choice: EngineChoice, params: dict, user: str
    ) -> str:
        lang = language(choice.run_type, _SQL_LIKE_RUN_TYPES)
        if lang is None:
            return code
        log.write(INFO, "Program is substituting variables for you")
        variables = params.get("variable") or {}
        try:
            if not isinstance(variables, dict):
                raise VariableError("params.variable must be an object of name -> value")
            result = substitute(code, lang, variables, user=user, submit_user=user)
        except VariableError as exc:
            desc = f"Variable replacement failed!(变量替换失败！){exc}"
            log.write(ERROR, desc)
            self.history.update(
                task_id,
                status=FAILED,
                progress="1.0",
                err_code=ERR_VARIABLE,
                err_desc=desc,
                metrics={"completeTime": now_ms()},
            )
            raise ServiceError(desc, code=ERR_VARIABLE) from None
        for warning in result.warnings:
            log.write(WARN, warning)
        log.write(INFO, "Variables substitution ended successfully")
        self.history.update(task_id, execution_code=result.code)
        return result.code

    # ---- running ---------------------------------------------------------------------------
    def _run(self, job: Job) -> None:
        """Worker body: move the job to Running, run its engine, record the outcome."""
        if not job.start_running():
            self._finish(job, CANCELLED, None, MSG_KILLED_BY_USER)
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
        state, err_code, err_desc = SUCCEED, 0, ""
        details: list[str] = []
        try:
            if job.engine.kind == SQL:
                run_sql(job, self.duck, job.engine.engine_type)
            else:
                run_process(job, job.engine.kind, job.scratch_dir)
        except JobCancelled:
            state, err_code, err_desc = CANCELLED, None, job.cancel_reason or MSG_KILLED_BY_USER
        except JobFailed as exc:
            state, err_code, err_desc, details = FAILED, exc.code, str(exc), exc.details
        except Exception as exc:  # an engine bug must still end the job, not leave it Running
            state, err_code, err_desc = FAILED, ERR_ENGINE, f"{type(exc).__name__}: {exc}"
        if state == SUCCEED and job.cancelled.is_set():
            state, err_code, err_desc = CANCELLED, None, MSG_KILLED_BY_USER
        self._finish(job, state, err_code, err_desc, details)

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

    def _persist_progress(self, job: Job, value: float) -> None:
        if not job.finished:
            self.history.update(job.task_id, progress=_progress_text(value))

    # ---- finding jobs ----------------------------------------------------------------------
    def _job_for(self, job_id: str) -> tuple[Job | None, int | None, ShortId | None]:
        """(job held in memory, numeric taskID if the id was one, parsed short id otherwise).

        A numeric id stands for the gateway's taskID route, which answers from job history
        once the job has completed: such a job is not returned as held in memory.
        """
        job_id = str(job_id).strip()
        if job_id.isdigit():
            with self._lock:
                job = self._by_task.get(int(job_id))
            return (None if job is not None and job.finished else job), int(job_id), None
        _, short_id = parse_exec_id(job_id)
        with self._lock:
            return self._by_short.get(str(short_id)), None, short_id

    def _owned(self, job: Job, user: str, job_id: object) -> Job:
        if job.user != user:
            raise _no_permission_job(job_id, job.user)
        return job

    def _owned_row(
        self, task_id: int, user: str, *, missing: str | None = None
    ) -> sqlite3.Row | None:
        """The task's history row if `user` owns it; None (or `missing` raised) when absent."""
        row = self.history.row(task_id)
        if row is None:
            if missing is None:
                return None
            raise ServiceError(missing)
        if row["execute_user"] != user:
            raise _no_permission_job(task_id, row["execute_user"])
        return row

    def _task_state(self, user: str, task_id: int) -> str:
        """A task's state for the taskID route: memory first (history may lag a moment)."""
        row = self._owned_row(task_id, user, missing=f"taskId {task_id} is not exists.")
        with self._lock:
            job = self._by_task.get(task_id)
        return job.state if job is not None else row["status"]

    def _lookup_error(self, short_id: ShortId | None, empty: str, failed: str) -> ServiceError:
        with self._lock:
            known = short_id is not None and short_id.group in self._issued
            empty_slot = known and short_id.index > self._issued[short_id.group]
        return ServiceError(empty if empty_slot else failed)

    # ---- entrance --------------------------------------------------------------------------
    def status(self, user: str, job_id: str, task_id: int | None) -> dict:
        """entrance/{id}/status (CONTRACT §5.3)."""
        job, numeric, short_id = self._job_for(job_id)
        if job is not None:
            self._owned(job, user, job_id)
            return {"status": job.state, "execID": job.exec_id}
        if numeric is not None:
            state = self._task_state(user, numeric)
            status = state if state in TERMINAL_STATES else INITED
            return {"status": status, "execID": "", "taskID": str(numeric)}
        if task_id is not None:
            row = self._owned_row(task_id, user)
            return {"status": CANCELLED if row is None else row["status"], "execID": job_id}
        raise self._lookup_error(short_id, MSG_STATUS_EMPTY, MSG_STATUS_LOOKUP)

    def log(
        self, user: str, job_id: str, from_line: int, size: int, distinct_level: bool = True
    ) -> dict:
        """entrance/{id}/log (CONTRACT §5.4)."""
        job, numeric, _ = self._job_for(job_id)
        if job is None:
            if numeric is not None:
                self._task_state(user, numeric)
            raise ServiceError(MSG_JOB_ENDED)
        self._owned(job, user, job_id)
        page = job.log.read(from_line, size, distinct_level)
        return {"log": page["log"], "execID": job.exec_id, "fromLine": page["fromLine"]}

    def progress(
        self, user: str, job_id: str, task_id: int | None, with_resource: bool = False
    ) -> dict:
        """entrance/{id}/progress and progressWithResource (CONTRACT §5.5, §5.6)."""
        job, numeric, _ = self._job_for(job_id)
        if job is not None:
            self._owned(job, user, job_id)
            data: dict = {}
            if with_resource:
                if job.state == RUNNING:
                    data["yarnMetrics"] = job.yarn_metrics()
                else:
                    data["yarnResource"] = None
            data.update(
                progress=job.progress(), execID=job.exec_id, progressInfo=job.progress_info()
            )
            return data
        lookup = numeric if numeric is not None else task_id
        if lookup is None:
            raise ServiceError(MSG_PROGRESS_EMPTY)
        state = self._task_state(user, lookup)
        data = {"yarnResource": None} if with_resource else {}
        data.update(
            progress="1.0" if state in TERMINAL_STATES else 0,
            execID="",
            taskID=str(lookup),
            progressInfo=[],
        )
        return data

    def kill(self, user: str, job_id: str, task_id: int | None) -> tuple[str, dict]:
        """entrance/{id}/kill (CONTRACT §5.7): (message, data)."""
        job, numeric, _ = self._job_for(job_id)
        if job is not None:
            if job.user != user:
                raise ServiceError(
                    f"You have no permission to kill this job, excecute by user:{job.user}"
                )
            self._kill(job)
            return MSG_KILLED, {"execID": job.exec_id}
        lookup = numeric if numeric is not None else task_id
        if lookup is None:
            raise ServiceError(MSG_KILL_LOOKUP)
        row = self.history.row(lookup)
        if row is None:
            raise ServiceError(f"taskId {lookup} is not exists.")
        if row["execute_user"] != user:
            raise ServiceError(
                f"You have no permission to kill this job, excecute by user:{row['execute_user']}"
            )
        if self._task_state(user, lookup) in TERMINAL_STATES:
            if numeric is not None:
                raise ServiceError(MSG_KILL_COMPLETED)
            return MSG_FORCED_KILL, {}
        self.history.update(lookup, status=CANCELLED, progress="1.0", err_desc=MSG_KILLED_BY_USER)
        return MSG_FORCED_KILL, ({"execID": "", "taskID": str(lookup)} if numeric else {})

    def _kill(self, job: Job) -> None:
        if job.finished:
            return
        job.cancelled.set()
        if self._scheduler.remove_waiting(job):
            self._finish(job, CANCELLED, None, MSG_KILLED_BY_USER)
        else:
            kill_running(job)

    def kill_jobs(self, user: str, exec_ids: list, task_ids: list) -> tuple[str, dict]:
        """entrance/{id}/killJobs (CONTRACT §5.8): ("success", {"messages": [...]})."""
        if not isinstance(exec_ids, list) or not isinstance(task_ids, list):
            raise ServiceError("idList and taskIDList must both be arrays")
        if len(exec_ids) != len(task_ids):
            raise ServiceError(
                f"idList has {len(exec_ids)} ids but taskIDList has {len(task_ids)}; "
                "they must pair up"
            )
        for exec_id, task_id in zip(exec_ids, task_ids, strict=True):
            self._check_kill_permission(user, str(exec_id), task_id)
        messages = []
        for exec_id, task_id in zip(exec_ids, task_ids, strict=True):
            method = f"/api/entrance/{exec_id}/kill"
            try:
                message, data = self.kill(user, str(exec_id), _int_or_none(task_id))
                messages.append({"method": method, "status": 0, "message": message, "data": data})
            except ServiceError as exc:
                messages.append(
                    {"method": method, "status": exc.status, "message": exc.message, "data": {}}
                )
        return "success", {"messages": messages}

    def _check_kill_permission(self, user: str, exec_id: str, task_id: object) -> None:
        try:
            job, numeric, _ = self._job_for(exec_id)
        except ServiceError:
            return  # reported per entry
        if job is not None:
            owner = job.user
        else:
            lookup = numeric if numeric is not None else _int_or_none(task_id)
            row = self.history.row(lookup) if lookup is not None else None
            owner = row["execute_user"] if row is not None else user
        if owner != user:
            raise ServiceError(
                f"You have no permission to kill this job, excecute by user:{owner}",
                status=STATUS_NO_PERMISSION,
            )

    # ---- job history -----------------------------------------------------------------------
    def _with_live_progress(self, vo: dict) -> dict:
        with self._lock:
            job = self._by_task.get(vo["taskID"])
        if job is not None and job.state == RUNNING:
            vo["progress"] = _progress_text(job.progress())
        return vo

    def history_get(self, user: str, task_id: int) -> dict:
        """jobhistory/{id}/get (CONTRACT §6.1): {"task": QueryTaskVO}."""
        row = self._owned_row(int(task_id), user, missing=MSG_HISTORY_NOT_FOUND)
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
        """jobhistory/list (CONTRACT §6.2): the caller's tasks, newest first; totalPage = rows."""
        if page_now < 1 or page_size < 1:
            raise ServiceError(
                f"pageNow and pageSize must be at least 1 (got pageNow={page_now}, "
                f"pageSize={page_size})"
            )
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
        tasks = [self._with_live_progress(task_vo(r, with_code=True)) for r in rows]
        return {"tasks": tasks, "totalPage": total}

    # ---- filesystem ------------------------------------------------------------------------
    def dir_tree(self, user: str, path: str) -> dict:
        """filesystem/getDirFileTrees (CONTRACT §7.1); None for a missing directory."""
        folder = self.layout.user_path(user, path)
        if not folder.is_dir():
            return {"dirFileTrees": None}
        try:
            children = _children(folder)
        except OSError as exc:
            raise ServiceError(f"The directory {path} cannot be listed: {exc}") from None
        tree = {
            "name": folder.name,
            "path": schema_path(folder),
            "properties": None,
            "children": children,
            "isLeaf": False,
            "parentPath": None,
        }
        return {"dirFileTrees": tree}

    def result_file(self, user: str, path: str) -> Path:
        """The confined local path of a readable `.dolphin` result set."""
        file = self.layout.user_path(user, path)
        if file.suffix != ".dolphin":
            raise ServiceError(f"{path} is not a result set: only .dolphin files can be read here")
        if not file.is_file():
            raise ServiceError(f"The result set {path} does not exist")
        return file

    def open_file(
        self,
        user: str,
        path: str,
        page: int = 1,
        page_size: int = OPEN_FILE_DEFAULT_PAGE_SIZE,
        null_value: str = "",
    ) -> dict:
        """filesystem/openFile (CONTRACT §7.2): one page of a result set."""
        if page_size > OPEN_FILE_MAX_PAGE_SIZE:
            raise ServiceError(
                "The result set exceeds 100,000 rows and page viewing is currently not "
                "supported. Please download to view or view in the shared directory"
                "(结果集行数超过100,000行，暂不支持页面查看。请下载查看或在共享目录中查看)",
                code=80034,
            )
        if page < 1 or page_size < 1:
            raise ServiceError(
                f"page and pageSize must be at least 1 (got page={page}, pageSize={page_size})"
            )
        file = self.result_file(user, path)
        try:
            type_code, columns, rows = read_page(file, page, page_size)
        except (DolphinFormatError, OSError) as exc:
            raise ServiceError(f"The result set {path} cannot be read: {exc}") from None
        null = {"": "NULL", "BLANK": "", NULL_MARKER: None}.get(null_value, null_value)
        content = [[null if c is None else c for c in r] for r in rows]
        data: dict = {}
        if type_code == RESULT_TABLE:
            data["metadata"] = [
                {
                    "columnName": c.name,
                    "comment": "NULL" if c.comment is None else c.comment,
                    "dataType": c.data_type,
                }
                for c in columns or []
            ]
            data["fileContent"] = content
            data["totalColumn"] = len(columns or [])
        else:
            data["metadata"] = "NULL"
            data["fileContent"] = content
        data.update(type=type_code, totalLine=len(content), page=page, totalPage=0)
        return data

    def open_log(self, user: str, path: str) -> dict:
        """filesystem/openLog (CONTRACT §7.4): the whole persisted log, split by level."""
        file = self.layout.user_path(user, path)
        if not file.is_file():
            raise ServiceError(f"The log file {path} does not exist")
        try:
            return {"log": read_whole_log(file)}
        except OSError as exc:
            raise ServiceError(f"The log file {path} cannot be read: {exc}") from None

    # ---- metadata --------------------------------------------------------------------------
    def databases(self, user: str) -> dict:
        """datasource/dbs (METADATA §1A)."""
        return {"dbs": catalog.databases(self.duck)}

    def tables(self, user: str, database: str | None) -> dict:
        """datasource/tables (METADATA §1A)."""
        created = catalog.created_at(self.layout.duckdb_file)
        return {"tables": catalog.tables(self.duck, database, self.server_user, created)}

    def columns(self, user: str, database: str | None, table: str | None) -> dict:
        """datasource/columns (METADATA §1A)."""
        return {"columns": catalog.columns(self.duck, database, table)}


def _children(folder: Path) -> list[dict]:
    """One level of a directory as DirFileTree children, hidden files left out."""
    parent = schema_path(folder)
    children = []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            is_file = entry.is_file()
            stat = entry.stat()
            props = (
                {"size": str(stat.st_size), "modifytime": str(int(stat.st_mtime * 1000))}
                if is_file
                else {}
            )
            children.append(
                {
                    "name": entry.name,
                    "path": f"{parent}/{entry.name}",
                    "properties": props,
                    "children": None,
                    "isLeaf": is_file,
                    "parentPath": parent,
                }
            )
    return children


def _code_text(code: object) -> str:
    if code is None or not str(code).strip():
        raise ServiceError(
            "The param executionCode cannot be empty (参数 executionCode 不能为空)", code=20007
        )
    return str(code)


def _creator_of(user_creator: object) -> str:
    if not user_creator:
        return DEFAULT_CREATOR
    parts = str(user_creator).split("-")
    if len(parts) != 2 or not all(parts):
        raise label_error(
            f"userCreator must be <user>-<creator> with exactly one '-', got '{user_creator}'"
        )
    return _checked_creator(parts[1])


def _checked_creator(creator: str) -> str:
    """Creators name folders of logs and results: letters, digits and '_' only."""
    if not _CREATOR_RE.fullmatch(creator):
        raise label_error(
            f"the creator '{creator}' may only hold letters, digits and '_' (e.g. IDE)"
        )
    return creator


def _checked_user(user: str) -> str:
    if not _USER_RE.fullmatch(user):
        raise ServiceError(
            f"The user name '{user}' cannot own jobs here: use letters, digits and . _ @ - "
            "(starting with a letter or digit)"
        )
    return user


def _dict(body: dict, key: str) -> dict:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ServiceError(f"'{key}' must be a JSON object", code=20010)
    return dict(value)


def _int_or_none(value: object) -> int | None:
    try:
        return None if value is None else int(str(value))
    except ValueError:
        return None
