"""Waiting helpers shared by the HTTP tests of the embedded server."""

from __future__ import annotations

import time

from serverproc import ServerProcess


def wait_for_state(server: ServerProcess, exec_id: str, state: str, timeout: float = 20.0) -> None:
    """Poll entrance status until the job is in `state` (e.g. Running); fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        envelope = server.client.get(server.api(f"entrance/{exec_id}/status"), timeout=10).json()
        assert envelope["status"] == 0, envelope
        if envelope["data"]["status"] == state:
            return
        time.sleep(0.02)
    raise AssertionError(f"{exec_id} never reached {state}")
