"""Fixtures of the magics tests: the environment that points IPython at the shared server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def linkis_env(linkis_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh IPYTHONDIR and token auth to the shared server, no other LINKIS_* settings;
    kernels started in the test inherit it. Returns the server."""
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("LINKIS_URL", linkis_server.url)
    monkeypatch.setenv("LINKIS_USER", linkis_server.user)
    monkeypatch.setenv("LINKIS_TOKEN", linkis_server.token)
    for name in ("LINKIS_PASSWORD", "LINKIS_ENGINE", "LINKIS_CREATOR"):
        monkeypatch.delenv(name, raising=False)
    return linkis_server
