"""Helpers for the embedded server's service tests, used directly through `LocalLinkis`."""

from __future__ import annotations

from typing import Any

from linkis_kernel.local.service import LocalLinkis
from linkis_kernel.wire import TERMINAL_STATES

from .bodies import submit_body
from .waiting import wait_until

USER = "alice"
OTHER = "bob"


def sql_body(
    code: str, *, engine: str = "spark", creator: str = "IDE", run_type: str = "sql"
) -> dict[str, Any]:
    """A submit body of USER's."""
    return submit_body(code, user=USER, engine=engine, creator=creator, run_type=run_type)


def state_of(service: LocalLinkis, exec_id: str) -> str:
    return service.status(USER, exec_id, None)["status"]


def wait_final(service: LocalLinkis, exec_id: str, timeout: float = 20.0) -> str:
    """Poll status until the job is final; returns the state."""

    def final_state() -> str | None:
        state = state_of(service, exec_id)
        return state if state in TERMINAL_STATES else None

    return wait_until(final_state, timeout, message=f"{exec_id} did not finish")


def wait_state(service: LocalLinkis, exec_id: str, state: str, timeout: float = 10.0) -> None:
    """Poll status until the job is in `state`."""
    wait_until(
        lambda: state_of(service, exec_id) == state,
        timeout,
        message=lambda: f"{exec_id} never reached {state} (it is {state_of(service, exec_id)})",
    )


def wait_history_final(service: LocalLinkis, task_id: int, timeout: float = 5.0) -> None:
    """Poll job history until the task's row is final (it may lag the in-memory state a moment)."""
    wait_until(
        lambda: service.history_get(USER, task_id)["task"]["status"] in TERMINAL_STATES,
        timeout,
        0.01,
        message=f"task {task_id} stayed unfinished in job history",
    )
