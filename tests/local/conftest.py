"""Fixtures for the embedded server's services, used directly through `LocalLinkis`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.localsvc import USER, sql_body, wait_final, wait_history_final

from linkis_kernel.local.service import LocalLinkis


@pytest.fixture
def linkis(tmp_path: Path) -> Iterator[LocalLinkis]:
    """A started LocalLinkis on a fresh data dir (2 workers)."""
    service = LocalLinkis(tmp_path / "data", workers=2)
    service.start()
    yield service
    service.close()


@pytest.fixture
def run() -> Callable[..., dict]:
    """Submit code as USER and wait until the job is final, in job history too; returns the
    submit answer."""

    def _run(service: LocalLinkis, code: str, timeout: float = 20.0, **kw) -> dict:
        submitted = service.submit(USER, sql_body(code, **kw))
        wait_final(service, submitted["execID"], timeout)
        wait_history_final(service, submitted["taskID"])
        return submitted

    return _run
