"""Whole notebooks on each Linkis kernelspec (nbclient, papermill), interrupt and shutdown
kills, against the session's embedded server."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook
from support.bodies import LONG_SQL
from support.jupyterenv import running_kernel
from support.serverproc import ServerProcess, history_state
from support.waiting import wait_until

from linkis_kernel.job import LinkisClient
from linkis_kernel.kernel import LANGUAGE_INFO
from linkis_kernel.magics.magic import SHUTDOWN_KILL_WAIT
from linkis_kernel.wire import CANCELLED, DEFAULT_ENGINE_VERSIONS, TERMINAL_STATES

KILL_SECONDS = 10.0

DISPLAY_NAMES = {
    "linkis_sql": ("Linkis SQL", "sql"),
    "linkis_pyspark": ("Linkis PySpark", "python"),
    "linkis_shell": ("Linkis Shell", "shell"),
}


def notebook(kernel_name: str, *sources: str) -> nbformat.NotebookNode:
    """A notebook as JupyterLab saves it for `kernel_name`."""
    display_name, language = DISPLAY_NAMES[kernel_name]
    nb = new_notebook(cells=[new_code_cell(source) for source in sources])
    nb.metadata["kernelspec"] = {
        "name": kernel_name,
        "display_name": display_name,
        "language": "python",
    }
    nb.metadata["language_info"] = dict(LANGUAGE_INFO[language])
    return nb


def execute(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    NotebookClient(nb, timeout=60, kernel_name=nb.metadata["kernelspec"]["name"]).execute()
    return nb


def texts(cell: Any, *, types: tuple[str, ...] = ("display_data", "execute_result")) -> str:
    """The text/plain and text/html of a cell's rich outputs of these types."""
    parts = []
    for output in cell.outputs:
        if output.output_type in types:
            parts += [output.data.get("text/plain", ""), output.data.get("text/html", "")]
    return "\n".join(parts)


def stdout(cell: Any) -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream")


def execute_result(cell: Any) -> Any:
    results = [o for o in cell.outputs if o.output_type == "execute_result"]
    assert len(results) == 1, cell.outputs
    return results[0]


def test_sql_notebook_returns_tables_and_binds_results_for_local_cells() -> None:
    nb = execute(
        notebook(
            "linkis_sql",
            "select customer_id, name from demo.customers order by customer_id limit 3;",
            "%%linkis -o two --quiet\nselect 2 as n",
            "%%local\nprint('local:', int(two.n[0]) * 21)",
            "   \n",
            '%config LinkisMagics.engine = "shell"',
            "echo now on $((6 * 7))",
        )
    )
    table, bound, local, empty, _, shell = nb.cells
    assert nb.metadata.language_info.codemirror_mode == "sql"
    html = execute_result(table).data["text/html"]
    assert "<table" in html and "Customer 0001" in html and "Customer 0003" in html
    assert "Customer 0004" not in html
    assert "Succeed" in texts(table, types=("display_data",))  # the job card
    assert "<table" in execute_result(bound).data["text/html"]
    assert stdout(local) == "local: 42\n"
    assert empty.outputs == []
    assert "now on 42" in texts(shell)


def test_pyspark_notebook_runs_python_on_linkis() -> None:
    nb = execute(notebook("linkis_pyspark", "print('hello from ' + 'pyspark')"))
    (cell,) = nb.cells
    assert "hello from pyspark" in texts(cell)
    assert "hello from pyspark" not in stdout(cell)  # a Linkis result, not a local print
    assert f"spark-{DEFAULT_ENGINE_VERSIONS['spark']} (py)" in texts(cell, types=("display_data",))


def test_shell_notebook_runs_shell_on_linkis() -> None:
    nb = execute(notebook("linkis_shell", "echo hello from $((6 * 7))"))
    (cell,) = nb.cells
    assert "hello from 42" in texts(cell)
    assert "hello from 42" not in stdout(cell)
    assert f"shell-{DEFAULT_ENGINE_VERSIONS['shell']} (shell)" in texts(
        cell, types=("display_data",)
    )


