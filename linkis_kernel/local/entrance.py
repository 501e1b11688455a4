"""`Entrance`: the embedded server's entrance service, from submit to kill.

Each public method returns the `data` dict of one entrance endpoint (or raises `ServiceError`
with the Linkis status and message). Methods never wait for a running job: they read memory,
one history row, or one page of a log.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from ..wire import (
    CANCELLED,
    DEFAULT_CREATOR,
    ENTRANCE_APPLICATION,
    FAILED,
    INITED,
    MSG_JOB_ENDED_PREFIX,
    RUNNING,
    STATUS_NO_PERMISSION,
    TERMINAL_STATES,
)
from .engines import ERR_VARIABLE, SQL_FAMILY, EngineChoice, choose_engine, label_error
from .errors import ServiceError, no_permission
from .history import NewTask, now_ms
from .ids import ShortId, full_exec_id, group_name
from .jobbook import MSG_KILLED_BY_USER, JobBook
from .jobs import Job
from .logfile import ERROR, INFO, WARN, JobLog
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
# Linkis names the job's user here ("..., excecute by user:<name>"); this server does not tell
# one user who another's jobs belong to.
MSG_KILL_NOT_YOURS = "You have no permission to kill this job: it is not one of yours"
MSG_KILL_COMPLETED = "The job already completed. Do not support kill.(任务已经结束，不支持kill)"
# The run types the local SQL engine takes: `${var}` values go into them as SQL literals.
_SQL_FAMILY = frozenset(SQL_FAMILY)
_CREATOR_RE = re.compile(r"[A-Za-z0-9_]{1,64}")
_USER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
# Labels every task gets from the request itself; other labels are kept as given.
_CORE_LABELS = ("engineType", "codeType", "userCreator")


class Entrance:
    """Submit, status, log, progress and kill of jobs; the jobs themselves live in `jobs`."""

    def __init__(
        self, jobs: JobBook, layout: Layout, global_variables: Callable[[str], dict[str, str]]
    ):
        """`global_variables(user)` gives a user's global variables, name -> value."""
        self.jobs = jobs
        self.layout = layout
        self.global_variables = global_variables

    # ---- submit / execute ------------------------------------------------------------------
    def submit(self, user: str, body: dict) -> dict:
        """entrance/submit (docs/linkis-rest.md, "Submit"): {"execID", "taskID"}."""
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
        """entrance/execute (docs/linkis-rest.md, "Submit"; the 0.x body): {"execID", "taskID"}."""
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
        index = self.jobs.next_index(group)
        short_id = ShortId(group, index)
        labels = [
            f"userCreator:{user}-{creator}",
            f"engineType:{choice.label}",
            f"codeType:{choice.run_type}",
            *(f"{k}:{v}" for k, v in extra_labels.items()),
        ]
        day = datetime.now().strftime("%Y-%m-%d")
        history = self.jobs.history
        task_id = history.insert(
            NewTask(
                instance=self.jobs.instance,
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
        history.update(task_id, log_path=schema_path(log_file))
        log = JobLog(log_file)
        over_quota = self.jobs.quota.submit_warning(user)
        if over_quota is not None:
            log.write(WARN, over_quota)
        code = self._substitute(task_id, log, code, choice, params, user)
        job = Job(
            task_id=task_id,
            exec_id=full_exec_id(self.jobs.instance, str(short_id)),
            short_id=short_id,
            user=user,
            creator=creator,
            engine=choice,
            code=code,
            log=log,
            result_dir=self.layout.result_dir(day, creator, user, task_id),
            scratch_dir=self.layout.scratch_dir / str(task_id),
        )
        self.jobs.hold(job)
        log.write(INFO, f"Job with jobId : {task_id} and execID : {short_id} submitted ")
        log.write(
            INFO,
            f"Your job is accepted,  jobID is {short_id} and jobReqId is {task_id} in "
            f"ServiceInstance({ENTRANCE_APPLICATION}, {self.jobs.instance}). "
            "Please wait it to be scheduled",
        )
        self.jobs.schedule(job)
        return {"execID": job.exec_id, "taskID": task_id}

    def _substitute(
        self, task_id: int, log: JobLog, code: str, choice: EngineChoice, params: dict, user: str
    ) -> str:
        lang = language(choice.run_type, _SQL_FAMILY)
        if lang is None:
            return code
        log.write(INFO, "Program is substituting variables for you")
        own = params.get("variable") or {}
        try:
            if not isinstance(own, dict):
                raise VariableError("params.variable must be an object of name -> value")
            # The job's own variables win over the user's global ones; `@set` lines win over both.
            variables = {**self.global_variables(user), **own}
            result = substitute(code, lang, variables, user=user, submit_user=user)
        except VariableError as exc:
            desc = f"Variable replacement failed!(变量替换失败！){exc}"
            log.write(ERROR, desc)
            self.jobs.history.update(
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
        self.jobs.history.update(task_id, execution_code=result.code)
        return result.code

    # ---- status / log / progress -----------------------------------------------------------
    def status(self, user: str, job_id: str, task_id: int | None) -> dict:
        """entrance/{id}/status (docs/linkis-rest.md, "Status")."""
        job, numeric, short_id = self.jobs.find(job_id)
        if job is not None:
            _require_owner(job, user, job_id)
            return {"status": job.state, "execID": job.exec_id}
        if numeric is not None:
            state = self.jobs.task_state(user, numeric)
            status = state if state in TERMINAL_STATES else INITED
            return {"status": status, "execID": "", "taskID": str(numeric)}
        if task_id is not None:
            row = self.jobs.owned_row_or_none(task_id, user)
            return {"status": CANCELLED if row is None else row["status"], "execID": job_id}
        raise self.jobs.lookup_error(short_id, MSG_STATUS_EMPTY, MSG_STATUS_LOOKUP)

    def log(
        self, user: str, job_id: str, from_line: int, size: int, distinct_level: bool = True
    ) -> dict:
        """entrance/{id}/log (docs/linkis-rest.md, "Logs")."""
        job, numeric, _ = self.jobs.find(job_id)
        if job is None:
            if numeric is not None:
                self.jobs.task_state(user, numeric)
            raise ServiceError(MSG_JOB_ENDED)
        _require_owner(job, user, job_id)
        page = job.log.read(from_line, size, distinct_level)
        return {"log": page["log"], "execID": job.exec_id, "fromLine": page["fromLine"]}

    def progress(
        self, user: str, job_id: str, task_id: int | None, with_resource: bool = False
    ) -> dict:
        """entrance/{id}/progress and progressWithResource (docs/linkis-rest.md, "Progress")."""
        job, numeric, _ = self.jobs.find(job_id)
        if job is not None:
            _require_owner(job, user, job_id)
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
        state = self.jobs.task_state(user, lookup)
        data = {"yarnResource": None} if with_resource else {}
        data.update(
            progress="1.0" if state in TERMINAL_STATES else 0,
            execID="",
            taskID=str(lookup),
            progressInfo=[],
        )
        return data

    # ---- kill ------------------------------------------------------------------------------
    def kill(self, user: str, job_id: str, task_id: int | None) -> tuple[str, dict]:
        """entrance/{id}/kill (docs/linkis-rest.md, "Kill"): (message, data)."""
        job, numeric, _ = self.jobs.find(job_id)
        if job is not None:
            if job.user != user:
                raise ServiceError(MSG_KILL_NOT_YOURS)
            self.jobs.cancel(job)
            return MSG_KILLED, {"execID": job.exec_id}
        lookup = numeric if numeric is not None else task_id
        if lookup is None:
            raise ServiceError(MSG_KILL_LOOKUP)
        history = self.jobs.history
        row = history.row(lookup)
        if row is None:
            raise ServiceError(f"taskId {lookup} is not exists.")
        if row["execute_user"] != user:
            raise ServiceError(MSG_KILL_NOT_YOURS)
        if self.jobs.state_of(row) in TERMINAL_STATES:
            if numeric is not None:
                raise ServiceError(MSG_KILL_COMPLETED)
            return MSG_FORCED_KILL, {}
        history.update(lookup, status=CANCELLED, progress="1.0", err_desc=MSG_KILLED_BY_USER)
        return MSG_FORCED_KILL, ({"execID": "", "taskID": str(lookup)} if numeric else {})

    def pause(self, user: str, job_id: str) -> dict:
        """entrance/{id}/pause (docs/linkis-rest.md, "Kill"): accepted and ignored, as in Linkis,
        but only for the caller's own job; another user's is not found, as an unknown one."""
        try:
            job, _, _ = self.jobs.find(job_id)
        except ServiceError:
            job = None
        if job is None or job.user != user:
            raise ServiceError(
                f"can not find the job of exexID :{job_id} can not pause (不能找到execID: "
                f"{job_id}对应的job，不能进行pause)"
            )
        return {"execID": job_id}

    def kill_jobs(self, user: str, exec_ids: list, task_ids: list) -> tuple[str, dict]:
        """entrance/{id}/killJobs (docs/linkis-rest.md, "Kill"): ("success", {"messages": []})."""
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
            job, numeric, _ = self.jobs.find(exec_id)
        except ServiceError:
            return  # reported per entry
        if job is not None:
            owner = job.user
        else:
            lookup = numeric if numeric is not None else _int_or_none(task_id)
            row = self.jobs.history.row(lookup) if lookup is not None else None
            owner = row["execute_user"] if row is not None else user
        if owner != user:
            raise ServiceError(MSG_KILL_NOT_YOURS, status=STATUS_NO_PERMISSION)


def _require_owner(job: Job, user: str, job_id: object) -> None:
    if job.user != user:
        raise no_permission(job_id)


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
