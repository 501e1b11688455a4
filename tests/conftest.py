"""Shared fixtures: `linkis_server`, one real embedded Linkis server for the whole session, and
`clocked`, the embedded server's app in this process with its sessions on a fake clock.

Helpers for tests that need their own instance live in `support/serverproc.py`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from support.inprocess import SESSION_TIMEOUT, InProcessServer, clocked_server, running_service
from support.serverproc import GUEST, ServerProcess, start_server

from linkis_kernel.local.service import LocalLinkis

# Engine spark runs on DuckDB's stand-in in every server the suite starts (in this process or
# as a subprocess): a JVM per engine would make it slow. tests/spark runs the real Spark.
os.environ.setdefault("LINKIS_KERNEL_SPARK", "duckdb")


@pytest.fixture(scope="session")
def linkis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One embedded Linkis server shared by the whole test session."""
    server = start_server(tmp_path_factory.mktemp("linkis-data"), users=[GUEST])
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def in_process_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLinkis]:
    """The embedded server's service in this process, shared by a module's tests."""
    with running_service(tmp_path_factory.mktemp("in-process")) as service:
        yield service


@pytest.fixture
def clocked(in_process_service: LocalLinkis) -> Iterator[InProcessServer]:
    """A fresh app for USER/PASSWORD whose sessions expire after SESSION_TIMEOUT seconds of its
    fake clock (`clocked.clock.advance(...)`)."""
    with clocked_server(in_process_service, SESSION_TIMEOUT) as server:
        yield server