def test_papermill_parameters_reach_sql_variables(tmp_path: Path) -> None:
    nb = notebook(
        "linkis_sql",
        "%%local\nmax_id = 3",
        "select count(*) as n from demo.customers where customer_id <= ${max_id}",
    )
    nb.cells[0].metadata["tags"] = ["parameters"]
    source, target = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, source)
    papermill.execute_notebook(
        str(source),
        str(target),
        parameters={"max_id": 7},
        kernel_name="linkis_sql",
        progress_bar=False,
        execution_timeout=60,
    )
    ran = nbformat.read(target, as_version=4)
    injected = ran.cells[1]
    assert "injected-parameters" in injected.metadata["tags"]
    assert injected.outputs == []  # ran locally: no job card, no result
    html = execute_result(ran.cells[2]).data["text/html"]
    assert "<td>7</td>" in html and "<td>3</td>" not in html


def latest_task_id(client: LinkisClient) -> int:
    tasks = client.jobhistory_list(page_size=1).tasks
    return tasks[0].task_id if tasks else 0


def execute_until_running(kc: Any, client: LinkisClient, code: str) -> tuple[str, int]:
    """Send `code` to the kernel; its message id and the task id of the job it submitted, once
    that job is Running."""
    before = latest_task_id(client)
    msg_id = kc.execute(code)
    task_id = wait_until(
        lambda: (latest := latest_task_id(client)) > before and latest,
        15,
        0.2,
        message="the cell did not submit a job",
    )
    assert history_state(client, task_id, {"Running"}, 10) == "Running"
    return msg_id, task_id


def reply_to(kc: Any, msg_id: str, timeout: float) -> dict:
    """The shell reply to `msg_id` (skipping the kernel_info reply of the start-up)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == msg_id:
            return reply


@pytest.fixture(scope="module")
def sql_kernel(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One Linkis SQL kernel shared by this module's tests, with its own IPython history."""
    with running_kernel("linkis_sql", tmp_path_factory.mktemp("ipython")) as kernel:
        yield kernel


def test_interrupt_kills_the_running_job(sql_kernel: Any, linkis_server: ServerProcess) -> None:
    km, kc = sql_kernel
    client = linkis_server.linkis_client()
    msg_id, task_id = execute_until_running(kc, client, LONG_SQL)
    km.interrupt_kernel()
    reply = reply_to(kc, msg_id, timeout=20)
    assert reply["content"]["status"] == "error"
    assert reply["content"]["ename"] == "JobInterrupted", "\n".join(reply["content"]["traceback"])
    assert history_state(client, task_id, TERMINAL_STATES, KILL_SECONDS) == CANCELLED


def start_background_job(kc: Any, client: LinkisClient) -> int:
    """Start a minute-long shell job with `--async`; returns its task id once it runs."""
    reply = kc.execute_interactive("%%linkis --async -e shell --quiet\nsleep 60", timeout=30)
    assert reply["content"]["status"] == "ok"
    task_id = latest_task_id(client)
    assert history_state(client, task_id, {"Running"}, 10) == "Running"
    return task_id


