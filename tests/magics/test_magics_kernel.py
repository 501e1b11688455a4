"""Interrupt and shutdown in a real python3 kernel; text progress under terminal IPython."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client import KernelManager
from support.serverproc import history_state
from support.waiting import wait_until

from linkis_kernel.client import EMBEDDED_NOTE

IPYTHON = Path(sys.executable).with_name("ipython")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def kernel(linkis_env: Any) -> Iterator[tuple[KernelManager, Any]]:
    """A python3 kernel with the extension loaded, connected by token to the server."""
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=30)
        reply = client.execute_interactive("%load_ext linkis_kernel", timeout=30)
        assert reply["content"]["status"] == "ok"
        yield manager, client
    finally:
        client.stop_channels()
        if manager.is_alive():
            manager.shutdown_kernel(now=True)


def iopub_until_idle(client: Any, msg_id: str, timeout: float = 30) -> list[dict[str, Any]]:
    messages = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = client.get_iopub_msg(timeout=deadline - time.monotonic())
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return messages
    raise AssertionError("the kernel did not go idle")


def panel_shown(client: Any) -> list[dict[str, Any]]:
    """Read iopub until the progress panel is displayed; returns what was read."""
    seen = [client.get_iopub_msg(timeout=20)]
    while not (
        seen[-1]["msg_type"] == "display_data" and WIDGET_VIEW in seen[-1]["content"]["data"]
    ):
        seen.append(client.get_iopub_msg(timeout=20))
    return seen


def cards_in(messages: list[dict[str, Any]]) -> list[str]:
    """The text of every job card shown: in place of the panel, or on its own."""
    return [
        msg["content"]["data"]["text/plain"]
        for msg in messages
        if msg["msg_type"] in ("display_data", "update_display_data")
        and "linkis-card" in msg["content"]["data"].get("text/html", "")
    ]


def test_interrupt_kills_the_job_and_aborts_the_cell(kernel: Any, linkis_server: Any) -> None:
    manager, client = kernel
    msg_id = client.execute("%%linkis -e shell\nsleep 30")
    seen = panel_shown(client)
    history = linkis_server.linkis_client()
    wait_until(  # the cell's job, the newest one, runs
        lambda: history.jobhistory_list(page_size=1).tasks[0].status == "Running",
        10,
        0.1,
        message="the cell's job never ran",
    )
    manager.interrupt_kernel()
    reply = client.get_shell_msg(timeout=20)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "JobInterrupted"
    messages = seen + iopub_until_idle(client, msg_id)
    cards = cards_in(messages)
    assert len(cards) == 1
    task_id = int(re.search(r"task (\d+) ·", cards[0]).group(1))
    report = f"Killed Linkis job {task_id}: Linkis confirms it Cancelled."
    assert "Killed" not in cards[0], "the kill report shows once, in the error output"
    errors = [m["content"] for m in messages if m["msg_type"] == "error"]
    assert [e["traceback"] for e in errors] == [[f"Interrupted. {report}"]]
    assert "Cancelled in" in cards[0]
    assert history_state(linkis_server.linkis_client(), task_id, {"Cancelled"}) == "Cancelled"


def test_interrupting_attach_leaves_a_foreign_job_running(kernel: Any, linkis_server: Any) -> None:
    manager, client = kernel
    owner = linkis_server.linkis_client()
    job = owner.submit("sleep 30", engine="shell")
    msg_id = client.execute(f"%linkis attach {job.task_id}")
    panel_shown(client)
    manager.interrupt_kernel()
    reply = client.get_shell_msg(timeout=20)
    assert reply["content"]["ename"] == "JobInterrupted"
    messages = iopub_until_idle(client, msg_id)
    cards = cards_in(messages)
    assert len(cards) == 1 and "keeps running" not in cards[-1]
    (error,) = [m["content"] for m in messages if m["msg_type"] == "error"]
    assert f"the job keeps running: `%linkis attach {job.task_id}`" in error["traceback"][0]
    assert owner.jobhistory_get(job.task_id).status == "Running"
    assert "Cancelled" in job.kill()


def test_kernel_shutdown_kills_running_jobs(kernel: Any, linkis_server: Any) -> None:
    manager, client = kernel
    outputs: list[dict[str, Any]] = []
    client.execute_interactive(
        "%%linkis --async --quiet -e shell\nsleep 30", timeout=30, output_hook=outputs.append
    )
    result = next(msg for msg in outputs if msg["msg_type"] == "execute_result")
    task_id = int(re.search(r"<Job task (\d+)", result["content"]["data"]["text/plain"]).group(1))
    assert history_state(linkis_server.linkis_client(), task_id, {"Running"}) == "Running"
    client.stop_channels()
    manager.shutdown_kernel(now=False)
    assert history_state(linkis_server.linkis_client(), task_id, {"Cancelled"}) == "Cancelled"


def test_terminal_ipython_prints_the_status_line_card_and_table(
    linkis_server: Any, tmp_path: Path
) -> None:
    # No LINKIS_URL: the extension finds the embedded server through the default data dir.
    data = tmp_path / "jupyter-data"
    data.mkdir()
    (data / "linkis-kernel").symlink_to(linkis_server.data_dir)
    env = {name: value for name, value in os.environ.items() if not name.startswith("LINKIS_")}
    env.update(JUPYTER_DATA_DIR=str(data), IPYTHONDIR=str(tmp_path / "ipython"))
    cell = "%%linkis\nselect product_id, name from demo.products order by product_id limit 3"
    done = subprocess.run(
        [
            str(IPYTHON),
            "--no-banner",
            "--colors=nocolor",
            "--InteractiveShellApp.exec_lines=['%load_ext linkis_kernel']",
            "-c",
            cell,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert EMBEDDED_NOTE.format(url=linkis_server.url) in out
    assert re.search(r"^\[linkis spark-3\.2\.1\] Succeed · [\d.]+s · task \d+$", out, re.M)
    assert re.search(r"^Linkis spark-3\.2\.1 \(sql\) · task \d+ · Succeed in", out, re.M)
    assert "Gadget 1" in out and "3 rows; complete" in out
    assert linkis_server.token not in out + done.stderr
    assert linkis_server.password not in out + done.stderr
