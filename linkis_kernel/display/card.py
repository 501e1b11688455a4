"""Static output: the job card, result headers and footers, result rendering, short errors.

Everything here is plain `display_data` (text/html plus text/plain) with no widget state and no
scripts, so a saved notebook, nbconvert and GitHub show what ran. The caller words what it adds:
the `Commands` a card's log hint is phrased in, the setting a limit came from.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..client import LOG, Commands
from ..wire import CANCELLED, FAILED, SUCCEED, TIMEOUT
from .rich import figure_png

if TYPE_CHECKING:
    from ..results import ResultSet
    from .frame import ResultFrame

STATE_COLOURS = {SUCCEED: "#2e7d32", FAILED: "#c62828", CANCELLED: "#ef6c00", TIMEOUT: "#ef6c00"}
TEXT_DISPLAY_LINES = 1000  # a text result shows this many lines; job.results() has them all
CARD_LOG_LINES = 10  # error lines a card may carry when no error output shows them
_BACKTICKED = re.compile(r"`([^`]+)`")


def format_duration(seconds: float) -> str:
    """`0.4s`, `12.3s`, `4m05s`, `1h02m`."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def log_hint(
    commands: Commands, task_id: int | str | None, exec_id: str, *, level: str | None = None
) -> str:
    """The front end's command that shows this job's log (that command takes `--level`)."""
    level_part = f" --level {level}" if level else ""
    return commands[LOG].format(ref=task_id if task_id is not None else exec_id) + level_part


@dataclass(frozen=True)
class Limits:
    """The row limits a table went through, kept apart so a footer can name each one; a source
    is where the limit was set (e.g. `--limit`), named beside it when given."""

    display_limit: int | None
    fetch_limit: int | None
    fetch_limit_source: str = ""
    display_limit_source: str = ""


@dataclass(frozen=True)
class ResultSummary:
    """One result set as the job card lists it."""

    index: int
    kind: str
    rows: int | None
    truncation: str | None = None


@dataclass(frozen=True)
class JobCard:
    """What ran and how it ended; the only thing a finished run leaves in the notebook."""

    engine: str
    exec_id: str
    task_id: int | None
    state: str
    elapsed: float
    run_type: str | None = None
    results: tuple[ResultSummary, ...] = ()
    note: str | None = None
    log_tail: tuple[str, ...] = ()
    commands: Commands | None = None  # how the front end words the log hint; None: no hint
    engine_line: str | None = None  # which engine ran the job: started for it, or reused

    def headline(self) -> str:
        run_type = f" ({self.run_type})" if self.run_type else ""
        return (
            f"Linkis {self.engine}{run_type} · task {self.task_id} · {self.state} "
            f"in {format_duration(self.elapsed)}"
        )

    def detail_lines(self) -> list[str]:
        """What came back and any note; a limit is named only on a result it cut short. The
        exec id is left to the HTML card's tooltip: users type the task id."""
        lines = [self.engine_line] if self.engine_line else []
        lines.extend(_summary_line(summary, len(self.results)) for summary in self.results)
        if self.note:
            lines.append(self.note)
        return lines

    def log_command(self) -> str | None:
        """The command that shows this job's log: its errors when it did not succeed."""
        if self.commands is None:
            return None
        level = "error" if self.state != SUCCEED else None
        return log_hint(self.commands, self.task_id, self.exec_id, level=level)

    def text(self) -> str:
        lines = [self.headline(), *("  " + line for line in self.detail_lines())]
        command = self.log_command()
        if command:
            lines.append(f"  log: {command}")
        lines.extend("  | " + line for line in self.log_tail)
        return "\n".join(lines)

    def html(self) -> str:
        colour = STATE_COLOURS.get(self.state, "#1565c0")
        run_type = f" ({html.escape(self.run_type)})" if self.run_type else ""
        head = (
            f"<b>Linkis</b> {html.escape(self.engine)}{run_type} · task "
            f'<code title="exec id {html.escape(self.exec_id, quote=True)}">'
            f"{html.escape(str(self.task_id))}</code> · "
            f'<b style="color:{colour}">{html.escape(self.state)}</b> '
            f"in {format_duration(self.elapsed)}"
        )
        items = "".join(f"<li>{_code_spans(line)}</li>" for line in self.detail_lines())
        command = self.log_command()
        if command:
            items += f"<li>log: <code>{html.escape(command)}</code></li>"
        tail = ""
        if self.log_tail:
            escaped = html.escape("\n".join(self.log_tail))
            tail = f'<pre style="margin:2px 0;font-size:85%">{escaped}</pre>'
        return (
            f'<div class="linkis-card" style="border-left:4px solid {colour};padding:2px 8px">'
            f'{head}<ul style="margin:2px 0">{items}</ul>{tail}</div>'
        )

    def __str__(self) -> str:
        return self.text()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.text(), "text/html": self.html()}


def engine_line(task: dict[str, Any]) -> str | None:
    """`started engine host:port` or `reused engine host:port`, from a job-history row."""
    instance, reused = task.get("engineInstance"), task.get("isReuse")
    if not instance or reused is None:
        return None
    return f"{'reused' if reused else 'started'} engine `{instance}`"


def _code_spans(line: str) -> str:
    """Escape a card line, setting its `backticked` commands in code style."""
    return _BACKTICKED.sub(r"<code>\1</code>", html.escape(line))


