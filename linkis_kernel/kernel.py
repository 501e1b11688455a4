"""`LinkisKernel`: a Jupyter kernel whose plain cells run on Linkis.

A plain cell goes to Linkis with the kernelspec's engine and run type (through
`LinkisMagics.run_cell`); `%%linkis ...` on the first line sets options for that cell; `%%local`
runs the cell as Python in the kernel, where `-o` results and `Job` handles live; other magics
work as in IPython. Routing is an IPython input transformer, so history keeps cells as typed.

papermill: `language_info.name` is `python` (the highlighting comes from `codemirror_mode`), so
papermill's Python translator writes the parameters cell, and a cell that starts with the line
`# Parameters` and holds only assignments runs locally, where `${name}` in later cells finds it.
"""

from __future__ import annotations

import ast
import os
import sys
from typing import Any

from ipykernel.ipkernel import IPythonKernel

from . import __version__
from .completion import MetadataCache, SqlCompleter, sql_is_complete
from .magics import linkis_magics
from .options import CellOptions

ENGINE_ENV = "LINKIS_KERNEL_ENGINE"
RUN_TYPE_ENV = "LINKIS_KERNEL_RUN_TYPE"
LANGUAGE_ENV = "LINKIS_KERNEL_LANGUAGE"
DEFAULT_LANGUAGE = "sql"
LOCAL_MAGIC = "%%local"
PARAMETERS_COMMENT = "# Parameters"

_PYTHON_VERSION = sys.version.split()[0]
LANGUAGE_INFO: dict[str, dict[str, Any]] = {
    "sql": {
        "name": "python",
        "version": _PYTHON_VERSION,
        "mimetype": "text/x-sql",
        "codemirror_mode": "sql",
        "pygments_lexer": "sql",
        "file_extension": ".sql",
        "nbconvert_exporter": "script",
    },
    "python": {
        "name": "python",
        "version": _PYTHON_VERSION,
        "mimetype": "text/x-python",
        "codemirror_mode": {"name": "ipython", "version": 3},
        "pygments_lexer": "ipython3",
        "file_extension": ".py",
        "nbconvert_exporter": "python",
    },
    "shell": {
        "name": "python",
        "version": _PYTHON_VERSION,
        "mimetype": "text/x-sh",
        "codemirror_mode": "shell",
        "pygments_lexer": "bash",
        "file_extension": ".sh",
        "nbconvert_exporter": "script",
    },
}


def first_line(lines: list[str]) -> tuple[int, str]:
    """The index and stripped text of the first non-blank line ((len, "") when none)."""
    for index, line in enumerate(lines):
        if line.strip():
            return index, line.strip()
    return len(lines), ""


def is_magic_cell(code: str) -> bool:
    """Whether the cell starts (after blank lines) with a `%` magic, so IPython handles it."""
    return first_line(code.splitlines())[1].startswith("%")


def is_parameters_cell(lines: list[str]) -> bool:
    """papermill's parameters cell: `# Parameters`, then only assignments to names."""
    index, text = first_line(lines)
    if text != PARAMETERS_COMMENT:
        return False
    try:
        body = ast.parse("".join(lines[index:])).body
    except SyntaxError:
        return False
    return all(
        isinstance(statement, ast.Assign)
        and all(isinstance(target, ast.Name) for target in statement.targets)
        for statement in body
    )


