"""The live panel and the text status line, driven by constructed snapshots."""

from __future__ import annotations

import io
import threading

import pytest
from support.waiting import wait_until

from linkis_kernel.client import ATTACH, PYTHON_COMMANDS, NextStep
from linkis_kernel.client.models import ResourceUsage, StageProgress
from linkis_kernel.display import RunDisplay, choose_progress_mode
from linkis_kernel.display.panel import ProgressPanel
from linkis_kernel.display.text import TextProgress
from linkis_kernel.job import Snapshot
from linkis_kernel.job.snapshot import empty_log
from linkis_kernel.wire import TERMINAL_STATES


class Clock:
    """A hand-moved monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def snap(state: str = "Running", progress: float = 0.0, **fields) -> Snapshot:
    values = dict(
        exec_id="exec_id018030linkis-cg-entrance127.0.0.1:9104IDE_alice_spark_0",
        task_id=42,
        state=state,
        progress=progress,
        stages=(),
        resources=None,
        queue_position=None,
        new_log={},
        elapsed=1.5,
        final=state in TERMINAL_STATES,
        warning=None,
    )
    values.update(fields)
    return Snapshot(**values)


def test_bar_is_monotonic_and_full_only_when_succeeded() -> None:
    clock = Clock()
    panel = ProgressPanel("spark", clock=clock)
    seen = []
    for progress in (0.2, 0.5, 0.3, 1.0, 1.7):
        clock.now += 1
        panel.update(snap(progress=progress))
        seen.append(panel.bar.value)
    assert seen == [0.2, 0.5, 0.5, 0.99, 0.99]
    assert panel.bar.bar_style == "info"
    clock.now += 1
    panel.update(snap("Succeed", progress=0.99))
    assert panel.bar.value == 1.0
    assert panel.bar.bar_style == "success"
    assert panel.percent.value == "100%"


@pytest.mark.parametrize(("state", "style"), [("Failed", "danger"), ("Cancelled", "warning")])
def test_bar_style_and_value_at_an_unsuccessful_end(state: str, style: str) -> None:
    panel = ProgressPanel("hive", clock=Clock())
    panel.update(snap(progress=0.4))
    panel.update(snap(state, progress=0.4))
    assert panel.bar.bar_style == style
    assert panel.bar.value == pytest.approx(0.4)


def test_state_steps_queue_position_and_ids() -> None:
    clock = Clock()
    panel = ProgressPanel("spark", clock=clock)
    panel.update(snap("Scheduled", queue_position=3))
    assert "<b" in panel.state.value and ">Scheduled</b>" in panel.state.value
    assert '<span style="color:#999">Running</span>' in panel.state.value
    assert 'task <code title="exec id exec_id018030' in panel.state.value
    assert panel.state.value.count("exec_id018030") == 1, "the exec id is only a tooltip"
    assert panel.queue.value == "3 job(s) ahead in the queue"
    clock.now += 1
    panel.update(snap("Running", progress=0.1, queue_position=None))
    assert ">Running</b>" in panel.state.value
    assert panel.queue.value == ""
    assert "linkis-state" in panel.state._dom_classes
    assert "linkis-bar" in panel.bar._dom_classes
    assert "linkis-panel" in panel.widget._dom_classes


def test_stage_table_and_resources() -> None:
    panel = ProgressPanel("spark", clock=Clock())
    stages = (StageProgress("stage-1", 8, 1, 2, 11), StageProgress("stage-2", 0, 0, 0, 4))
    usage = ResourceUsage(0.25, 0.8, "green", "red", [{"applicationId": "application_1"}])
    panel.update(snap(stages=stages, resources=usage))
    assert "<td>stage-1</td><td>2</td><td>8</td><td>1</td><td>11</td>" in panel.stages.value
    assert "<td>stage-2</td>" in panel.stages.value
    assert 'memory <b style="color:#2e7d32">25%</b>' in panel.resources.value
    assert 'cores <b style="color:#c62828">80%</b>' in panel.resources.value
    assert "1 YARN application(s)" in panel.resources.value
    assert panel.resources.value.startswith('<span class="linkis-resources">queue use: ')
    local = ResourceUsage(0.1, 0.2, "green", "green", [{"applicationId": "local_4242"}])
    embedded = ProgressPanel("spark", clock=Clock())
    embedded.update(snap(stages=(), resources=local))
    assert "YARN" not in embedded.resources.value and "queue" not in embedded.resources.value
    assert "local process use: memory" in embedded.resources.value
    assert embedded.stages.value == ""


def test_log_tabs_collect_every_snapshot_and_open_error_on_failure() -> None:
    clock = Clock()
    panel = ProgressPanel("spark", clock=clock, tail=3)
    for n in range(5):
        line = f"INFO line {n} <b>"
        panel.update(snap(new_log={"info": [line], "all": [line]}))
    panel.update(snap(new_log={"error": ["ERROR boom <x>"], "all": ["ERROR boom <x>"]}))
    assert panel.log_box.selected_index is None
    assert panel.log_tabs.selected_index == 0
    clock.now += 1
    panel.update(snap("Failed", progress=0.3))
    info = panel.log_views["info"].value
    assert "line 0" not in info and "INFO line 2 &lt;b&gt;" in info and "line 4" in info
    assert "ERROR boom &lt;x&gt;" in panel.log_views["error"].value
    assert "<x>" not in panel.log_views["all"].value
    assert panel.log_tabs.titles == ("All", "Error", "Warn", "Info")
    assert panel.log_tabs.selected_index == 1
    assert panel.log_box.selected_index == 0


def test_many_snapshots_make_few_widget_updates() -> None:
    clock = Clock()
    panel = ProgressPanel("spark", clock=clock)
    changes: list[float] = []
    panel.bar.observe(lambda change: changes.append(change["new"]), names="value")
    for step in range(200):
        clock.now += 0.01  # 200 snapshots over 2 seconds
        panel.update(snap(progress=step / 200, new_log={"all": [f"line {step}"]}))
    panel.update(snap("Succeed", progress=1.0))
    assert panel.renders <= 10
    assert len(changes) <= 10
    assert changes[-1] == 1.0
    assert "line 199" in panel.log_views["all"].value


def test_a_held_back_snapshot_is_shown_when_the_interval_is_over() -> None:
    panel = ProgressPanel("spark", min_interval=0.05, clock=Clock())  # the clock stands still
    shown: list[tuple[float, threading.Thread]] = []
    panel.bar.observe(
        lambda change: shown.append((change["new"], threading.current_thread())), names="value"
    )
    panel.update(snap(progress=0.1))
    panel.update(snap(progress=0.5))  # held back: the job may then stay quiet for minutes
    wait_until(lambda: panel.bar.value >= 0.5, 5, message="the held-back snapshot never showed")
    assert [value for value, _ in shown] == pytest.approx([0.1, 0.5])
    main = threading.main_thread()
    assert shown[0][1] is main  # rendered by its update...
    assert shown[1][1] is not main  # ...but this one by the timer, once the interval was over
    assert panel.renders == 2


def test_stale_warning_is_shown_escaped() -> None:
    panel = ProgressPanel("spark", clock=Clock())
    panel.update(snap(warning="no change for 10 min; job <42> still Running"))
    assert "job &lt;42&gt; still Running" in panel.warning.value


NOTEBOOK = {**PYTHON_COMMANDS, ATTACH: "%linkis attach {ref}"}
STALE = {
    "warning": "Linkis job 42 is still Running with no change for 600 s",
    "next_steps": (NextStep(ATTACH, 42, "to attach to it later"),),
}


def test_stale_warning_next_steps_are_phrased_in_the_front_end_commands() -> None:
    panel = ProgressPanel("spark", clock=Clock(), commands=NOTEBOOK)
    panel.update(snap(**STALE))
    assert "Run `%linkis attach 42` to attach to it later." in panel.warning.value
    out = io.StringIO()
    TextProgress("spark", out, tty=False).update(snap(**STALE))
    assert "Run `client.job(42)` to attach to it later." in out.getvalue()


def test_text_progress_can_show_the_log_above_its_status_line() -> None:
    out = io.StringIO()
    text = TextProgress("shell", out, tty=True, clock=Clock(), show_log=True)
    text.update(snap("Running", progress=0.1))
    text.update(snap("Running", progress=0.2, new_log={**empty_log(), "all": ["INFO one"]}))
    text.finish()
    before, log_line, after = out.getvalue().rpartition("INFO one\n")
    assert log_line and before.endswith("\r"), "the status line is blanked before the log line"
    assert after.startswith("\r[linkis shell] Running 20%") and after.endswith("task 42\n")


def test_close_closes_every_widget() -> None:
    panel = ProgressPanel("spark", clock=Clock())
    widgets = list(panel.widgets())
    assert (
        panel.bar in widgets and panel.log_views["warn"] in widgets and panel.bar.layout in widgets
    )
    panel.close()
    assert all(widget.comm is None for widget in widgets)


def test_text_progress_writes_one_line_per_change_when_not_a_tty() -> None:
    out = io.StringIO()
    text = TextProgress("spark", out, tty=False)
    text.update(snap("Inited"))
    text.update(snap("Scheduled", queue_position=2))
    text.update(snap("Scheduled", queue_position=2))
    text.update(snap("Running", progress=0.5))
    text.update(snap("Running", progress=0.6))
    text.update(snap("Succeed", progress=1.0))
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[1].startswith("[linkis spark] Scheduled 0%")
    assert "2 job(s) ahead in the queue" in lines[1]
    assert lines[2].startswith("[linkis spark] Running 50%")
    assert lines[3].startswith("[linkis spark] Succeed") and "task 42" in lines[3]


def test_text_progress_rewrites_its_line_on_a_tty() -> None:
    out = io.StringIO()
    clock = Clock()
    text = TextProgress("hive", out, tty=True, clock=clock)
    text.update(snap("Scheduled", queue_position=1))
    text.update(snap("Running", progress=0.1, stages=(StageProgress("1", 1, 0, 1, 2),)))
    text.update(snap("Running", progress=0.2))  # throttled
    clock.now += 1
    text.update(snap("Succeed", progress=1.0))
    text.finish()
    written = out.getvalue()
    assert written.count("\r") == 3
    assert "stages 0/1" in written and "20%" not in written
    assert written.endswith("\n")


def test_auto_progress_picks_widgets_in_a_kernel_and_text_elsewhere() -> None:
    class Shell:
        kernel = object()

    assert choose_progress_mode("auto", Shell()) == "widget"
    assert choose_progress_mode("auto", object()) == "text"
    assert choose_progress_mode("none", Shell()) == "none"
    with pytest.raises(ValueError, match="progress must be one of"):
        choose_progress_mode("bars", None)


def test_text_run_display_ends_with_the_card(capsys: pytest.CaptureFixture[str]) -> None:
    from linkis_kernel.display import JobCard

    view = RunDisplay("spark", "text")
    view.start()
    view.update(snap("Running", progress=0.5))
    view.finish(JobCard("spark", "exec_1", 42, "Succeed", 2.0))
    out = capsys.readouterr().out
    assert out.index("[linkis spark] Running") < out.index("Linkis spark · task 42 · Succeed")


def test_a_card_shows_even_when_the_panel_never_started(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from linkis_kernel.display import JobCard

    view = RunDisplay("spark", "widget")  # start() was interrupted before it ran
    view.finish(JobCard("spark", "exec_1", 42, "Cancelled", 0.5, note="Killed Linkis job 42"))
    assert "Linkis spark · task 42 · Cancelled" in capsys.readouterr().out