def _summary_line(summary: ResultSummary, count: int) -> str:
    label = f"result {summary.index + 1} of {count}: {summary.kind}"
    if summary.rows is not None:
        label += f", {plural(summary.rows, 'row')} fetched"
    if summary.truncation:
        label += f"; {summary.truncation}"
    return label


def plural(count: int, unit: str) -> str:
    """`1 row`, `5,000 rows`."""
    return f"{count:,} {unit}{'' if count == 1 else 's'}"


def limit_note(result: ResultSet, limits: Limits) -> str:
    """Which limit cut a result short, or `complete`."""
    if not result.truncated:
        return "complete"
    if limits.fetch_limit is not None and result.rows_fetched >= limits.fetch_limit:
        source = f" ({limits.fetch_limit_source})" if limits.fetch_limit_source else ""
        return f"fetch limit {limits.fetch_limit:,}{source}; more rows exist"
    return f"truncated by {result.truncation or 'the server'}"


def summarize_results(results: Sequence[ResultSet], limits: Limits) -> tuple[ResultSummary, ...]:
    """Card lines for the fetched result sets, in order."""
    return tuple(
        ResultSummary(
            index=position,
            kind=result.kind,
            rows=result.rows_fetched if result.kind == "table" else None,
            truncation=limit_note(result, limits) if result.truncated else None,
        )
        for position, result in enumerate(results)
    )


def result_header(position: int, count: int) -> str:
    """`result 2 of 3` (positions count from 0)."""
    return f"result {position + 1} of {count}"


def table_footer(shown: int, result: ResultSet, limits: Limits) -> str:
    """The line under a table naming every limit it went through; never silent."""
    fetched = result.rows_fetched
    if shown < fetched:
        source = f", {limits.display_limit_source}" if limits.display_limit_source else ""
        head = (
            f"showing {shown:,} of {plural(fetched, 'row')} fetched "
            f"(display limit {shown:,}{source})"
        )
    else:
        head = plural(fetched, "row")
    return f"{head}; {limit_note(result, limits)}"


def table_view(result: ResultSet, limits: Limits, header: str | None = None) -> ResultFrame:
    """The DataFrame of one table result, carrying its header, footer and display limit."""
    from .frame import ResultFrame  # pandas loads with the first table, not with the kernel

    frame = ResultFrame(result.data)
    shown = len(frame) if limits.display_limit is None else min(len(frame), limits.display_limit)
    frame.linkis_header = header
    frame.linkis_footer = table_footer(shown, result, limits)
    frame.linkis_display_limit = limits.display_limit
    return frame


@dataclass(frozen=True)
class TextView:
    """A text or HTML result with its header and, when something cut it, a footer; text is
    escaped into `<pre>`."""

    body: str
    is_html: bool
    header: str | None
    footer: str | None = None

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        header = f"<div><b>{html.escape(self.header)}</b></div>" if self.header else ""
        body = self.body if self.is_html else f"<pre>{html.escape(self.body)}</pre>"
        footer = (
            f'<div style="font-size:85%;color:#555">{html.escape(self.footer)}</div>'
            if self.footer
            else ""
        )
        text_header = f"{self.header}\n" if self.header else ""
        text_footer = f"\n{self.footer}" if self.footer else ""
        return {
            "text/html": f"{header}{body}{footer}",
            "text/plain": f"{text_header}{self.body}{text_footer}",
        }


def text_view(result: ResultSet, limits: Limits, header: str | None = None) -> TextView:
    """A text or HTML result; long text shows its first TEXT_DISPLAY_LINES lines."""
    data = result.data
    body = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    notes = []
    lines = body.splitlines()
    if result.kind == "text" and len(lines) > TEXT_DISPLAY_LINES:
        body = "\n".join(lines[:TEXT_DISPLAY_LINES])
        notes.append(f"showing {TEXT_DISPLAY_LINES:,} of {plural(len(lines), 'line')}")
    if result.truncated:
        notes.append(limit_note(result, limits))
    return TextView(body, result.kind == "html", header, "; ".join(notes) or None)


@dataclass(frozen=True)
class PictureView:
    """A picture result (base64 PNG or JPEG, as Linkis stores it) with its header."""

    data: str
    header: str | None

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        mime = "image/jpeg" if self.data.startswith("/9j/") else "image/png"
        return {mime: self.data, "text/plain": f"<{self.header or 'picture'}>"}


def result_view(result: ResultSet, limits: Limits, header: str | None = None) -> Any:
    """The display object for any result set kind."""
    if result.kind == "table":
        return table_view(result, limits, header)
    if result.kind == "picture":
        data = result.data
        text = data.decode("ascii") if isinstance(data, bytes) else str(data)
        return PictureView("".join(text.split()), header)
    if result.kind == "html" and (png := figure_png(str(result.data))) is not None:
        return PictureView(png, header)
    return text_view(result, limits, header)


class JobInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run, shown as one line on what happened to the job (no traceback)."""

    def _render_traceback_(self) -> list[str]:
        return [f"Interrupted. {self}"]


class LinkisCellError(Exception):
    """A failure shown as a short error output (what went wrong, what to do), no traceback."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint

    def _render_traceback_(self) -> list[str]:
        lines = [str(self)]
        if self.hint:
            lines.append(self.hint)
        return lines
