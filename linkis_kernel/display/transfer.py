"""Progress of a download: a bar in the panel's style in a notebook, a text bar in a terminal.

Fed `update(done, total)` by `Job.download(on_progress=...)`: rows with an estimated total for
Parquet, bytes without one for the server's csv and xlsx export.
"""

from __future__ import annotations

import html
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

BAR_WIDTH = 30
MIN_UPDATE_INTERVAL = 0.25


class DownloadProgress:
    """One download's progress in `mode` (`widget`, `text` or `none`); `close(ok)` ends it."""

    def __init__(
        self,
        label: str,
        mode: str,
        *,
        unit: str = "rows",
        stream: TextIO | None = None,
        min_interval: float = MIN_UPDATE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label
        self.mode = mode
        self.unit = unit
        self.stream = stream if stream is not None else sys.stdout
        self.tty = _isatty(self.stream)
        self.min_interval = min_interval
        self.clock = clock
        self.done = 0
        self.total: int | None = None
        self._last = float("-inf")
        self._width = 0
        self._lock = threading.Lock()
        self.bar: Any = None  # the widgets, in widget mode
        self.status: Any = None
        self._box: Any = None
        self._handle: Any = None
        if mode == "widget":
            self._show_widget()

    def update(self, done: int, total: int | None = None) -> None:
        """Take the count so far (and the expected total, if known); shown at most every
        `min_interval` seconds."""
        with self._lock:
            self.done, self.total = done, total
            now = self.clock()
            if now - self._last < self.min_interval:
                return
            self._last = now
            self._render(final=False)

    def close(self, ok: bool = True) -> None:
        """Show the final count: a full green bar when `ok`, a red one otherwise."""
        with self._lock:
            if ok:
                self.total = self.done
            self._render(final=True, ok=ok)
            if self.mode == "widget":
                self._leave_static(ok)
            if self.mode == "text":
                self.stream.write("\n")
                self.stream.flush()

    def line(self, final: bool = False) -> str:
        """`[linkis] out.parquet ███████░░░ 70% · 700,000 of about 1,000,000 rows`."""
        if not self.total:
            return f"[linkis] {self.label} · {self.counts(final)}"
        filled = round(self._fraction(final) * BAR_WIDTH)
        bar = "█" * filled + "░" * (BAR_WIDTH - filled)
        return f"[linkis] {self.label} {bar} {self.counts(final)}"

    def counts(self, final: bool = False) -> str:
        """`70% · 700,000 of about 1,000,000 rows`, or only the count when no total is known."""
        if not self.total:
            return f"{self.done:,} {self.unit}"
        about = "" if final else "about "
        percent = int(self._fraction(final) * 100)
        return f"{percent}% · {self.done:,} of {about}{self.total:,} {self.unit}"

    def _fraction(self, final: bool) -> float:
        fraction = min(self.done / self.total, 1.0) if self.total else 0.0
        return fraction if final else min(fraction, 0.99)  # an estimate is never "done"

    def _render(self, *, final: bool, ok: bool = True) -> None:
        if self.mode == "widget":
            self.bar.value = self._fraction(final) if self.total else float(final)
            self.bar.bar_style = ("success" if ok else "danger") if final else "info"
            self.status.value = self.counts(final)
        elif self.mode == "text" and (self.tty or final):
            text = self.line(final)
            padding = " " * max(0, self._width - len(text))
            self._width = len(text)
            self.stream.write(f"\r{text}{padding}" if self.tty else text)
            self.stream.flush()

    def _show_widget(self) -> None:
        import ipywidgets as w
        from IPython.display import display

        self.bar = w.FloatProgress(value=0.0, min=0.0, max=1.0, bar_style="info")
        self.bar.add_class("linkis-bar")
        self.status = w.Label("starting")
        title = w.HTML(f"<b>Linkis</b> download <code>{html.escape(self.label)}</code>")
        self._box = w.HBox([title, self.bar, self.status]).add_class("linkis-panel")
        self._handle = display(self._box, display_id=True)

    def _leave_static(self, ok: bool) -> None:
        """Close the widgets and leave the final line in their place, so that no widget state
        outlives the download (a saved notebook shows the line)."""
        colour = "#2e7d32" if ok else "#c62828"
        text = f"Linkis download {self.label}: {self.counts(final=True)}"
        bundle = {
            "text/plain": text,
            "text/html": f'<span style="color:{colour}">{html.escape(text)}</span>',
        }
        if self._handle is not None:
            self._handle.update(bundle, raw=True)
        for widget in (self._box, *self._box.children):
            widget.close()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