class LinkisKernel(IPythonKernel):
    """An IPython kernel whose plain cells run on Apache Linkis."""

    implementation = "linkis_kernel"
    implementation_version = __version__

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.language = os.environ.get(LANGUAGE_ENV) or DEFAULT_LANGUAGE
        if self.language not in LANGUAGE_INFO:
            self.log.warning(
                "%s=%r is not one of %s; using %s highlighting.",
                LANGUAGE_ENV,
                self.language,
                ", ".join(LANGUAGE_INFO),
                DEFAULT_LANGUAGE,
            )
            self.language = DEFAULT_LANGUAGE
        self.language_info = LANGUAGE_INFO[self.language]
        self.magics = linkis_magics(self.shell)
        self._apply_kernelspec_defaults()
        self._silent = False
        self.metadata_cache = MetadataCache(self.magics.connection, self._log_metadata_error)
        self.completer = SqlCompleter(self.metadata_cache)
        self.magics.refresh_hooks.append(self.metadata_cache.clear)
        self._ipython().input_transformers_cleanup.insert(0, self.route_cell)

    def _ipython(self) -> Any:
        """The kernel's IPython shell, which ipykernel creates before this kernel's __init__."""
        if self.shell is None:
            raise RuntimeError("the Linkis kernel has no IPython shell")
        return self.shell

    @property
    def banner(self) -> str:  # type: ignore[override]
        engine = self.magics.resolved("engine")
        run_type = self.magics.run_type or "its usual run type"
        return (
            f"Linkis kernel {__version__}: plain cells run on Linkis ({engine}, {run_type}); "
            f"{LOCAL_MAGIC} runs a cell as Python here; `%linkis help` lists the commands."
        )

    def _apply_kernelspec_defaults(self) -> None:
        """The kernelspec's engine and run type, unless configuration already chose an engine.

        A run type belongs to its engine: the kernelspec's applies while the engine is the
        kernelspec's, so `%config LinkisMagics.engine = "hive"` runs hive's own run type."""
        engine = os.environ.get(ENGINE_ENV)
        if self.magics.engine or not engine:
            return
        self.magics.engine = engine
        run_type = os.environ.get(RUN_TYPE_ENV)
        if not run_type or self.magics.run_type:
            return
        self.magics.run_type = run_type

        def follow_engine(change: dict[str, Any]) -> None:
            if self.magics.run_type in (run_type, None):
                self.magics.run_type = run_type if change["new"] == engine else None

        self.magics.observe(follow_engine, names="engine")

    def _log_metadata_error(self, error: Exception) -> None:
        self.log.warning("Linkis metadata for completion: %s: %s", type(error).__name__, error)

    # -- routing ---------------------------------------------------------------------------

    def route_cell(self, lines: list[str]) -> list[str]:
        """IPython input transformer: a plain cell becomes a call that runs it on Linkis;
        `%%local` cells lose that line; magic, empty, silent and papermill parameters cells
        stay as they are (Python)."""
        index, text = first_line(lines)
        if self._silent or not text or is_parameters_cell(lines):
            return lines
        if text == LOCAL_MAGIC:
            return lines[index + 1 :]
        if text.startswith("%"):
            return lines
        code = "".join(lines)
        return [f"get_ipython().kernel.run_on_linkis({code!r})\n"]

    # IPython's check_complete then skips this transformer (it rewrites, it does not parse).
    route_cell.has_side_effects = True  # type: ignore[attr-defined]

    def run_on_linkis(self, code: str) -> Any:
        """Run one plain cell on Linkis with the current settings; its value is the result."""
        return self.magics.run_cell(CellOptions(), code)

    # -- protocol handlers -----------------------------------------------------------------

    async def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict | None = None,
        allow_stdin: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        # Silent requests come from front-end extensions (variable inspectors and the like),
        # which send Python: they run locally, never on Linkis.
        self._silent = silent
        try:
            return await super().do_execute(
                code, silent, store_history, user_expressions, allow_stdin, **kwargs
            )
        finally:
            self._silent = False

    async def do_complete(self, code: str, cursor_pos: int | None) -> dict[str, Any]:
        cursor_pos = len(code) if cursor_pos is None else cursor_pos
        if is_magic_cell(code):
            return super().do_complete(code, cursor_pos)
        if self.language != "sql":
            return _no_completion(cursor_pos)
        try:
            return self.completer.complete(code, cursor_pos).reply()
        except Exception as exc:  # completion must never break the kernel
            self.log.warning("SQL completion failed: %s: %s", type(exc).__name__, exc)
            return _no_completion(cursor_pos)

    async def do_inspect(
        self,
        code: str,
        cursor_pos: int | None,
        detail_level: int = 0,
        omit_sections: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        cursor_pos = len(code) if cursor_pos is None else cursor_pos
        if is_magic_cell(code):
            return super().do_inspect(code, cursor_pos, detail_level, omit_sections)
        bundle = None
        if self.language == "sql":
            try:
                bundle = self.completer.inspect(code, cursor_pos)
            except Exception as exc:  # inspection must never break the kernel
                self.log.warning("SQL inspection failed: %s: %s", type(exc).__name__, exc)
        return {"status": "ok", "found": bundle is not None, "data": bundle or {}, "metadata": {}}

    async def do_is_complete(self, code: str) -> dict[str, Any]:
        if is_magic_cell(code) or self.language == "python":
            return super().do_is_complete(code)
        if self.language == "sql":
            return sql_is_complete(code)
        if code.rstrip().endswith("\\"):
            return {"status": "incomplete", "indent": ""}
        return {"status": "complete"}

    async def do_history(
        self,
        hist_access_type: str,
        output: bool,
        raw: bool,
        session: int = 0,
        start: int = 0,
        stop: int | None = None,
        n: int | None = None,
        pattern: str | None = None,
        unique: bool = False,
    ) -> dict[str, Any]:
        """History; a `range` reply names the current session by its number (IPython says 0),
        as `tail` and `search` replies do."""
        reply = super().do_history(
            hist_access_type, output, raw, session, start, stop, n, pattern, unique
        )
        if hist_access_type == "range":
            current = self._ipython().history_manager.session_number
            reply["history"] = [
                (session or current, line, entry) for session, line, entry in reply["history"]
            ]
        return reply

    async def do_shutdown(self, restart: bool) -> dict[str, Any]:
        running = self.magics.running_jobs()
        if running and not self.magics.kill_on_shutdown:
            self.log.info(
                "Leaving %d Linkis job(s) running (LinkisMagics.kill_on_shutdown is off).",
                len(running),
            )
        for report in self.magics.shutdown():
            self.log.info("Kernel %s: %s", "restart" if restart else "shutdown", report)
        return super().do_shutdown(restart)


def _no_completion(cursor_pos: int) -> dict[str, Any]:
    return {
        "status": "ok",
        "matches": [],
        "cursor_start": cursor_pos,
        "cursor_end": cursor_pos,
        "metadata": {},
    }


if __name__ == "__main__":
    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(kernel_class=LinkisKernel)
