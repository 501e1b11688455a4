"""What a JupyterLab user sees, checked in a real browser: the live panel while a query runs, the
job card and table after it, the toolbar's interrupt button killing the job, and the Linkis SQL
kernel completing table names and running a plain SQL cell.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from tests.browser.conftest import LINKIS_SQL_KERNELSPEC, PYTHON_KERNELSPEC, App

# Several seconds of DuckDB work on two cores; each k in 0..6 pairs rows of equal residues.
SIDE = 70_000
GROUPED_QUERY = (
    "%%linkis\n"
    "select a.range % 7 as k, count(*) as pairs\n"
    f"from range({SIDE}) a, range({SIDE}) b\n"
    "where a.range % 7 = b.range % 11\n"
    "group by k order by k"
)
ENDLESS_QUERY = (
    "%%linkis\n"
    "select count(*) as pairs\n"
    "from range(1000000) a, range(1000000) b\n"
    "where a.range % 7 = b.range % 11"
)
RUN_TIMEOUT = 90.0
SAMPLE_INTERVAL = 0.25


def residues(n: int, modulus: int, k: int) -> int:
    """How many of 0..n-1 are k modulo `modulus`."""
    return len(range(k, n, modulus))


EXPECTED_PAIRS = [(k, residues(SIDE, 7, k) * residues(SIDE, 11, k)) for k in range(7)]


# Read in one go in the page: the panel may be replaced by the card between two reads.
SAMPLE_JS = """cell => {
    const step = cell.querySelector('.linkis-panel .linkis-state b[style]');
    const bar = cell.querySelector('.linkis-panel .linkis-bar .progress-bar');
    return {
        state: step ? step.innerText : null,
        width: bar ? parseFloat(bar.style.width || '0') : null,
        card: cell.querySelector('.linkis-card') !== null,
    };
}"""


@dataclass
class Sample:
    """What the cell shows at one moment: the panel's highlighted state step and bar width
    (None without a panel), and whether the job card is there."""

    state: str | None
    width: float | None
    card: bool


def sample(cell: Any) -> Sample:
    return Sample(**cell.evaluate(SAMPLE_JS))


def card_text(cell: Any, state: str, timeout: float = RUN_TIMEOUT) -> str:
    card = cell.locator(".linkis-card", has_text=state)
    card.wait_for(timeout=timeout * 1000)
    return card.inner_text()


def table_rows(cell: Any) -> list[list[str]]:
    rows = cell.locator(".jp-OutputArea-output table tbody tr")
    return [
        [text.replace(",", "") for text in row.locator("td").all_inner_texts()]
        for row in rows.all()
    ]


def assert_local_only_and_no_errors(app: App) -> None:
    """No request left 127.0.0.1 and the page logged no error."""
    assert app.outside_requests() == []
    assert app.console_errors == []


def test_magic_shows_a_live_panel_then_the_card_and_the_table(app: App) -> None:
    name = app.lab.write_notebook(
        "magic.ipynb", ["%load_ext linkis_kernel", GROUPED_QUERY], PYTHON_KERNELSPEC
    )
    panel = app.open(name)
    app.run_cell(panel, 0)
    app.wait_idle(panel)
    cell = app.run_cell(panel, 1)
    cell.locator(".linkis-panel").wait_for(state="visible", timeout=30_000)

    states: list[str | None] = []
    widths: list[float] = []
    shot_taken = False
    deadline = time.monotonic() + RUN_TIMEOUT
    while time.monotonic() < deadline:
        now = sample(cell)
        if now.card:
            break
        states.append(now.state)
        width = now.width
        if width is not None and now.state == "Running" and (not widths or width != widths[-1]):
            widths.append(width)
            if not shot_taken and width >= 25:
                app.screenshot(cell, "magic-1-panel-running")
                app.screenshot(app.page, "magic-1-lab-running")
                shot_taken = True
        time.sleep(SAMPLE_INTERVAL)
    assert "Running" in states, states
    assert len(widths) >= 3, f"the bar moved through {widths} only"
    assert widths == sorted(widths) and widths[-1] > widths[0]

    text = card_text(cell, "Succeed")
    assert re.search(r"Linkis spark-3\.2\.1 \(sql\) · task \d+ · Succeed in", text)
    app.wait_cell_done(cell)
    assert cell.locator(".linkis-panel").count() == 0
    assert table_rows(cell) == [[str(k), str(pairs)] for k, pairs in EXPECTED_PAIRS]
    app.screenshot(cell, "magic-2-result")
    app.screenshot(app.page, "magic-2-lab-result")
    assert_local_only_and_no_errors(app)


def test_toolbar_interrupt_kills_the_job(app: App, linkis_server: Any) -> None:
    name = app.lab.write_notebook(
        "interrupt.ipynb", ["%load_ext linkis_kernel", ENDLESS_QUERY], PYTHON_KERNELSPEC
    )
    panel = app.open(name)
    app.run_cell(panel, 0)
    app.wait_idle(panel)
    cell = app.run_cell(panel, 1)
    deadline = time.monotonic() + RUN_TIMEOUT
    while sample(cell).state != "Running":
        assert time.monotonic() < deadline, "the job never showed Running"
        time.sleep(SAMPLE_INTERVAL)
    app.screenshot(cell, "interrupt-1-running")
    panel.locator('.jp-Toolbar [data-command="notebook:interrupt-kernel"]').click()

    text = card_text(cell, "Cancelled", timeout=30)
    app.wait_cell_done(cell)
    app.screenshot(cell, "interrupt-2-cancelled")
    task_id = re.search(r"task (\d+) · Cancelled", text).group(1)
    answer = linkis_server.client.get(linkis_server.api(f"jobhistory/{task_id}/get"), timeout=10)
    task = answer.json()["data"]["task"]
    assert task["status"] == "Cancelled"
    assert_local_only_and_no_errors(app)


def test_linkis_sql_kernel_completes_table_names_and_runs_sql(app: App) -> None:
    assert app.lab.kernelspec_error is None, app.lab.kernelspec_error
    name = app.lab.write_notebook("kernel.ipynb", [""], LINKIS_SQL_KERNELSPEC)
    panel = app.open(name)
    cell = panel.locator(".jp-Cell").first
    editor = cell.locator(".cm-content")
    editor.click()
    app.page.keyboard.type("select * from demo.cust")
    app.page.keyboard.press("Tab")
    completer = app.page.locator(".jp-Completer:not(.lm-mod-hidden)")
    # One candidate is inserted at once; several are offered in the completer.
    app.page.wait_for_function(
        "() => document.querySelector('.jp-Completer:not(.lm-mod-hidden)') !== null"
        " || [...document.querySelectorAll('.jp-Cell .cm-content')]"
        ".some(e => e.innerText.includes('demo.customers'))",
        timeout=30_000,
    )
    app.screenshot(cell if not completer.is_visible() else app.page, "kernel-1-completion")
    if completer.is_visible():
        items = completer.locator(".jp-Completer-item").all_inner_texts()
        assert any("customers" in item for item in items), items
        completer.locator(".jp-Completer-item", has_text="customers").first.click()
    assert "select * from demo.customers" in editor.inner_text()

    app.page.keyboard.press("End")
    app.page.keyboard.type(" order by customer_id limit 3")
    app.page.keyboard.press("Control+Enter")
    card_text(cell, "Succeed")
    app.wait_cell_done(cell)
    rows = table_rows(cell)
    assert [row[:2] for row in rows] == [
        ["1", "Customer 0001"],
        ["2", "Customer 0002"],
        ["3", "Customer 0003"],
    ]
    app.screenshot(cell, "kernel-2-result")
    assert_local_only_and_no_errors(app)
