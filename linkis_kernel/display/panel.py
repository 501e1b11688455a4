"""The live ipywidgets panel of one run, fed by the Job's snapshots.

Widget updates are throttled (the log is still collected from every snapshot), progress never
goes backwards and is full only once the job succeeded. When the run ends the caller closes the
panel and shows the static job card in its place.
"""

from __future__ import annotations

import html
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..client import PYTHON_COMMANDS, Commands
from ..wire import (
    CANCELLED,
    FAILED,
    INITED,
    LOG_LEVELS,
    RUNNING,
    SCHEDULED,
    SUCCEED,
    TIMEOUT,
    WAIT_FOR_RETRY,
)
from .card import STATE_COLOURS, format_duration
from .text import warning_text

if TYPE_CHECKING:
    from ..job import ResourceUsage, Snapshot, StageProgress

BAR_STYLES = {SUCCEED: "success", FAILED: "danger", CANCELLED: "warning", TIMEOUT: "warning"}
RGB_COLOURS = {"green": "#2e7d32", "yellow": "#f9a825", "red": "#c62828"}
# Tab order: the level names come from the log endpoint; "all" is shown first.
TAB_LEVELS = ("all", "error", "warn", "info")
LOG_TAIL_LINES = 50
MIN_UPDATE_INTERVAL = 0.25


def state_steps_html(state: str) -> str:
    """Inited → Scheduled → Running → final, the current step bold, the ones ahead grey."""
    steps = [INITED, SCHEDULED, RUNNING, state if state in BAR_STYLES else SUCCEED]
    if state == WAIT_FOR_RETRY:
        steps.insert(1, WAIT_FOR_RETRY)
    current = steps.index(state) if state in steps else 0
    rendered = []
    for position, step in enumerate(steps):
        name = html.escape(step)
        if position == current:
            colour = STATE_COLOURS.get(step, "#1565c0")
            rendered.append(f'<b style="color:{colour}">{name}</b>')
        elif position < current:
            rendered.append(name)
        else:
            rendered.append(f'<span style="color:#999">{name}</span>')
    return " → ".join(rendered)


YARN_APPLICATION_PREFIX = "application_"  # YARN application ids: application_<cluster>_<n>


def stages_html(stages: tuple[StageProgress, ...]) -> str:
    """The per-stage task table (running / succeeded / failed / total)."""
    if not stages:
        return ""
    head = "<tr><th>stage</th><th>running</th><th>succeeded</th><th>failed</th><th>total</th></tr>"
    rows = "".join(
        f"<tr><td>{html.escape(str(stage.id))}</td><td>{stage.running}</td>"
        f"<td>{stage.succeed}</td><td>{stage.failed}</td><td>{stage.total}</td></tr>"
        for stage in stages
    )
    return f'<table class="linkis-stages" style="font-size:85%">{head}{rows}</table>'


def resources_html(resources: ResourceUsage | None) -> str:
    """Queue memory and core use with the colours Linkis gives them; figures without a YARN
    application (an embedded server's own process) read as local use."""
    if resources is None:
        return ""

    def gauge(label: str, fraction: float, rgb: str | None) -> str:
        colour = RGB_COLOURS.get(str(rgb).lower(), "#555")
        return f'{label} <b style="color:{colour}">{fraction * 100:.0f}%</b>'

    yarn_apps = [
        app
        for app in resources.applications or ()
        if str(app.get("applicationId", "")).startswith(YARN_APPLICATION_PREFIX)
    ]
    suffix = f" · {len(yarn_apps)} YARN application(s)" if yarn_apps else ""
    label = "queue use" if yarn_apps or not resources.applications else "local process use"
    return (
        f'<span class="linkis-resources">{label}: '
        f"{gauge('memory', resources.memory_percent, resources.memory_rgb)} · "
        f"{gauge('cores', resources.core_percent, resources.core_rgb)}{suffix}</span>"
    )


def log_html(lines: deque[str]) -> str:
    if not lines:
        return '<span style="color:#999">(no lines)</span>'
    body = html.escape("\n".join(lines))
    return f'<pre style="max-height:16em;overflow:auto;margin:0;font-size:85%">{body}</pre>'


