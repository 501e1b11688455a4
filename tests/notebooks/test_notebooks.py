"""The shipped notebooks run top to bottom, headless, as `make demo` runs them.

Each test runs `tools/run_notebook.py` in a subprocess: nbclient on a real kernel, the embedded
server that `%%linkis` starts by itself in a temporary Jupyter data dir. The printed text and the
saved notebook are checked for what a reader must see, and the server must be gone afterwards.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
import requests
from support.jupyterenv import install_linkis_kernelspecs

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
RUN_NOTEBOOK = REPO / "tools" / "run_notebook.py"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
RUN_TIMEOUT = 180
EMBEDDED_NOTE = re.compile(r"No LINKIS_URL set: using the embedded local Linkis at (http://\S+) ")


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    nb: nbformat.NotebookNode | None
    workdir: Path

    def server_url(self) -> str:
        match = EMBEDDED_NOTE.search(self.stdout)
        assert match, self.stdout
        return match.group(1)


Runs = dict[str, Future[Run]]


def run_notebook(path: Path, directory: Path, env: dict[str, str] | None = None) -> Run:
    """`tools/run_notebook.py` on `path`, saving the executed notebook under `directory`."""
    saved = directory / "executed.ipynb"
    workdir = directory / "work"
    workdir.mkdir()
    environment = {**os.environ, **(env or {})}
    # The tool must ignore a gateway configured in the caller's environment.
    environment["LINKIS_URL"] = "http://127.0.0.1:9"
    command = [sys.executable, str(RUN_NOTEBOOK), str(path), "--save", str(saved)]
    done = subprocess.run(
        [*command, "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        env=environment,
        cwd=REPO,
    )
    nb = nbformat.read(saved, as_version=4) if saved.exists() else None
    return Run(done.returncode, done.stdout, done.stderr, nb, workdir)


def notebook_file(directory: Path, name: str, kernel: str, sources: list[str]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": kernel, "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    path = directory / name
    nbformat.write(nb, path)
    return path


def install_kernelspecs(prefix: Path) -> dict[str, str]:
    """The Linkis kernelspecs under `prefix`; the environment that makes Jupyter find them."""
    error = install_linkis_kernelspecs(prefix)
    assert error is None, error
    return {"JUPYTER_PATH": str(prefix / "share" / "jupyter")}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """Every notebook run of this module, started at once: they mostly wait on kernels."""
    base = tmp_path_factory.mktemp("notebooks")
    failing = ["%load_ext linkis_kernel", "%%linkis\nselect * from demo.no_such_table"]
    kernels = install_kernelspecs(base / "prefix")
    planned = {
        "quickstart": (NOTEBOOKS / "quickstart.ipynb", None),
        "python-and-shell": (NOTEBOOKS / "python-and-shell.ipynb", None),
        "kernel-sql": (NOTEBOOKS / "kernel-sql.ipynb", kernels),
        # the course is about Spark: it runs on the real one (tests/conftest.py picks DuckDB's)
        "pyspark-course": (
            NOTEBOOKS / "pyspark-course.ipynb",
            {**kernels, "LINKIS_KERNEL_SPARK": "pyspark"},
        ),
        "failing": (
            notebook_file(base, "failing.ipynb", "python3", [*failing, "print('never runs')"]),
            None,
        ),
        "missing": (notebook_file(base, "missing.ipynb", "no_such_kernel", ["select 1"]), None),
    }
    with ThreadPoolExecutor(max_workers=len(planned)) as pool:
        futures = {}
        for name, (path, env) in planned.items():
            (base / name).mkdir()
            futures[name] = pool.submit(run_notebook, path, base / name, env)
        yield futures


def outputs_by_source(nb: nbformat.NotebookNode, fragment: str) -> list[dict]:
    cells = [cell for cell in nb.cells if cell.cell_type == "code" and fragment in cell.source]
    assert len(cells) == 1, f"expected one cell containing {fragment!r}"
    return cells[0].outputs


def plain_texts(outputs: list[dict]) -> list[str]:
    return [
        out["text"] if out["output_type"] == "stream" else out.get("data", {}).get("text/plain", "")
        for out in outputs
    ]


def assert_server_stopped(run: Run) -> None:
    """Nothing answers at the embedded server's URL any more."""
    with pytest.raises(requests.ConnectionError):
        requests.get(run.server_url(), timeout=2)


def test_quickstart_runs_and_shows_cards_tables_cancel_and_download(runs: Runs) -> None:
    run = runs["quickstart"].result()
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert out.count("No LINKIS_URL set: using the embedded local Linkis") == 1
    # the first SQL cell: a job card with its task id, then the table of 8 countries
    assert re.search(r"Out │ Linkis spark-3\.2\.1 \(sql\) · task 1 · Succeed in \d", out)
    assert "Out │   log: %linkis log 1" in out
    for country in ("BR", "CN", "DE", "FR", "GB", "IN", "JP", "US"):
        assert re.search(rf"Out │ \d+\s+{country}\s+125\s+\d+\.\d\d", out), country
    assert "Out │ 8 rows; complete" in out
    # the plot, the multi-result cell, the ${var} cell
    assert "Out │ [image]" in out
    assert "Out │ result 1 of 2" in out and "Out │ result 2 of 2" in out
    assert re.search(r"Out │ 0\s+store\s+193\s+841\.27\n  Out │ 1\s+mobile\s+192\s+840\.22", out)
    nb = run.nb
    assert nb is not None
    # no live widget is left in the saved notebook: every panel became a card
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert WIDGET_VIEW not in output.get("data", {}), cell.source
    # the long query: its panel became a Cancelled card; the kill was confirmed
    slow = plain_texts(outputs_by_source(nb, "--async -o slow"))
    assert any(re.match(r"Linkis spark-3\.2\.1 \(sql\) · task 5 · Cancelled", t) for t in slow)
    kill = plain_texts(outputs_by_source(nb, "%linkis kill"))
    assert kill == ["Killed Linkis job 5: Linkis confirms it Cancelled.\n"]
    history = plain_texts(outputs_by_source(nb, "%linkis jobs -n 8"))[0]
    assert re.search(r"0\s+5\s+Cancelled\s+spark", history)
    assert re.search(r"4\s+1\s+Succeed\s+spark", history)
    # the download: the result of task 4 as CSV, in a temporary folder the notebook removes
    assert re.search(r"Saved the result of Linkis job 4 to /\S+/big-orders-by-channel\.csv\.", out)
    for row in ("channel,orders,avg_amount", "store,193,841.27", "unknown,48,855.89"):
        assert f"Out │ {row}" in out
    assert not list(run.workdir.glob("*.csv")), "the quickstart leaves no file behind"
    assert_server_stopped(run)


