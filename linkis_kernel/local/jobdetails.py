"""What job history says about one job beyond QueryTaskVO: its code and run time
(`jobhistory/job-extra-info`) and why it failed (`jobhistory/diagnosis-query`).

(docs/linkis-rest.md, "Job details")
"""

from __future__ import annotations

import json
import re
import sqlite3

from ..wire import CANCELLED, FAILED
from .errors import ServiceError
from .history import gson_metrics
from .logfile import read_whole_log
from .paths import local_path

MSG_JOB_ID_EMPTY = "Invalid jobId cannot be empty"
MSG_NO_RUNTIME = (
    "The task did not end normally and the usage time could not be counted."
    "(任务并未正常结束，无法统计使用时间)"
)
# Linkis checks engineType and creator filters of listundonetasks with this pattern.
_FILTER_VALUE = re.compile(r"[a-zA-Z\-\d_.]+")
_TASK_ID = re.compile(r"[0-9]+")


def extra_info(row: sqlite3.Row) -> dict:
    """job-extra-info's data: {"metricsMap": metrics + executionCode + runtime}."""
    metrics = gson_metrics(row)
    metrics["executionCode"] = row["execution_code"]
    metrics["runtime"] = job_runtime(json.loads(row["metrics_json"]))
    return {"metricsMap": metrics}


def job_runtime(metrics: dict[str, int]) -> str:
    """completeTime - submitTime as Linkis' ByteTimeUtils.msDurationToString writes it.

    Linkis subtracts the stored date strings, which hold whole seconds.
    """
    complete, submit = metrics.get("completeTime"), metrics.get("submitTime")
    if complete is None or submit is None:
        return MSG_NO_RUNTIME
    ms = (complete // 1000 - submit // 1000) * 1000
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    if ms < 3_600_000:
        return f"{ms / 60_000:.1f} m"
    return f"{ms / 3_600_000:.2f} h"


def diagnosis_task_id(text: str | None) -> int:
    """The taskID of diagnosis-query: required, digits only (Linkis error 21304 otherwise)."""
    if text is None or not text.strip():
        raise ServiceError(MSG_JOB_ID_EMPTY)
    if not _TASK_ID.fullmatch(text):
        raise ServiceError(f"Invalid taskID : {text}", code=21304)
    return int(text)


def diagnosis(row: sqlite3.Row) -> str:
    """Why a job did not succeed: its error and the error lines of its log; "" otherwise."""
    if row["status"] not in (FAILED, CANCELLED):
        return ""
    code = "" if row["err_code"] is None else f" (error {row['err_code']})"
    lines = [f"Job {row['task_id']} {row['status']}{code}: {row['err_desc'] or 'no reason given'}"]
    errors = _log_errors(row["log_path"])
    if errors:
        lines += ["", "Error lines of its log:", errors.rstrip("\n")]
    return "\n".join(lines)


def _log_errors(log_path: str) -> str:
    path = local_path(log_path)
    try:
        return read_whole_log(path)[0]
    except OSError:
        return ""


def checked_filter(value: str | None, message: str) -> str | None:
    """An engineType or creator filter of listundonetasks, refused as Linkis refuses it."""
    if value and not _FILTER_VALUE.fullmatch(value):
        raise ServiceError(f"{message}{value}")
    return value or None
