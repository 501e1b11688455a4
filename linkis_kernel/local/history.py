"""Job history in SQLite: one row per task, rendered as QueryTaskVO.

(docs/linkis-rest.md, "Job history")
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..wire import FAILED, RUNNING, TERMINAL_STATES
from .ids import full_exec_id

# Code one page of jobhistory/list may carry (characters): a submit may hold 10 MiB of code.
MAX_LIST_CODE_CHARS = 32 << 20


class ListTooLarge(ValueError):
    """The tasks of a page hold more code than one answer may carry."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    task_id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance TEXT NOT NULL,
    group_name TEXT NOT NULL,
    exec_index INTEGER NOT NULL,
    um_user TEXT NOT NULL,
    execute_user TEXT NOT NULL,
    engine_instance TEXT,
    execution_code TEXT NOT NULL,
    progress TEXT,
    log_path TEXT NOT NULL,
    result_location TEXT,
    status TEXT NOT NULL,
    created_time INTEGER NOT NULL,
    updated_time INTEGER NOT NULL,
    engine_type TEXT NOT NULL,
    err_code INTEGER,
    err_desc TEXT,
    creator TEXT NOT NULL,
    run_type TEXT NOT NULL,
    params_json TEXT NOT NULL,
    source_json TEXT NOT NULL,
    labels_json TEXT NOT NULL,
    metrics_json TEXT NOT NULL,
    is_reuse INTEGER
);
CREATE INDEX IF NOT EXISTS tasks_user ON tasks (execute_user, created_time);
CREATE INDEX IF NOT EXISTS tasks_group ON tasks (group_name, exec_index);
"""

# Columns a caller may change with `update`.
_UPDATABLE = frozenset(
    {
        "engine_instance",
        "execution_code",
        "log_path",
        "progress",
        "result_location",
        "status",
        "err_code",
        "err_desc",
        "is_reuse",
    }
)


_SQLITE_MAX = 2**63 - 1


def _clamp(value: int) -> int:
    """Keep request numbers inside SQLite's 64-bit integers."""
    return max(-_SQLITE_MAX, min(value, _SQLITE_MAX))


def _decoded_text(data: bytes) -> str:
    return data.decode(errors="replace")


def now_ms() -> int:
    return int(time.time() * 1000)


def _compact(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _gson_time(ms: int) -> str:
    """Dates inside `metrics` as Linkis' Gson writes them: yyyy-MM-dd'T'HH:mm:ssZ."""
    return datetime.fromtimestamp(ms / 1000).astimezone().strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass
class NewTask:
    """What submit records before the job is scheduled."""

    instance: str
    group_name: str
    exec_index: int
    user: str
    submit_user: str
    code: str
    engine_type: str
    creator: str
    run_type: str
    params: dict
    source: dict
    labels: list[str]
    created: int = field(default_factory=now_ms)


class History:
    """Thread-safe SQLite job history (WAL, one lock)."""

    def __init__(self, path: Path):
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        # A row whose text is not UTF-8 (written by an older version or by hand) is read with
        # U+FFFD in place of the bad bytes instead of failing every list that includes it.
        self._db.text_factory = _decoded_text
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def insert(self, task: NewTask, status: str) -> int:
        """Record a new task; returns its taskID."""
        metrics = {"submitTime": task.created}
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO tasks (instance, group_name, exec_index, um_user, execute_user,"
                " execution_code, log_path, status, created_time, updated_time, engine_type,"
                " creator, run_type, params_json, source_json, labels_json, metrics_json)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    task.instance,
                    task.group_name,
                    task.exec_index,
                    task.submit_user,
                    task.user,
                    task.code,
                    "",
                    status,
                    task.created,
                    task.created,
                    task.engine_type,
                    task.creator,
                    task.run_type,
                    _compact(task.params),
                    _compact(task.source),
                    json.dumps(task.labels),
                    json.dumps(metrics),
                ),
            )
            return int(cur.lastrowid or 0)

    def update(
        self, task_id: int, *, metrics: dict[str, int] | None = None, **values: object
    ) -> None:
        """Set columns of a task row (and its updated_time) in one statement.

        `metrics` (epoch-ms submitTime, scheduleTime, ...) are merged into the task's metrics in
        the same statement, so a reader never sees a final status without its completeTime.
        """
        unknown = set(values) - _UPDATABLE
        if unknown:
            raise ValueError(f"not updatable: {sorted(unknown)}")
        assignments = [f"{name} = ?" for name in values]
        params: list[object] = list(values.values())
        if metrics:
            assignments.append("metrics_json = json_patch(metrics_json, ?)")
            params.append(json.dumps(metrics))
        assignments.append("updated_time = ?")
        params += [now_ms(), task_id]
        sql = f"UPDATE tasks SET {', '.join(assignments)} WHERE task_id = ?"
        with self._lock:
            self._db.execute(sql, params)

    def row(self, task_id: int) -> sqlite3.Row | None:
        """The task's row, or None."""
        if not 0 <= task_id <= _SQLITE_MAX:
            return None
        with self._lock:
            return self._db.execute("SELECT * FROM tasks WHERE task_id = ?", (task_id,)).fetchone()

    def max_index(self, group: str) -> int:
        """Highest exec index ever issued in a group, -1 when none."""
        with self._lock:
            row = self._db.execute(
                "SELECT MAX(exec_index) AS m FROM tasks WHERE group_name = ?", (group,)
            ).fetchone()
        return -1 if row["m"] is None else int(row["m"])

    def fail_unfinished(self, err_code: int, err_desc: str) -> list[sqlite3.Row]:
        """Mark every non-terminal task Failed (progress 1.0); returns the rows it changed."""
        marks = ",".join("?" * len(TERMINAL_STATES))
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM tasks WHERE status NOT IN ({marks})", tuple(TERMINAL_STATES)
            ).fetchall()
            self._db.execute(
                f"UPDATE tasks SET status = ?, progress = '1.0', err_code = ?, err_desc = ?,"
                f" updated_time = ? WHERE status NOT IN ({marks})",
                (FAILED, err_code, err_desc, now_ms(), *TERMINAL_STATES),
            )
        return rows

    def list(
        self,
        user: str,
        *,
        start_date: int | None,
        end_date: int | None,
        status: list[str] | None,
        page_now: int,
        page_size: int,
        task_id: int | None,
        engine_type: str | None,
        creator: str | None,
    ) -> tuple[list[sqlite3.Row], int]:
        """One page of a user's tasks, newest first, and the total number that match;
        ListTooLarge if their code is more than MAX_LIST_CODE_CHARS."""
        start = _clamp(start_date or 0)
        end = _clamp(end_date) if end_date is not None else now_ms()
        if start_date is not None and end_date is not None and start == end:
            end = _clamp(end + 86_400_000)
        where = ["execute_user = ?", "created_time >= ?", "created_time <= ?"]
        params: list[object] = [user, start, end]
        if status:
            where.append(f"status IN ({','.join('?' * len(status))})")
            params += status
        if task_id is not None:
            where.append("task_id = ?")
            params.append(_clamp(task_id))
        if engine_type:
            where.append("engine_type = ?")
            params.append(engine_type)
        if creator:
            where.append("creator = ?")
            params.append(creator)
        clause = " AND ".join(where)
        page = (
            f"FROM tasks WHERE {clause} ORDER BY created_time DESC, task_id DESC LIMIT ? OFFSET ?"
        )
        page_params = [*params, _clamp(page_size), _clamp((page_now - 1) * page_size)]
        with self._lock:
            total = self._db.execute(
                f"SELECT COUNT(*) FROM tasks WHERE {clause}", params
            ).fetchone()[0]
            code = self._db.execute(
                "SELECT COALESCE(SUM(LENGTH(execution_code)), 0)"
                f" FROM (SELECT execution_code {page})",
                page_params,
            ).fetchone()[0]
            if code > MAX_LIST_CODE_CHARS:
                raise ListTooLarge(f"the tasks of this page hold {code} characters of code")
            rows = self._db.execute(f"SELECT * {page}", page_params).fetchall()
        return rows, int(total)


