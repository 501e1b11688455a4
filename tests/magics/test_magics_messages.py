"""What a user reads in a notebook when something is off: typos, unknown jobs, bare commands.

Each test runs real cells through nbclient on the python3 kernel (errors allowed, as a user
who keeps going) and reads the outputs as the notebook shows them.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from support.jupyterenv import free_port

from linkis_kernel.client import EMBEDDED_NOTE

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


class NotLinkis(BaseHTTPRequestHandler):
    """A web server that is no Linkis gateway: every path is a 404 page."""

    def do_GET(self) -> None:
        self.send_error(404, "Nothing here")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def web_page_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), NotLinkis)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


@pytest.fixture
def embedded_env(linkis_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """No LINKIS_* settings: the kernel finds the shared server as its embedded one."""
    data = tmp_path / "jupyter-data"
    data.mkdir()
    (data / "linkis-kernel").symlink_to(linkis_server.data_dir)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(data))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    for name in ("URL", "USER", "PASSWORD", "TOKEN", "ENGINE", "CREATOR"):
        monkeypatch.delenv(f"LINKIS_{name}", raising=False)
    return linkis_server


def test_connect_checks_the_gateway_and_a_bare_connect_goes_back_to_embedded(
    embedded_env: Any, web_page_url: str, tmp_path: Path
) -> None:
    server = embedded_env
    nothing = f"http://127.0.0.1:{free_port()}"
    refused, web_page, no_login, bad_token, kept, good, back, status = run_cells(
        f"%linkis connect {nothing}",
        f"%linkis connect {web_page_url}",
        f"%linkis connect {server.url}",
        f"import os\nos.environ['LINKIS_TOKEN'] = 'not-the-token'\n"
        f"%linkis connect {server.url} --user {server.user}",
        "from linkis_kernel.magics import linkis_magics\n"
        "print(repr(linkis_magics(get_ipython()).url))",
        f"os.environ['LINKIS_TOKEN'] = '{server.token}'\n"
        f"%linkis connect {server.url} --user {server.user}",
        "del os.environ['LINKIS_TOKEN']\n%linkis connect",
        "%linkis status",
        cwd=tmp_path,
    )
    assert refused == (
        f"ERROR Not connected: nothing answers at {nothing} (connection refused). "
        "Check the address and that the gateway runs."
    )
    assert web_page.startswith(
        f"ERROR Not connected: {web_page_url} answered, but not as a Linkis gateway (HTTP 404"
    )
    assert no_login.startswith(f"ERROR Not connected: the Linkis gateway at {server.url} wants")
    assert "`--user NAME`" in no_login
    assert bad_token == (
        f"ERROR Not connected: the Linkis gateway at {server.url} refused the token of user "
        f"'{server.user}'. Check LINKIS_TOKEN and LINKIS_USER (the token must be known to the "
        "gateway)."
    )
    assert "not-the-token" not in bad_token
    assert kept.strip() == "None", "a failed connect leaves the URL setting as it was"
    assert good.strip() == (f"Connected to {server.url} as {server.user} (token auth).")
    embedded = f"Connected to the embedded Linkis at {server.url} as {server.user} (token auth)."
    assert back.strip().endswith(embedded) and status.strip() == embedded
    for text in (refused, web_page, no_login, bad_token):
        assert "Connected to" not in text and "/api/rest_j" not in text


def test_cards_and_errors_say_things_once(linkis_env: Any, tmp_path: Path) -> None:
    ok, failed = run_cells(
        "%%linkis\nselect 1 as one",
        "%%linkis\nselect * from no_such_table",
        cwd=tmp_path,
    )
    card = ok.splitlines()[0]
    assert re.fullmatch(r"Linkis spark-3\.2\.1 \(sql\) · task \d+ · Succeed in [\d.]+s", card)
    assert "exec id" not in ok and "exec_id" not in ok
    assert "fetch limit" not in ok, "nothing was cut, so no limit is named"

    assert "exec_id" not in failed and "exec id" not in failed
    assert failed.count("Table with name no_such_table does not exist") == 1, failed
    assert not re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", failed), "no timestamped log lines"
    assert re.search(r"Run `%linkis log \d+` to see the full log\.", failed)


def test_an_undefined_variable_is_named_before_the_job_runs(
    linkis_env: Any, tmp_path: Path
) -> None:
    undefined, _, python_var, given, shell = run_cells(
        "%%linkis\nselect ${x} as a",
        "x = 5",
        "%%linkis\nselect ${x} as a",
        "%%linkis --var y=2\n--@set z=3\nselect ${y} as b, ${z} as c, '${run_date}' as d",
        "%%linkis -e shell\necho ${HOME:-none}",
        cwd=tmp_path,
    )
    warning = undefined.splitlines()[0]
    assert warning.startswith("Warning: ${x} is not defined here")
    assert warning.endswith("Define it with `--var x=...`.")
    for text in (python_var, given, shell):
        assert "Warning" not in text, text


def test_labels_say_what_really_runs(embedded_env: Any, tmp_path: Path) -> None:
    python_job, log = run_cells(
        "%%linkis -e python --progress text\nprint(6 * 7)",
        "last = %linkis jobs -n 1\n%linkis log {last.task_id[0]} --level info",
        cwd=tmp_path,
    )
    assert EMBEDDED_NOTE.split("{url} ")[1] in python_job
    assert "(DuckDB)." not in python_job
    # no made-up stages: a status line shows at most the engine start, a stage of one
    assert not re.search(r"stages \d+/(?!1\b)\d+", python_job)
    assert "YARN" not in python_job
    version = ".".join(map(str, sys.version_info[:3]))
    assert f"Python {version} runs it." in log
