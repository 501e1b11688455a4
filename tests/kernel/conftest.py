"""Kernel tests: the Linkis kernelspecs installed into a temporary prefix, found through
JUPYTER_PATH, and pointed at the session's embedded server through the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from jupyter_kernel_test import msgspec_v5
from support.serverproc import REPO_ROOT, ServerProcess

# Widget traffic (the progress panel) is comm messages, which the harness has no schema for.
for _comm in ("comm_open", "comm_msg", "comm_close"):
    msgspec_v5.schema_fragments.setdefault(
        _comm,
        {
            "properties": {"comm_id": {"type": "string"}, "data": {"type": "object"}},
            "additionalProperties": True,
        },
    )


@pytest.fixture(scope="session", autouse=True)
def kernel_environment(
    linkis_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """Install the kernelspecs with `linkis-kernel install --prefix TMP`; kernels started in
    this session find them and reach the shared server. Yields the prefix."""
    prefix = tmp_path_factory.mktemp("jupyter-prefix")
    installed = subprocess.run(
        [sys.executable, "-m", "linkis_kernel", "install", "--prefix", str(prefix)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert installed.returncode == 0, installed.stderr
    settings = {
        "JUPYTER_PATH": str(prefix / "share" / "jupyter"),
        "LINKIS_URL": linkis_server.url,
        "LINKIS_USER": linkis_server.user,
        "LINKIS_TOKEN": linkis_server.token,
        "IPYTHONDIR": str(tmp_path_factory.mktemp("ipython")),
    }
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield prefix
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="class", autouse=True)
def fresh_ipython_dir(kernel_environment: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """A new IPYTHONDIR for the kernels of each test class (before its setUpClass) or module:
    IPython history is one database per directory."""
    os.environ["IPYTHONDIR"] = str(tmp_path_factory.mktemp("ipython"))
