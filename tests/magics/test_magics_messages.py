"""What a user reads in a notebook when something is off: typos, unknown jobs, bare commands.

Each test runs real cells through nbclient on the python3 kernel (errors allowed, as a user
who keeps going) and reads the outputs as the notebook shows them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def run_cells(*sources: str, cwd: Path) -> list[str]:
    """Run `%load_ext linkis_kernel` and the cells in one kernel; each cell's outputs as text
    (streams, plain-text data, error outputs as rendered)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in ("%load_ext linkis_kernel", *sources)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    NotebookClient(
        nb,
        kernel_name="python3",
        timeout=90,
        allow_errors=True,
        resources={"metadata": {"path": str(cwd)}},
    ).execute()
    return [shown(cell) for cell in nb.cells[1:]]


def shown(cell: Any) -> str:
    parts = []
    for output in cell.outputs:
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            parts.append(
                "ERROR " + "\n".join(ANSI_ESCAPE.sub("", line) for line in output.traceback)
            )
        else:
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_typo_engine_unknown_job_and_bare_linkis(linkis_env: Any, tmp_path: Path) -> None:
    typo, other, attach, kill, log, bare = run_cells(
        "%%linkis -e sparkk\nselect 1",
        "%%linkis -e doris\nselect 1",
        "%linkis attach 999999",
        "%linkis kill 999999",
        "%linkis log exec_id_nothing_like_it",
        "%linkis",
        cwd=tmp_path,
    )
    assert typo.startswith("ERROR Unknown engine 'sparkk': did you mean `-e spark`?")
    assert "Known engines:" in typo and "python" in typo and "shell" in typo
    assert "engine=" not in typo and "client." not in typo and "ValueError" not in typo
    assert "did you mean" not in other and "`-e doris-VERSION`" in other

    for ref, text in (("999999", attach), ("999999", kill), ("exec_id_nothing_like_it", log)):
        assert text == f"ERROR No Linkis job {ref} is visible to you; `%linkis jobs` lists yours."

    assert bare.startswith("%linkis SUBCOMMAND"), bare[:80]
    assert "::" not in bare and "usage of each:" in bare