def gson_metrics(row: sqlite3.Row) -> dict[str, object]:
    """A task's metrics as Linkis stores them: times as Gson date strings, plus the engine
    instance and whether the engine was reused once they are known."""
    metrics = json.loads(row["metrics_json"])
    found: dict[str, object] = {
        k: _gson_time(v) if k.endswith("Time") else v for k, v in metrics.items()
    }
    if row["engine_instance"]:
        found["engineInstance"] = row["engine_instance"]
    if row["is_reuse"] is not None:
        found["isReuse"] = bool(row["is_reuse"])
    return found


def task_vo(row: sqlite3.Row, *, with_code: bool) -> dict:
    """A history row as QueryTaskVO with Linkis' JSON types (docs/linkis-rest.md, "Job history")."""
    metrics = json.loads(row["metrics_json"])
    submitted = metrics.get("submitTime", row["created_time"])
    scheduled = metrics.get("scheduleTime")
    completed = metrics.get("completeTime")
    short_id = f"{row['group_name']}_{row['exec_index']}"
    source = json.loads(row["source_json"])
    running = row["status"] == RUNNING
    finished = row["status"] in TERMINAL_STATES
    if completed is None:
        completed = row["updated_time"] if finished else now_ms()
    return {
        "taskID": row["task_id"],
        "instance": row["instance"],
        "execId": short_id,
        "umUser": row["um_user"],
        "executeUser": row["execute_user"],
        "engineInstance": row["engine_instance"],
        "executionCode": row["execution_code"] if with_code else None,
        "progress": row["progress"],
        "logPath": row["log_path"],
        "resultLocation": row["result_location"],
        "status": row["status"],
        "createdTime": row["created_time"],
        "updatedTime": row["updated_time"],
        "engineType": row["engine_type"],
        "errCode": None if running else row["err_code"],
        "errDesc": None if running else row["err_desc"],
        "executeApplicationName": row["engine_type"],
        "requestApplicationName": row["creator"],
        "runType": row["run_type"],
        "paramsJson": row["params_json"],
        "costTime": max(0, completed - submitted),
        "strongerExecId": full_exec_id(row["instance"], short_id),
        "sourceJson": row["source_json"],
        "sourceTailor": "-".join(str(v) for v in source.values()),
        "engineStartTime": None,
        "labels": json.loads(row["labels_json"]),
        "canRetry": False,
        "observeInfo": None,
        "isReuse": None if row["is_reuse"] is None else bool(row["is_reuse"]),
        "requestStartTime": submitted,
        "requestEndTime": scheduled,
        "requestSpendTime": None if scheduled is None else scheduled - submitted,
        "metrics": json.dumps(gson_metrics(row), ensure_ascii=False, separators=(",", ":")),
        "subJobs": None,
    }
