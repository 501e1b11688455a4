"""`%%linkis` and `%linkis` in real notebooks: nbclient on the python3 kernel, embedded server."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class RecordingClient(NotebookClient):
    """An nbclient that also keeps every iopub message, to see what showed during a run."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.messages: list[tuple[int, str, dict[str, Any]]] = []

    def process_message(self, msg: dict[str, Any], cell: Any, cell_index: int) -> Any:
        self.messages.append((cell_index, msg["msg_type"], copy.deepcopy(msg["content"])))
        return super().process_message(msg, cell, cell_index)

    def of_cell(self, index: int, msg_type: str) -> list[dict[str, Any]]:
        return [content for i, kind, content in self.messages if i == index and kind == msg_type]


def run_notebook(*sources: str, cwd: Path) -> tuple[Any, RecordingClient, Exception | None]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    client = RecordingClient(
        nb, kernel_name="python3", timeout=60, resources={"metadata": {"path": str(cwd)}}
    )
    try:
        client.execute()
    except CellExecutionError as error:
        return nb, client, error
    return nb, client, None


def stdout_of(cell: Any) -> str:
    """Everything the cell printed (the kernel may split it over several stream outputs)."""
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")


def data_of(output: dict[str, Any], mime: str = "text/html") -> str:
    return output.get("data", {}).get(mime, "")


def test_cells_run_on_linkis_end_to_end(linkis_env: Any, tmp_path: Path) -> None:
    download = tmp_path / "customers.csv"
    nb, client, error = run_notebook(
        "%load_ext linkis_kernel",
        # 1: a typed DataFrame, bound with -o
        "%%linkis -o customers\n"
        "select customer_id, name, signup_date, is_active, lifetime_value\n"
        "from demo.customers order by customer_id limit 5",
        "print(len(customers), customers.dtypes.astype(str).to_dict())",
        # 3: several result sets
        "%%linkis\nselect 1 as a;\nselect 'two' as b, 2.5 as c",
        # 4, 5: ${var} from Python, quoted for SQL
        'country = "D\'E"\nmin_id = 10',
        "%%linkis -o found\nselect ${country} as c, count(*) as n from demo.customers\n"
        "where customer_id > ${min_id}",
        "print(found.c[0], int(found.n[0]))",
        # 7: the fetch limit and the display limit in the footer
        "%%linkis --limit 100\nselect * from demo.orders",
        # 8, 9: --async binds the Job at once; attach follows it and shows its result
        "%%linkis --async -o job -e shell\nsleep 1; echo finished-async",
        "print(type(job).__name__, job.done)\n%linkis attach {job.task_id}",
        "%linkis jobs -n 3",
        "%linkis log {job.task_id} --tail 3",
        "first = get_ipython().magics_manager.registry['LinkisMagics'].jobs[0].task_id\n"
        f"%linkis download {{first}} {download} --format csv",
        "%linkis kill {job.task_id}",
        # 14: a failing query stops the notebook
        "%%linkis\nselect * from demo.no_such_table",
        "print('still running')",
        cwd=tmp_path,
    )
    cells = nb.cells
    assert error is not None and "LinkisJobError" in str(error)

    # 1: a widget panel while running, the job card in its place afterwards, then the table
    shown = client.of_cell(1, "display_data")
    assert any(WIDGET_VIEW in output["data"] for output in shown)
    updates = client.of_cell(1, "update_display_data")
    card = updates[-1]["data"]
    assert "Succeed" in card["text/html"] and "linkis-card" in card["text/html"]
    assert "%linkis log" in card["text/plain"]
    outputs = cells[1].outputs
    assert not any(WIDGET_VIEW in output.get("data", {}) for output in outputs)
    assert [output.output_type for output in outputs] == ["display_data", "execute_result"]
    task_id = re.search(r"task (\d+) ·", card["text/plain"]).group(1)
    assert re.search(rf'<code title="exec id [^"]+">{task_id}</code>', data_of(outputs[0]))
    table = data_of(outputs[1])
    assert "Customer 0001" in table and "5 rows; complete" in table
    assert stdout_of(cells[2]) == (
        "5 {'customer_id': 'Int32', 'name': 'string', 'signup_date': 'datetime64[us]', "
        "'is_active': 'boolean', 'lifetime_value': 'object'}\n"
    )

    # 3: result 1 of 2 displayed above, result 2 of 2 is the cell's value
    kinds = [output.output_type for output in cells[3].outputs]
    assert kinds == ["display_data", "display_data", "execute_result"]
    assert "result 1 of 2" in data_of(cells[3].outputs[1])
    assert "result 2 of 2" in data_of(cells[3].outputs[2]) and "two" in data_of(cells[3].outputs[2])

    assert stdout_of(cells[6]) == "D'E 990\n"

    footer = data_of(cells[7].outputs[-1])
    assert "showing 50 of 100 rows fetched" in footer
    assert "fetch limit 100 (--limit); more rows exist" in footer
    assert "100 rows fetched; fetch limit 100 (--limit)" in data_of(
        cells[7].outputs[0], "text/plain"
    )

    # bound with -o: the cell has no value (no stale Job repr under the panel)
    assert "execute_result" not in [output.output_type for output in cells[8].outputs]
    attach = cells[9].outputs
    assert stdout_of(cells[9]).startswith("Job False")
    assert any("finished-async" in data_of(output) for output in attach)
    assert any("Succeed" in data_of(output) for output in attach)

    history = data_of(cells[10].outputs[-1])
    assert "Succeed" in history and "sleep 1; echo finished-async" in history
    log_lines = stdout_of(cells[11]).splitlines()
    assert len(log_lines) == 3 and "completed" in log_lines[-1]
    assert download.read_text().startswith("customer_id")
    assert "already finished (Succeed)" in stdout_of(cells[13])

    # 14: one error output, short; the next cell never ran
    failing = cells[14].outputs
    errors = [output for output in failing if output.output_type == "error"]
    assert len(errors) == 1 and errors[0].ename == "LinkisJobError"
    assert len(errors[0].traceback) <= 10
    assert any("--level error" in line or "%linkis log" in line for line in errors[0].traceback)
    assert not any(output.output_type == "stream" and output.name == "stderr" for output in failing)
    assert any("Failed" in data_of(output) for output in failing)
    assert cells[15].get("execution_count") is None and not cells[15].outputs

    # the saved notebook holds no widget state of ours and no secrets
    saved = nbformat.writes(nb)
    assert "FloatProgressModel" not in saved
    everything = saved + json.dumps([content for _, _, content in client.messages])
    assert linkis_env.token not in everything and linkis_env.password not in everything