def test_restart_and_shutdown_kill_jobs_started_by_the_kernel_unless_configured_not_to(
    linkis_server: ServerProcess, tmp_path: Path
) -> None:
    client = linkis_server.linkis_client()
    km = KernelManager(kernel_name="linkis_sql")
    # jupyter_client sends SIGTERM after half of this: time enough for the kernel to wait out
    # each kill's confirmation and log it.
    km.shutdown_wait_time = SHUTDOWN_KILL_WAIT + 20
    log_path = tmp_path / "kernel.log"
    with open(log_path, "wb") as log:
        km.start_kernel(extra_arguments=["--IPKernelApp.log_level=INFO"], stderr=log)
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=30)
            before_restart = start_background_job(kc, client)
            km.restart_kernel()
            kc.wait_for_ready(timeout=30)
            state = history_state(client, before_restart, TERMINAL_STATES, KILL_SECONDS)
            assert state == CANCELLED
            kc.execute_interactive("%config LinkisMagics.kill_on_shutdown = False", timeout=10)
            kept = start_background_job(kc, client)
            km.restart_kernel()
            kc.wait_for_ready(timeout=30)
            assert client.jobhistory_get(kept).status == "Running"
            client.job(kept).kill()
            before_shutdown = start_background_job(kc, client)
        finally:
            kc.stop_channels()
            km.shutdown_kernel()
    assert history_state(client, before_shutdown, TERMINAL_STATES, KILL_SECONDS) == CANCELLED
    log_text = log_path.read_text()
    assert re.search(kill_line("restart", before_restart), log_text), log_text
    assert "Leaving 1 Linkis job(s) running (LinkisMagics.kill_on_shutdown is off)" in log_text
    assert not re.search(kill_line(".*", kept), log_text), log_text
    assert re.search(kill_line("shutdown", before_shutdown), log_text), log_text


def kill_line(when: str, task_id: int) -> str:
    """A pattern for the kernel's log line on killing `task_id` at `when` (restart, shutdown):
    confirmed, or only requested if Linkis was slower than the kernel's wait."""
    return rf"Kernel {when}: (Killed|Kill requested for) Linkis job {task_id}\b"


def test_history_keeps_cells_as_typed(sql_kernel: Any) -> None:
    _, kc = sql_kernel
    cells = ["select 1 as one;", "%%local\nx = 1\n%linkis refresh", "%linkis refresh", "  \n"]
    for code in cells:
        assert kc.execute_interactive(code, timeout=30)["content"]["status"] == "ok"
    kc.history(hist_access_type="tail", n=4, raw=True, output=False)
    history = kc.get_shell_msg(timeout=10)["content"]["history"]
    assert [entry[2] for entry in history][-3:] == cells[:3]
    banner = reply_to(kc, kc.kernel_info(), timeout=10)["content"]["banner"]
    assert "plain cells run on Linkis (spark, sql)" in banner and "%%local" in banner


def test_a_failed_job_fails_the_cell_with_one_short_error(sql_kernel: Any) -> None:
    _, kc = sql_kernel
    errors: list[dict] = []

    def keep_errors(msg: dict) -> None:
        if msg["msg_type"] == "error":
            errors.append(msg["content"])

    reply = kc.execute_interactive(
        "select * from demo.no_such_table", timeout=30, output_hook=keep_errors
    )
    assert reply["content"]["status"] == "error"
    assert len(errors) == 1
    assert errors[0]["ename"] == "LinkisJobError"
    assert "no_such_table" in "\n".join(errors[0]["traceback"])


def test_silent_requests_run_locally(sql_kernel: Any) -> None:
    _, kc = sql_kernel
    reply = kc.execute_interactive("silent_value = 6 * 7", silent=True, timeout=30)
    assert reply["content"]["status"] == "ok"
    lines: list[str] = []
    kc.execute_interactive(
        "%%local\nprint(silent_value)",
        timeout=30,
        output_hook=lambda msg: lines.append(msg["content"].get("text", "")),
    )
    assert "".join(lines) == "42\n"


def test_linkis_refresh_clears_the_completion_cache() -> None:
    cache = "get_ipython().kernel.metadata_cache"
    nb = execute(
        notebook(
            "linkis_sql",
            f"%%local\n{cache}.tables('demo')\nprint(sorted({cache}._tables))",
            "%linkis refresh",
            f"%%local\nprint(sorted({cache}._tables))",
        )
    )
    filled, refresh, emptied = nb.cells
    assert stdout(filled) == "['demo']\n"
    assert "Forgot the cached Linkis metadata" in stdout(refresh)
    assert stdout(emptied) == "[]\n"
