"""Wire models: what the Linkis REST endpoints answer, as frozen dataclasses.

Each model is built with `from_json(data)` from the envelope's `data` object (or one item of
it) and keeps that object as `raw`, so fields the model does not name stay reachable.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..wire import NULL_MARKER

_LOG_LEVEL = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} (?:SYSTEM-)?(ERROR|WARN|INFO) ")
_FIRST_NUMBER = re.compile(r"\d+")


def _lines(text: str | None) -> list[str]:
    """Split a Linkis log string on newlines, dropping empty lines (and null elements)."""
    if not text:
        return []
    return [line for line in text.split("\n") if line]


def _from_epoch_ms(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    return datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc)


def _optional_float(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


@dataclass(frozen=True)
class LoginInfo:
    """Answer of `user/login` (also `user/token-login`)."""

    user_name: str | None
    is_admin: bool
    session_timeout_ms: int | None
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> LoginInfo:
        return cls(
            user_name=data.get("userName"),
            is_admin=bool(data.get("isAdmin", False)),
            session_timeout_ms=_optional_int(data.get("sessionTimeOut")),
            raw=data,
        )


@dataclass(frozen=True)
class SubmitResult:
    """Answer of `entrance/submit` and `entrance/execute`."""

    exec_id: str
    task_id: int
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> SubmitResult:
        return cls(exec_id=data["execID"], task_id=int(data["taskID"]), raw=data)


@dataclass(frozen=True)
class JobStatus:
    """Answer of `entrance/{id}/status`; `task_id` only when the server routed by task id."""

    state: str
    exec_id: str
    task_id: int | None
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> JobStatus:
        return cls(
            state=data["status"],
            exec_id=data.get("execID") or "",
            task_id=_optional_int(data.get("taskID")),
            raw=data,
        )


@dataclass(frozen=True)
class LogChunk:
    """Log lines by level from `entrance/{id}/log` or `filesystem/openLog`.

    `from_line` is what to send as `fromLine` on the next call.
    """

    error: list[str]
    warn: list[str]
    info: list[str]
    all: list[str]
    from_line: int
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict, from_line: int = 0) -> LogChunk:
        """`from_line` is used when the answer carries no `fromLine` (openLog)."""
        log = data.get("log")
        next_line = int(data.get("fromLine", from_line))
        if isinstance(log, list):
            error, warn, info, all_ = (_lines(part) for part in (list(log) + [None] * 4)[:4])
            return cls(error, warn, info, all_, next_line, data)
        # The string form (distinctLevel=false, or "" after a read error): classify each line.
        all_ = _lines(log)
        by_level: dict[str, list[str]] = {"ERROR": [], "WARN": [], "INFO": []}
        for line in all_:
            match = _LOG_LEVEL.match(line)
            by_level[match.group(1) if match else "INFO"].append(line)
        return cls(by_level["ERROR"], by_level["WARN"], by_level["INFO"], all_, next_line, data)


@dataclass(frozen=True)
class StageProgress:
    """One `progressInfo` entry: a stage's task counts."""

    id: str
    succeed: int
    failed: int
    running: int
    total: int

    @classmethod
    def from_json(cls, data: dict) -> StageProgress:
        return cls(
            id=str(data.get("id", "")),
            succeed=int(data.get("succeedTasks") or 0),
            failed=int(data.get("failedTasks") or 0),
            running=int(data.get("runningTasks") or 0),
            total=int(data.get("totalTasks") or 0),
        )


@dataclass(frozen=True)
class ResourceUsage:
    """YARN queue use from `progressWithResource`'s `yarnMetrics` (percentages are 0..1)."""

    memory_percent: float
    core_percent: float
    memory_rgb: str
    core_rgb: str
    applications: list[dict]

    @classmethod
    def from_json(cls, data: dict) -> ResourceUsage:
        return cls(
            memory_percent=float(data.get("memoryPercent") or 0.0),
            core_percent=float(data.get("corePercent") or 0.0),
            memory_rgb=data.get("memoryRGB") or "",
            core_rgb=data.get("coreRGB") or "",
            applications=list(data.get("yarnResource") or []),
        )


