"""Text progress for terminal IPython, headless runs and the CLI: one status line (and, if
asked, the job's log lines above it), then the job card."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from ..client import PYTHON_COMMANDS, Commands, phrase_steps
from .card import format_duration

if TYPE_CHECKING:
    from ..job import Snapshot


def status_line(snapshot: Snapshot, engine: str, commands: Commands = PYTHON_COMMANDS) -> str:
    """`[linkis spark] Running 42% · stages 3/5 · 12.3s · task 7`, then any warning with its
    next steps phrased in `commands`."""
    parts = [f"[linkis {engine}] {snapshot.state}"]
    if not snapshot.final:
        parts[0] += f" {int(snapshot.progress * 100)}%"
    if snapshot.queue_position is not None and not snapshot.final:
        parts.append(f"{snapshot.queue_position} job(s) ahead in the queue")
    if snapshot.stages and not snapshot.final:
        done = sum(1 for stage in snapshot.stages if stage.total and stage.succeed >= stage.total)
        parts.append(f"stages {done}/{len(snapshot.stages)}")
    parts.append(format_duration(snapshot.elapsed))
    parts.append(f"task {snapshot.task_id}")
    if snapshot.warning:
        parts.append(warning_text(snapshot, commands))
    return " · ".join(parts)


def warning_text(snapshot: Snapshot, commands: Commands) -> str:
    """The snapshot's warning followed by its next steps, e.g. "... Run `%linkis attach 7` ..."."""
    steps = phrase_steps(snapshot.next_steps, commands)
    return f"{snapshot.warning} {steps}" if steps else snapshot.warning or ""


class TextProgress:
    """Writes the status line: rewritten in place on a TTY, one line per change otherwise."""

    def __init__(
        self,
        engine: str,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        min_interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        commands: Commands = PYTHON_COMMANDS,
        show_log: bool = False,
    ):
        self.engine = engine
        self.commands = commands
        self.show_log = show_log
        self.stream = stream if stream is not None else sys.stdout
        self.tty = self._isatty(self.stream) if tty is None else tty
        self.min_interval = min_interval
        self.clock = clock
        self._last_write = float("-inf")
        self._last_key: tuple[object, ...] | None = None
        self._last_state: str | None = None
        self._width = 0

    @staticmethod
    def _isatty(stream: TextIO) -> bool:
        try:
            return stream.isatty()
        except (AttributeError, ValueError):
            return False

    def update(self, snapshot: Snapshot) -> None:
        """Show one snapshot, if it says something new (and not too often on a TTY); with
        `show_log`, its new log lines always."""
        new_lines = snapshot.new_log.get("all", ()) if self.show_log else ()
        if new_lines:
            self._clear()
            self.stream.writelines(line + "\n" for line in new_lines)
        line = status_line(snapshot, self.engine, self.commands)
        if self.tty:
            now = self.clock()
            same_state = snapshot.state == self._last_state
            if same_state and not snapshot.final and now - self._last_write < self.min_interval:
                return
            self._last_write = now
            self._last_state = snapshot.state
            padding = " " * max(0, self._width - len(line))
            self._width = len(line)
            self.stream.write(f"\r{line}{padding}")
        else:
            key = (snapshot.state, snapshot.queue_position, snapshot.warning)
            if key == self._last_key:
                return
            self._last_key = key
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        """End the in-place line so what follows starts on its own line."""
        if self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
        self._width = 0

    def _clear(self) -> None:
        """Blank the in-place status line so log lines start at the left margin."""
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
            self._last_state = None