def test_python_and_shell_notebook_runs_both_engines(runs: Runs) -> None:
    run = runs["python-and-shell"].result()
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert re.search(r"Out │ Linkis python-python2 \(python\) · task 1 · Succeed", out)
    started = re.search(r"Out │   started engine `([\d.:]+)`", out)
    assert started, out
    assert "Out │ median latency: 13.55" in out and "Out │ p90 latency: 55.0" in out
    # the next job reuses the engine and its variables and imports
    assert re.search(r"task 2 · Succeed.*\n.*reused engine `" + re.escape(started[1]), out)
    assert "Out │ slow requests: [55.0]" in out
    # show(df) comes back as a typed DataFrame, a figure as an image
    assert re.search(r"Out │ 3\s+3\s+55\.0\s+True", out)
    assert re.search(r"Out │ hour\s+Int64\n.*latency_ms\s+float64\n.*slow\s+boolean", out)
    assert re.search(r"task 4 · Succeed.*\n.*\n.*result 1 of 1: html\n.*\n  Out │ \[image\]", out)
    assert "Out │ 3 hello from the notebook" in out
    assert re.search(r"Out │ Linkis shell-1 \(shell\) · task 6 · Succeed", out)
    assert "Out │ pears 5\n  Out │ apples 3\n" in out
    assert "Out │ /tmp exists" in out
    # the engines table, then freeing them
    assert re.search(rf"Out │ 0\s+{re.escape(started[1])}\s+IDE\s+Unlock", out)
    assert f"Out │ Ended 1 engine(s): {started[1]}. The next job starts a new one." in out
    assert re.search(r"Out │ 0\s+7\s+Succeed\s+shell\s+shell", out)
    assert "Congratulations. Your job completed with status Success." in out
    assert_server_stopped(run)


def test_kernel_sql_notebook_runs_on_the_linkis_sql_kernel(runs: Runs) -> None:
    run = runs["kernel-sql"].result()
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert out.count("No LINKIS_URL set: using the embedded local Linkis") == 1
    assert re.search(r"Out │ Linkis spark-3\.2\.1 \(sql\) · task 1 · Succeed", out)
    assert re.search(r"Out │ 0\s+1\s+Customer 0001\s+US\s+2020-02-07\s+79\.19", out)
    assert re.search(r"Out │ 0\s+hardware\s+5000\s+2193350\.00", out)
    # %%local sees the DataFrame that -o bound in the kernel
    assert "Out │ hardware    0.509" in out
    assert re.search(r"Out │ 2\s+order_totals\s+VIEW", out)
    assert_server_stopped(run)


def test_pyspark_course_runs_on_a_real_spark_cell_after_cell(runs: Runs) -> None:
    run = runs["pyspark-course"].result()
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert re.search(r"Out │ Spark \d+\.\d+\.\d+ on local\[\*\] with \d+ cores", out)
    assert re.search(r"Out │ Linkis spark-3\.2\.1 \(py\) · task 1 · Succeed", out)
    assert re.search(r"Out │ 0\s+BR\s+125\s+2490\.53", out)  # spark.sql on the demo tables
    assert re.search(r"Out │ 0\s+hardware\s+5000\s+2193350\.00", out)  # the DataFrame API
    assert re.search(r"Out │ 0\s+hardware\s+0\.509", out)  # built on the cell before
    assert "Out │ [image]" in out
    assert re.search(r"Out │ 5\s+software\s+0\.172\s+rest", out)  # LATERAL VIEW
    assert_server_stopped(run)


def test_a_failing_cell_stops_the_run_short_and_still_stops_the_server(runs: Runs) -> None:
    run = runs["failing"].result()
    assert run.returncode == 1
    assert "a cell failed: see its output above." in run.stderr
    out = run.stdout
    assert "Out │ LinkisJobError: Linkis job 1 ended Failed" in out
    assert "no_such_table" in out
    assert "Traceback" not in out and "\x1b[" not in out
    assert "(1 more cell(s) not run)" in out and "never runs" not in out
    assert_server_stopped(run)


def test_a_notebook_on_a_missing_kernel_says_how_to_install_it(runs: Runs) -> None:
    run = runs["missing"].result()
    assert run.returncode == 1
    assert "kernel 'no_such_kernel' is not installed" in run.stderr
    assert "linkis-kernel install --sys-prefix" in run.stderr
    assert "Traceback" not in run.stderr


def test_every_shipped_notebook_names_its_kernel() -> None:
    # JupyterLab starts the kernel a notebook's metadata names when that kernelspec exists;
    # only without a name does it fall back to the language, which all Linkis kernels share
    # with python3 ("python", for papermill).
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        spec = nbformat.read(path, as_version=4).metadata.kernelspec
        assert spec["name"] in {"python3", "linkis_sql", "linkis_pyspark", "linkis_shell"}, path