@dataclass(frozen=True)
class Progress:
    """Answer of `entrance/{id}/progress` and `progressWithResource` (`progress` is 0..1)."""

    progress: float
    stages: list[StageProgress]
    resources: ResourceUsage | None
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> Progress:
        metrics = data.get("yarnMetrics")
        return cls(
            progress=float(data.get("progress") or 0.0),
            stages=[StageProgress.from_json(s) for s in data.get("progressInfo") or []],
            resources=ResourceUsage.from_json(metrics) if metrics else None,
            raw=data,
        )


@dataclass(frozen=True)
class TaskInfo:
    """One job-history row (QueryTaskVO). `exec_id` is the short id; `stronger_exec_id` the full.

    `progress` is 0..1 or None before the first update; times are UTC-aware.
    """

    task_id: int
    exec_id: str | None
    stronger_exec_id: str | None
    status: str
    progress: float | None
    log_path: str | None
    result_location: str | None
    engine_type: str | None
    run_type: str | None
    creator: str | None
    submit_user: str | None
    execute_user: str | None
    err_code: int | None
    err_desc: str | None
    created_time: datetime | None
    updated_time: datetime | None
    cost_time_ms: int | None
    execution_code: str | None
    labels: list[str]
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> TaskInfo:
        return cls(
            task_id=int(data["taskID"]),
            exec_id=data.get("execId"),
            stronger_exec_id=data.get("strongerExecId"),
            status=data["status"],
            progress=_optional_float(data.get("progress")),
            log_path=data.get("logPath"),
            result_location=data.get("resultLocation"),
            engine_type=data.get("engineType") or data.get("executeApplicationName"),
            run_type=data.get("runType"),
            creator=data.get("requestApplicationName"),
            submit_user=data.get("umUser"),
            execute_user=data.get("executeUser"),
            err_code=_optional_int(data.get("errCode")),
            err_desc=data.get("errDesc"),
            created_time=_from_epoch_ms(data.get("createdTime")),
            updated_time=_from_epoch_ms(data.get("updatedTime")),
            cost_time_ms=_optional_int(data.get("costTime")),
            execution_code=data.get("executionCode"),
            labels=list(data.get("labels") or []),
            raw=data,
        )


@dataclass(frozen=True)
class TaskPage:
    """Answer of `jobhistory/list`: one page of tasks and the total number of matching rows."""

    tasks: list[TaskInfo]
    total: int
    raw: dict = field(repr=False, default_factory=dict)

    @classmethod
    def from_json(cls, data: dict) -> TaskPage:
        tasks = [TaskInfo.from_json(t) for t in data.get("tasks") or []]
        # `totalPage` is the row total (PageHelper), not a page count.
        return cls(tasks=tasks, total=int(data.get("totalPage") or 0), raw=data)


def _number_in_name(path: str) -> tuple[int, int, str]:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    match = _FIRST_NUMBER.search(name)
    return (0, int(match.group()), name) if match else (1, 0, name)


@dataclass(frozen=True)
class DirTree:
    """A directory listing from `filesystem/getDirFileTrees` (one level of children)."""

    name: str
    path: str
    is_leaf: bool
    children: list[DirTree]
    size: int | None
    modified: datetime | None
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> DirTree:
        props = data.get("properties") or {}
        return cls(
            name=data.get("name") or "",
            path=data["path"],
            is_leaf=bool(data.get("isLeaf", False)),
            children=[cls.from_json(c) for c in data.get("children") or []],
            size=_optional_int(props.get("size")),
            modified=_from_epoch_ms(props.get("modifytime")),
            raw=data,
        )

    def result_paths(self) -> list[str]:
        """The children's paths in result-set order: by the first number in the file name."""
        return sorted((c.path for c in self.children), key=_number_in_name)


@dataclass(frozen=True)
class Column:
    """A result-set column from `openFile` metadata; `comment` None when Linkis has none."""

    name: str
    data_type: str
    comment: str | None


