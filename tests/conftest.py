"""Shared fixtures: `linkis_server`, one real embedded Linkis server for the whole session.

Helpers for tests that need their own instance live in `support/serverproc.py`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.serverproc import GUEST, ServerProcess, start_server


@pytest.fixture(scope="session")
def linkis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One embedded Linkis server shared by the whole test session."""
    server = start_server(tmp_path_factory.mktemp("linkis-data"), users=[GUEST])
    try:
        yield server
    finally:
        server.stop()