class ProgressPanel:
    """State steps, ids, queue position, bar, stages, resources and a log tail with level tabs."""

    def __init__(
        self,
        engine: str,
        *,
        min_interval: float = MIN_UPDATE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        tail: int = LOG_TAIL_LINES,
        commands: Commands = PYTHON_COMMANDS,
    ):
        import ipywidgets as w

        self.engine = engine
        self.commands = commands
        self.min_interval = min_interval
        self.clock = clock
        self.renders = 0
        self.progress = 0.0
        self._last_render = float("-inf")
        self._pending: Snapshot | None = None
        self._timer: threading.Timer | None = None
        self._closed = False
        self._lock = threading.RLock()
        self._logs: dict[str, deque[str]] = {level: deque(maxlen=tail) for level in LOG_LEVELS}
        self.state = w.HTML().add_class("linkis-state")
        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, bar_style="info")
        self.bar.add_class("linkis-bar")
        self.percent = w.Label("0%")
        self.queue = w.HTML()
        self.stages = w.HTML()
        self.resources = w.HTML()
        self.warning = w.HTML()
        self.log_views = {level: w.HTML(log_html(deque())) for level in TAB_LEVELS}
        self.log_tabs = w.Tab(
            children=[self.log_views[level] for level in TAB_LEVELS],
            titles=tuple(level.title() for level in TAB_LEVELS),
        )
        self.log_box = w.Accordion(
            children=[self.log_tabs], titles=(f"log (last {tail} lines)",), selected_index=None
        )
        self.widget = w.VBox(
            [
                self.state,
                w.HBox([self.bar, self.percent]),
                self.queue,
                self.stages,
                self.resources,
                self.warning,
                self.log_box,
            ]
        ).add_class("linkis-panel")

    def update(self, snapshot: Snapshot) -> None:
        """Take one snapshot; the widgets follow at most every `min_interval` seconds, and a
        snapshot held back by that is shown when the interval is over (the Job may stay quiet
        for a long time after it)."""
        with self._lock:
            for level in LOG_LEVELS:
                self._logs[level].extend(snapshot.new_log.get(level, ()))
            wait = self._last_render + self.min_interval - self.clock()
            if snapshot.final or wait <= 0:
                self._render_now(snapshot)
                return
            self._pending = snapshot
            if self._timer is None:
                self._timer = threading.Timer(wait, self._render_pending)
                self._timer.daemon = True
                self._timer.start()

    def _render_pending(self) -> None:
        with self._lock:
            self._timer = None
            if self._pending is not None and not self._closed:
                self._render_now(self._pending)

    def _render_now(self, snapshot: Snapshot) -> None:
        self._pending = None
        self._last_render = self.clock()
        self._render(snapshot)

    def _render(self, snapshot: Snapshot) -> None:
        self.renders += 1
        self.state.value = (
            f"<b>Linkis</b> {html.escape(self.engine)} · {state_steps_html(snapshot.state)} · "
            f"{format_duration(snapshot.elapsed)} · task "
            f'<code title="exec id {html.escape(snapshot.exec_id, quote=True)}">'
            f"{snapshot.task_id}</code>"
        )
        self._render_bar(snapshot)
        waiting = snapshot.queue_position is not None and snapshot.state != RUNNING
        self.queue.value = (
            f"{snapshot.queue_position} job(s) ahead in the queue"
            if waiting and not snapshot.final
            else ""
        )
        self.stages.value = stages_html(snapshot.stages)
        self.resources.value = resources_html(snapshot.resources)
        warning = warning_text(snapshot, self.commands)
        self.warning.value = (
            f'<span style="color:#ef6c00">⚠ {html.escape(warning)}</span>' if warning else ""
        )
        for level in TAB_LEVELS:
            self.log_views[level].value = log_html(self._logs[level])
        if snapshot.final and snapshot.state != SUCCEED:
            self.log_tabs.selected_index = TAB_LEVELS.index("error")
            self.log_box.selected_index = 0

    def _render_bar(self, snapshot: Snapshot) -> None:
        progress = min(max(float(snapshot.progress), 0.0), 1.0)
        if snapshot.state == SUCCEED and snapshot.final:
            progress = 1.0
        elif progress >= 1.0:
            progress = 0.99
        self.progress = max(self.progress, progress)
        self.bar.value = self.progress
        self.bar.bar_style = BAR_STYLES.get(snapshot.state, "info") if snapshot.final else "info"
        self.percent.value = f"{int(self.progress * 100)}%"

    def widgets(self) -> Iterator[Any]:
        """Every widget of the panel, including layouts and styles, children first."""
        stack = [self.widget]
        seen: set[int] = set()
        while stack:
            widget = stack.pop()
            if id(widget) in seen:
                continue
            seen.add(id(widget))
            stack.extend(getattr(widget, "children", ()))
            stack.extend(
                part
                for part in (getattr(widget, "layout", None), getattr(widget, "style", None))
                if part is not None
            )
            yield widget

    def close(self) -> None:
        """Close every widget so no widget state outlives the run."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
            for widget in list(self.widgets()):
                widget.close()