@dataclass(frozen=True)
class FilePage:
    """One page of `filesystem/openFile`.

    `rows` is the decoded `fileContent` list itself (no copy, no per-cell work): cells are strings,
    or None for a real null when asked with `nullValue=LINKIS_NULL`. `total_line` is the number of
    rows in this page; an empty page means the end. `columns` is None for non-table results.
    """

    type: str
    columns: list[Column] | None
    rows: list[list]
    page: int
    total_line: int
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> FilePage:
        metadata = data.get("metadata")
        columns = None
        if isinstance(metadata, list):
            columns = [
                Column(
                    name=m.get("columnName", ""),
                    data_type=m.get("dataType") or "string",
                    comment=None
                    if m.get("comment") in (None, "NULL", NULL_MARKER)
                    else m["comment"],
                )
                for m in metadata
            ]
        rows = data.get("fileContent") or []
        return cls(
            type=str(data.get("type", "")),
            columns=columns,
            rows=rows,
            page=int(data.get("page") or 0),
            total_line=int(data.get("totalLine") or len(rows)),
            raw=data,
        )


@dataclass(frozen=True)
class TableInfo:
    """One table from `datasource/tables`; `created_at` from epoch seconds (None when 0)."""

    database: str
    name: str
    is_view: bool
    created_by: str | None
    created_at: datetime | None

    @classmethod
    def from_json(cls, data: dict, database: str = "") -> TableInfo:
        created = data.get("createdAt")
        return cls(
            database=data.get("databaseName") or database,
            name=data["tableName"],
            is_view=bool(data.get("isView", False)),
            created_by=data.get("createdBy") or None,
            created_at=datetime.fromtimestamp(int(created), tz=timezone.utc) if created else None,
        )


@dataclass(frozen=True)
class ColumnInfo:
    """One column from `datasource/columns` (partition keys come last, `partitioned=True`)."""

    name: str
    type: str
    comment: str | None
    partitioned: bool

    @classmethod
    def from_json(cls, data: dict) -> ColumnInfo:
        return cls(
            name=data["columnName"],
            type=data.get("columnType") or "",
            comment=data.get("columnComment"),
            partitioned=bool(data.get("partitioned", False)),
        )


@dataclass(frozen=True)
class EngineInfo:
    """One engine (EngineConn) of the user, from `linkisManager/listUserEngines`.

    `instance` is the engine's `host:port`, what `kill_engine` takes; `idle_seconds` is how long
    an idle engine has had nothing to do (None while it runs a job or when unknown).
    """

    instance: str
    application: str
    creator: str | None
    engine_type: str | None
    version: str | None
    status: str
    owner: str | None
    started: datetime | None
    updated: datetime | None
    memory_bytes: int | None
    raw: dict = field(repr=False)

    @classmethod
    def from_json(cls, data: dict) -> EngineInfo:
        service = data.get("serviceInstance") or {}
        labels = {label.get("labelKey"): label for label in data.get("labels") or []}
        user_creator = labels.get("userCreator") or {}
        engine = labels.get("engineType") or {}
        used = ((data.get("nodeResource") or {}).get("usedResource")) or {}
        return cls(
            instance=str(service.get("instance") or ""),
            application=str(service.get("applicationName") or ""),
            creator=user_creator.get("creator"),
            engine_type=engine.get("engineType"),
            version=engine.get("version"),
            status=str(data.get("nodeStatus") or ""),
            owner=data.get("owner"),
            started=_from_epoch_ms(data.get("startTime")),
            updated=_from_epoch_ms(data.get("updateTime")),
            memory_bytes=_optional_int(used.get("memory")),
            raw=data,
        )

    @property
    def idle_seconds(self) -> float | None:
        """Seconds since an idle (`Unlock`/`Idle`) engine last ran a job."""
        if self.status not in ("Unlock", "Idle") or self.updated is None:
            return None
        return max(0.0, (datetime.now(timezone.utc) - self.updated).total_seconds())
