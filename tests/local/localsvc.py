"""Helpers for the embedded server's service tests, used directly through `LocalLinkis`."""

from __future__ import annotations

import time

from linkis_kernel.local.service import LocalLinkis
from linkis_kernel.wire import TERMINAL_STATES

USER = "alice"
OTHER = "bob"


def sql_body(code: str, *, engine: str = "spark", creator: str = "IDE", run_type: str = "sql"):
    return {
        "executionContent": {"code": code, "runType": run_type},
        "labels": {"engineType": engine, "userCreator": f"{USER}-{creator}"},
        "params": {"variable": {}},
        "source": {"scriptPath": "test.sql"},
    }


def wait_final(service: LocalLinkis, exec_id: str, timeout: float = 20.0) -> str:
    """Poll status until the job is final; returns the state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = service.status(USER, exec_id, None)["status"]
        if state in TERMINAL_STATES:
            return state
        time.sleep(0.02)
    raise AssertionError(f"{exec_id} did not finish within {timeout} s")


def wait_state(service: LocalLinkis, exec_id: str, state: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while service.status(USER, exec_id, None)["status"] != state:
        if time.monotonic() > deadline:
            raise AssertionError(f"{exec_id} never reached {state}")
        time.sleep(0.02)


def wait_history_final(service: LocalLinkis, task_id: int, timeout: float = 5.0) -> None:
    """Poll job history until the task's row is final (it may lag the in-memory state a moment)."""
    deadline = time.monotonic() + timeout
    while service.history_get(USER, task_id)["task"]["status"] not in TERMINAL_STATES:
        if time.monotonic() > deadline:
            raise AssertionError(f"task {task_id} stayed unfinished in job history")
        time.sleep(0.01)
