"""A kernel killed mid-job loses nothing: a new kernel attaches to the job and reads its result."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from jupyter_client.manager import KernelManager, start_new_kernel
from support.serverproc import ServerProcess

from linkis_kernel.wire import TERMINAL_STATES

EXECUTE_TIMEOUT = 60


@contextmanager
def python_kernel(server: ServerProcess, ipython_dir: Path) -> Iterator[tuple[KernelManager, Any]]:
    """A stock python3 kernel whose environment points `%%linkis` at `server`."""
    env = {
        **os.environ,
        "LINKIS_URL": server.url,
        "LINKIS_USER": server.user,
        "LINKIS_TOKEN": server.token,
        "IPYTHONDIR": str(ipython_dir),
    }
    env.pop("LINKIS_PASSWORD", None)
    manager, client = start_new_kernel(kernel_name="python3", env=env)
    try:
        yield manager, client
    finally:
        client.stop_channels()
        if manager.is_alive():
            manager.shutdown_kernel(now=True)


def run(client: Any, code: str) -> tuple[str, list[dict]]:
    """Execute `code`; returns the reply status and the cell's output messages."""
    outputs: list[dict] = []
    reply = client.execute_interactive(
        code, timeout=EXECUTE_TIMEOUT, output_hook=outputs.append, store_history=False
    )
    return reply["content"]["status"], outputs


def text_of(outputs: list[dict]) -> str:
    parts = []
    for message in outputs:
        content = message["content"]
        parts.append(content.get("text", ""))
        parts.append(content.get("data", {}).get("text/plain", ""))
        parts.extend(content.get("traceback", []))
    return "\n".join(parts)


def test_a_new_kernel_attaches_to_the_job_of_a_killed_one(
    linkis_server: ServerProcess, tmp_path: Path
) -> None:
    # The job runs until the test drops this file in the user's HOME (data dir/users/<user>/files).
    name = f"release-{tmp_path.name}"
    release = linkis_server.data_dir / "users" / linkis_server.user / "files" / name
    cell = (
        "%%linkis --async -o j -e shell --quiet\n"
        f'while [ ! -e "$HOME/{name}" ]; do sleep 0.1; done; echo result-after-the-crash'
    )
    try:
        with python_kernel(linkis_server, tmp_path / "ipython-1") as (manager, client):
            status, _ = run(client, "%load_ext linkis_kernel")
            assert status == "ok"
            status, outputs = run(client, cell)
            assert status == "ok", text_of(outputs)
            status, outputs = run(client, "print(j.task_id)")
            assert status == "ok", text_of(outputs)
            task_id = int(text_of(outputs).strip())
            direct = linkis_server.linkis_client()
            assert direct.jobhistory_get(task_id).status not in TERMINAL_STATES
            os.kill(manager.provisioner.process.pid, signal.SIGKILL)
            manager.provisioner.process.wait(10)
            assert not manager.is_alive()
    finally:
        release.write_text("")  # the job ends now, after the kernel that started it died

    with python_kernel(linkis_server, tmp_path / "ipython-2") as (_, client):
        run(client, "%load_ext linkis_kernel")
        status, outputs = run(client, f"%linkis attach {task_id}")
        assert status == "ok", text_of(outputs)
        assert "result-after-the-crash" in text_of(outputs)
