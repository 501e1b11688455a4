"""Notebooks on the Linkis PySpark kernel with engine sessions: cells that build on each other,
show(df) as a DataFrame, a plot as an image, an interrupt that keeps the engine, and
`%linkis engines` listing and freeing engines."""

from __future__ import annotations

import re
from typing import Any

import pytest
from support.jupyterenv import running_kernel
from support.serverproc import ServerProcess, history_state
from test_kernel_notebooks import execute, execute_until_running, notebook, reply_to, stdout, texts

from linkis_kernel.wire import CANCELLED, TERMINAL_STATES

NOTEBOOK = (
    "x = 41\ndef double(v):\n    return 2 * v",
    "print(double(x + 1) // 2)",
    "import pandas as pd\nshow(pd.DataFrame({'n': [1, 2, 3], 'name': ['a', 'b', None]}))",
    "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()",
    "df = spark.createDataFrame([(1, 'alice'), (2, 'bob')], ['id', 'who'])\nshow(df)",
    "printlog('a note for the log')\nprint('logged')",
    "%linkis engines",
    "%%local\nlisted = %linkis engines\n%linkis engines --kill {listed.engine[0]}",
    "%linkis engines --all",
    "print('x' in globals())",
)


def test_cells_share_an_engine_and_show_tables_and_figures() -> None:
    cells = execute(notebook("linkis_pyspark", *NOTEBOOK)).cells
    assert "42" in texts(cells[1]) + stdout(cells[1])
    assert "started engine" in texts(cells[0]) and "reused engine" in texts(cells[1])
    table = texts(cells[2])
    assert "<table" in table and "name" in table
    images = [o for o in cells[3].outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1 and len(images[0].data["image/png"]) > 1000
    assert "alice" in texts(cells[4]) and "bob" in texts(cells[4])
    assert "logged" in texts(cells[5]) + stdout(cells[5])
    listed = texts(cells[6], types=("execute_result",))
    assert "Unlock" in listed and "memory_mb" in listed
    assert stdout(cells[7]).startswith("Ended 1 engine(s): ")
    assert re.match(r"Ended \d+ engine\(s\)", stdout(cells[8]))  # whatever the user still had
    assert "False" in texts(cells[9]) + stdout(cells[9])
    assert "started engine" in texts(cells[9])


@pytest.fixture
def pyspark_kernel(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with running_kernel("linkis_pyspark", tmp_path_factory.mktemp("ipython")) as kernel:
        yield kernel


def test_an_interrupt_stops_the_statement_and_the_next_cell_still_works(
    pyspark_kernel: Any, linkis_server: ServerProcess
) -> None:
    km, kc = pyspark_kernel
    client = linkis_server.linkis_client()
    assert kc.execute_interactive("kept = 'state'", timeout=60)["content"]["status"] == "ok"
    msg_id, task_id = execute_until_running(kc, client, "import time\ntime.sleep(60)")
    km.interrupt_kernel()
    reply = reply_to(kc, msg_id, timeout=20)
    assert reply["content"]["ename"] == "JobInterrupted", "\n".join(reply["content"]["traceback"])
    assert history_state(client, task_id, TERMINAL_STATES, 10) == CANCELLED
    outputs: list[str] = []
    after = kc.execute_interactive(
        "print(kept)", timeout=60, output_hook=lambda msg: outputs.append(str(msg["content"]))
    )
    assert after["content"]["status"] == "ok"
    assert "state" in "".join(outputs)
