"""Helpers for tests that run Jupyter programs (JupyterLab, notebooks) in private directories."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jupyter_client.manager import start_new_kernel


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def install_linkis_kernelspecs(prefix: Path) -> str | None:
    """`linkis-kernel install --prefix`; the error text when that is not possible."""
    done = subprocess.run(
        [sys.executable, "-m", "linkis_kernel", "install", "--prefix", str(prefix)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        return f"linkis-kernel install failed ({done.returncode}): {done.stderr.strip()[-800:]}"
    return None


def private_jupyter_env(base: Path, prefix: Path) -> dict[str, str]:
    """This environment without LINKIS_* settings, with Jupyter config, runtime, data and IPython
    dirs created under `base` and kernelspecs looked up under `prefix`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("LINKIS_")}
    for name in ("config", "runtime", "data", "ipython"):
        (base / name).mkdir()
    env.update(
        JUPYTER_CONFIG_DIR=str(base / "config"),
        JUPYTER_RUNTIME_DIR=str(base / "runtime"),
        JUPYTER_DATA_DIR=str(base / "data"),
        IPYTHONDIR=str(base / "ipython"),
        JUPYTER_PATH=str(prefix / "share" / "jupyter"),
    )
    return env


@contextmanager
def running_kernel(name: str, ipython_dir: Path) -> Iterator[tuple[Any, Any]]:
    """Kernel `name` started through jupyter_client with its own IPython history in
    `ipython_dir`; yields (manager, client) and shuts the kernel down at exit."""
    os.environ["IPYTHONDIR"] = str(ipython_dir)
    manager, client = start_new_kernel(kernel_name=name)
    try:
        yield manager, client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
