"""The PySpark course in JupyterLab, as a course user runs it: notebooks/pyspark-course.ipynb on
the Linkis PySpark kernel against a server whose engine spark is a real local Spark. Its cells run
in order and build on each other; while the big job runs, the live panel's stage table lists
Spark's stages and their task counts move; the cell ends with the job card and the table.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.serverproc import GUEST, ServerProcess, start_server

from tests.browser.conftest import App, lab_in_chromium, running_lab

REPO = Path(__file__).resolve().parents[2]
COURSE = REPO / "notebooks" / "pyspark-course.ipynb"
REAL_SPARK = {"LINKIS_KERNEL_SPARK": "pyspark"}
CELL_TIMEOUT = 60.0
SAMPLE_INTERVAL = 0.2
STAGE_ID = re.compile(r"jobId_\d+_stage_\d+")

# Read in one go in the page: the panel may be replaced by the card between two reads.
STAGES_JS = """cell => {
    const rows = cell.querySelectorAll('.linkis-panel table.linkis-stages tr');
    return {
        panel: cell.querySelector('.linkis-panel') !== null,
        card: cell.querySelector('.linkis-card') !== null,
        stages: [...rows].filter(row => row.querySelector('td'))
            .map(row => [...row.querySelectorAll('td')].map(td => td.innerText)),
    };
}"""


@pytest.fixture(scope="module")
def spark_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """JupyterLab in Chromium, its kernels on a Linkis server running a real local Spark."""
    assert shutil.which("java"), (
        "the real Spark needs Java: make java (apt openjdk-17-jre-headless)"
    )
    server: ServerProcess = start_server(
        tmp_path_factory.mktemp("spark-linkis"), env=REAL_SPARK, users=[GUEST]
    )
    lab_dir = tmp_path_factory.mktemp("spark-lab")
    try:
        with running_lab(lab_dir, server, REAL_SPARK) as lab, lab_in_chromium(lab) as app:
            yield app
    finally:
        server.stop()


def code_cells(panel: Any) -> list[Any]:
    cells = panel.locator(".jp-Cell")
    return [cells.nth(i) for i in range(cells.count()) if "jp-CodeCell" in classes(cells.nth(i))]


def classes(cell: Any) -> str:
    return cell.get_attribute("class") or ""


def run_code_cell(app: App, cell: Any) -> None:
    cell.locator(".cm-content").click()
    app.page.keyboard.press("Control+Enter")


def finished_card(app: App, cell: Any) -> str:
    """The job card's text once the cell is done; the panel is gone by then."""
    card = cell.locator(".linkis-card", has_text="Succeed")
    card.wait_for(timeout=CELL_TIMEOUT * 1000)
    app.wait_cell_done(cell, CELL_TIMEOUT)
    assert cell.locator(".linkis-panel").count() == 0
    return card.inner_text()


def table_rows(cell: Any) -> list[list[str]]:
    rows = cell.locator(".jp-OutputArea-output table tbody tr")
    return [row.locator("th, td").all_inner_texts() for row in rows.all()]


def watch_stages(app: App, cell: Any, shot: Path) -> list[list[list[str]]]:
    """Every distinct stage table the panel shows until the card replaces it; screenshots the
    cell once some tasks have succeeded while others still run."""
    snapshots: list[list[list[str]]] = []
    deadline = time.monotonic() + CELL_TIMEOUT
    while time.monotonic() < deadline:
        now = cell.evaluate(STAGES_JS)
        if now["card"]:
            break
        stages = now["stages"]
        if stages and (not snapshots or stages != snapshots[-1]):
            snapshots.append(stages)
            mid_run = any(int(s[1]) > 0 for s in stages) and any(int(s[2]) > 0 for s in stages)
            if mid_run and not shot.exists():
                cell.screenshot(path=str(shot))
        time.sleep(SAMPLE_INTERVAL)
    return snapshots


def test_pyspark_course_runs_in_lab_with_spark_stages_moving_in_the_panel(
    spark_app: App, tmp_path: Path
) -> None:
    app = spark_app
    assert app.lab.kernelspec_error is None, app.lab.kernelspec_error
    shutil.copy(COURSE, app.lab.root / COURSE.name)
    panel = app.open(COURSE.name)
    kernel = app.page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.name"
    )
    assert kernel == "linkis_pyspark"
    first, by_country, revenue, shares, plot, view, digits = code_cells(panel)

    run_code_cell(app, first)
    assert re.search(r"Linkis spark-3\.2\.1 \(py\) · task \d+ · Succeed", finished_card(app, first))
    assert re.search(r"Spark \d+\.\d+\.\d+ on local\[\*\] with \d+ cores", first.inner_text())

    run_code_cell(app, by_country)
    finished_card(app, by_country)
    assert table_rows(by_country)[0] == ["0", "BR", "125", "2490.53"]

    run_code_cell(app, revenue)
    finished_card(app, revenue)
    assert table_rows(revenue)[0] == ["0", "hardware", "5000", "2193350.00"]

    # `revenue` and `F` live on in the engine from the cell before
    run_code_cell(app, shares)
    finished_card(app, shares)
    assert table_rows(shares)[0] == ["0", "hardware", "0.509"]

    run_code_cell(app, plot)
    finished_card(app, plot)
    assert plot.locator(".jp-OutputArea-output img").count() == 1

    run_code_cell(app, view)
    finished_card(app, view)
    assert ["5", "software", "0.172", "rest"] in table_rows(view)

    shot = tmp_path / "spark-stages-mid-run.png"
    run_code_cell(app, digits)
    digits.locator(".linkis-panel").wait_for(state="visible", timeout=CELL_TIMEOUT * 1000)
    snapshots = watch_stages(app, digits, shot)
    assert len(snapshots) >= 2, f"the stage table never changed: {snapshots}"
    stage_ids = {stage[0] for snapshot in snapshots for stage in snapshot}
    assert all(STAGE_ID.fullmatch(stage_id) for stage_id in stage_ids), stage_ids
    assert any(stage[4] == "16" for snapshot in snapshots for stage in snapshot), snapshots
    assert shot.exists(), f"no snapshot had tasks both running and succeeded: {snapshots}"

    assert "Succeed" in finished_card(app, digits)
    rows = table_rows(digits)
    assert [row[1] for row in rows] == list("0123456789abcdef")
    assert sum(int(row[2].replace(",", "")) for row in rows) == 30_000_000
    assert app.outside_requests() == []
    assert app.console_errors == []
