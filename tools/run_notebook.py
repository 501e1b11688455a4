"""Run a notebook headless against a fresh embedded Linkis server and print what a user would see.

Usage: python tools/run_notebook.py notebooks/quickstart.ipynb [--save OUT.ipynb] [--workdir DIR]

The server is the one `%%linkis` starts by itself when no LINKIS_URL is set; it lives in a
temporary Jupyter data dir and is stopped at the end, also when a cell fails. The notebook runs
on the kernel its metadata names (python3 when none) with a temporary working directory unless
--workdir is given. Exit status 1 if any cell fails.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import NoSuchKernel
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, DeadKernelError

from linkis_kernel.wire import read_connection

RULE = "─" * 78
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
LINKIS_SETTINGS = ("LINKIS_URL", "LINKIS_USER", "LINKIS_PASSWORD", "LINKIS_TOKEN")
SERVER_STOP_TIMEOUT = 10.0
CELL_TIMEOUT = 300


def error_text(output: dict) -> str:
    """An error as a user reads it: a short rendered error as is, a Python traceback reduced
    to its last line."""
    lines = [ANSI_ESCAPE.sub("", line) for line in output.get("traceback") or []]
    text = "\n".join(lines).strip()
    if not text or "Traceback (most recent call last)" in text or "-----" in text:
        return f"{output['ename']}: {output['evalue']}"
    return text


def text_of(output: dict) -> str:
    """The text a reader sees for one output (widget views are live-only and skipped)."""
    kind = output["output_type"]
    if kind == "stream":
        return output["text"]
    if kind == "error":
        return error_text(output)
    data = output.get("data", {})
    if WIDGET_VIEW in data:
        return ""
    if "image/png" in data:
        return "[image]"
    return data.get("text/plain", "")


def print_notebook(nb: nbformat.NotebookNode, upto: int | None = None) -> None:
    """Markdown as comments, code cells with their text outputs; cells after `upto` are left
    out (they did not run)."""
    for index, cell in enumerate(nb.cells):
        if upto is not None and index > upto:
            print(f"({len(nb.cells) - index} more cell(s) not run)")
            return
        if cell.cell_type == "markdown":
            print(textwrap.indent(cell.source.strip(), "  # "))
            print()
            continue
        if cell.cell_type != "code":
            continue
        print(RULE)
        print(textwrap.indent(cell.source.strip(), "  In  │ ", lambda line: True))
        shown = [text_of(out).rstrip() for out in cell.get("outputs", [])]
        body = "\n".join(text for text in shown if text)
        if body:
            print(textwrap.indent(body, "  Out │ ", lambda line: True))
        print()


def last_cell_run(nb: nbformat.NotebookNode) -> int:
    """The index of the first cell with an error output, else of the last cell that started
    (-1 when none did)."""
    started = -1
    for index, cell in enumerate(nb.cells):
        if any(out["output_type"] == "error" for out in cell.get("outputs", [])):
            return index
        if cell.get("execution_count") is not None:
            started = index
    return started


def stop_embedded_server(data_dir: Path) -> None:
    """Stop the server that `%%linkis` started in `data_dir` and wait until it is gone."""
    connection = read_connection(data_dir / "linkis-kernel")
    if connection is None:
        return
    pid = int(connection["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + SERVER_STOP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)


def kernel_name_of(nb: nbformat.NotebookNode) -> str:
    return nb.metadata.get("kernelspec", {}).get("name") or "python3"


def execute(nb: nbformat.NotebookNode, workdir: Path, kernel_log: Path) -> str | None:
    """Run every cell; None when all ran, else a one-line reason."""
    kernel_name = kernel_name_of(nb)
    client = NotebookClient(
        nb,
        kernel_name=kernel_name,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(workdir)}},
    )
    with open(kernel_log, "wb") as log:
        try:
            client.execute(stderr=log)
        except CellExecutionError:
            return "a cell failed: see its output above"
        except NoSuchKernel:
            return (
                f"the notebook's kernel {kernel_name!r} is not installed; install the Linkis "
                f"kernels with `linkis-kernel install --sys-prefix`"
            )
        except DeadKernelError:
            tail = "\n".join(kernel_log.read_text(errors="replace").splitlines()[-10:])
            return f"the kernel died; its last output:\n{tail}"
        except TimeoutError as error:
            return f"a cell ran longer than {CELL_TIMEOUT} s: {error}"
    return None


def run(notebook: Path, workdir: Path | None, save: Path | None) -> int:
    nb = nbformat.read(notebook, as_version=4)
    with tempfile.TemporaryDirectory(prefix="linkis-demo-") as tmp:
        data_dir = Path(tmp) / "data"
        for name in LINKIS_SETTINGS:
            os.environ.pop(name, None)
        os.environ["JUPYTER_DATA_DIR"] = str(data_dir)
        os.environ["IPYTHONDIR"] = str(Path(tmp) / "ipython")
        cwd = workdir or Path(tmp) / "work"
        cwd.mkdir(parents=True, exist_ok=True)
        try:
            problem = execute(nb, cwd, Path(tmp) / "kernel.log")
        except KeyboardInterrupt:
            problem = "interrupted"
        finally:
            stop_embedded_server(data_dir)
    print_notebook(nb, upto=last_cell_run(nb) if problem else None)
    if save:
        nbformat.write(nb, save)
    if problem:
        print(f"{notebook}: {problem}.", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--save", type=Path, help="also write the executed notebook here")
    parser.add_argument(
        "--workdir", type=Path, help="run the cells here (default: a temporary directory)"
    )
    args = parser.parse_args()
    if not args.notebook.is_file():
        parser.error(f"no notebook at {args.notebook}")
    return run(args.notebook, args.workdir.resolve() if args.workdir else None, args.save)


if __name__ == "__main__":
    sys.exit(main())
