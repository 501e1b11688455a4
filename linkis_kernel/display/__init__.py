"""How a run looks: a live panel (widgets) or a status line (text) while it runs, then a card.

`RunDisplay` is the one object the magics and the kernel drive: `start()`, `update(snapshot)` for
each Job snapshot, `finish(card)` when the run is over.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TextIO

from ..client import PYTHON_COMMANDS, Commands
from .card import JobCard, Limits, LinkisCellError, result_header, result_view, table_view

if TYPE_CHECKING:
    from ..job import Snapshot
    from .panel import ProgressPanel
    from .text import TextProgress

PROGRESS_MODES = ("auto", "widget", "text", "none")

__all__ = [
    "PROGRESS_MODES",
    "JobCard",
    "Limits",
    "LinkisCellError",
    "RunDisplay",
    "choose_progress_mode",
    "result_header",
    "result_view",
    "table_view",
]


def widgets_available() -> bool:
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def choose_progress_mode(requested: str, shell: Any) -> str:
    """`auto` is the widget panel inside a Jupyter kernel with ipywidgets, text elsewhere."""
    if requested not in PROGRESS_MODES:
        raise ValueError(f"progress must be one of {', '.join(PROGRESS_MODES)}, not {requested!r}")
    if requested != "auto":
        return requested
    in_kernel = getattr(shell, "kernel", None) is not None
    return "widget" if in_kernel and widgets_available() else "text"


class RunDisplay:
    """Progress for one run in the chosen mode (`widget`, `text` or `none`), then its card."""

    def __init__(
        self,
        engine: str,
        mode: str,
        *,
        stream: TextIO | None = None,
        commands: Commands = PYTHON_COMMANDS,
    ):
        self.engine = engine
        self.commands = commands
        self.mode = mode
        self.stream = stream if stream is not None else sys.stdout
        self.panel: ProgressPanel | None = None
        self.text: TextProgress | None = None
        self._handle: Any = None

    def start(self) -> None:
        """Show the empty panel (widget mode); text and none show nothing yet."""
        if self.mode == "widget":
            from IPython.display import display

            from .panel import ProgressPanel

            self.panel = ProgressPanel(self.engine, commands=self.commands)
            self._handle = display(self.panel.widget, display_id=True)
        elif self.mode == "text":
            from .text import TextProgress

            self.text = TextProgress(self.engine, self.stream, commands=self.commands)

    def update(self, snapshot: Snapshot) -> None:
        """Feed one Job snapshot (safe to call from the Job's polling thread)."""
        if self.panel is not None:
            self.panel.update(snapshot)
        elif self.text is not None:
            self.text.update(snapshot)

    def finish(self, card: JobCard) -> None:
        """Close the live view and leave the card: in place of the panel, or after the line.

        Also right after an interrupted `start()`: the card then shows on its own."""
        if self.panel is not None:
            self.panel.close()
            self.panel = None
        if self._handle is not None:
            self._handle.update(card)
            self._handle = None
            return
        if self.text is not None:
            self.text.finish()
            self.text = None
        from IPython.display import display  # here, so `linkis-kernel run` never loads IPython

        display(card)
