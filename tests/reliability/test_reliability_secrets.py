"""No secret leaks: notebook outputs, the kernel's stderr, the server's logs and the texts of
client and job errors never hold the password, the token or a session cookie."""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from support.faultproxy import FaultProxy
from support.serverproc import ServerProcess, start_server

from linkis_kernel import LinkisClient
from linkis_kernel.client import LinkisAuthError, LinkisError, LinkisJobError

COOKIE_FILE = "cookies.txt"
NOTEBOOK_CELLS = [
    "%load_ext linkis_kernel",
    "%linkis status",
    "%%linkis\nselect 42 as answer",
    "%%linkis\nselect * from no_such_table_anywhere",
    "%%linkis -e shell\necho started; exit 3",
    "%linkis jobs",
    # Keep the session cookie the magics hold, to look for it in every output (no output here).
    "_client = get_ipython().find_magic('linkis').__self__.connection()\n"
    f"open({COOKIE_FILE!r}, 'w').write('\\n'.join(c.value for c in _client._session.cookies))",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("secrets") / "data") as server:
        yield server


def _secrets(server: ServerProcess, *extra: str) -> dict[str, str]:
    found = {"password": server.password, "token": server.token}
    found.update({f"extra {i}": value for i, value in enumerate(extra) if value})
    assert all(len(value) >= 8 for value in found.values()), "secrets too short to scan for"
    return found


def _assert_clean(where: str, text: str, secrets: dict[str, str]) -> None:
    for name, value in secrets.items():
        assert value not in text, f"the {name} appears in {where}"


def _outputs_text(notebook: nbformat.NotebookNode) -> str:
    """Every output of every cell as saved, plus the plain text of streams and tracebacks."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(json.dumps(output, ensure_ascii=False))
            parts.append(output.get("text", ""))
            parts.extend(output.get("traceback", []))
            parts.extend(str(value) for value in output.get("data", {}).values())
    return "\n".join(parts)


def test_notebook_outputs_kernel_stderr_and_server_logs_hold_no_secret(
    server: ServerProcess, tmp_path: Path
) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    env = {
        **os.environ,
        "LINKIS_URL": server.url,
        "LINKIS_USER": server.user,
        "LINKIS_PASSWORD": server.password,
        "IPYTHONDIR": str(tmp_path / "ipython"),
    }
    env.pop("LINKIS_TOKEN", None)
    stderr_path = tmp_path / "kernel-stderr.txt"
    with open(stderr_path, "wb") as stderr:
        client = NotebookClient(
            notebook,
            timeout=60,
            kernel_name="python3",
            allow_errors=True,
            resources={"metadata": {"path": str(tmp_path)}},
        )
        client.execute(env=env, stderr=stderr)
    outputs = _outputs_text(notebook)
    assert "42" in outputs and "no_such_table_anywhere" in outputs  # the cells really ran
    errors = [o for c in notebook.cells for o in c.outputs if o.output_type == "error"]
    assert len(errors) == 2, outputs  # the failing SQL and the failing shell job
    cookies = (tmp_path / COOKIE_FILE).read_text().split("\n")
    assert cookies and all(cookies), "the magics held no session cookie: not password auth?"
    secrets = _secrets(server, *cookies)
    _assert_clean("the notebook outputs", outputs, secrets)
    _assert_clean("the kernel's stderr", stderr_path.read_text(errors="replace"), secrets)
    _assert_clean("server.log", (server.data_dir / "server.log").read_text(), secrets)
    _assert_clean("the server's output", server.log_text(), secrets)


def _error_texts(error: BaseException) -> str:
    texts = [str(error), repr(error), repr(pickle.loads(pickle.dumps(error)))]
    texts.extend(str(value) for value in vars(error).values())
    return "\n".join(texts)


def test_client_and_job_errors_hold_no_secret(server: ServerProcess) -> None:
    logged_in = LinkisClient(server.url, user=server.user, password=server.password)
    logged_in.login()
    cookies = [c.value for c in logged_in._session.cookies]
    secrets = _secrets(server, *cookies, "wrong-password-42", "wrong-token-4242")
    raised: list[LinkisError] = []

    def capture(action) -> None:
        with pytest.raises(LinkisError) as caught:
            action()
        raised.append(caught.value)

    wrong_password = LinkisClient(server.url, user=server.user, password="wrong-password-42")
    capture(lambda: wrong_password.submit("select 1"))
    wrong_token = LinkisClient(server.url, user=server.user, token="wrong-token-4242")
    capture(lambda: wrong_token.jobhistory_list())
    with FaultProxy(server.url) as proxy:
        flaky = LinkisClient(proxy.url, user=server.user, password=server.password, retries=0)
        flaky.login()
        proxy.inject("html502", r"/jobhistory/list$")
        capture(lambda: flaky.jobhistory_list())
        proxy.inject("reset", r"/entrance/submit$")
        capture(lambda: flaky.submit("select 1"))
    gone = LinkisClient("http://127.0.0.1:9", user=server.user, password=server.password)
    capture(lambda: gone.jobhistory_list())
    job = logged_in.submit(f"select '{server.token[:3]}' || missing_column", creator="nb")
    capture(lambda: job.wait(timeout=30))
    assert isinstance(raised[0], LinkisAuthError) and isinstance(raised[1], LinkisAuthError)
    assert isinstance(raised[-1], LinkisJobError)
    for error in raised:
        _assert_clean(f"{type(error).__name__}", _error_texts(error), secrets)
    _assert_clean("the client repr", repr(logged_in) + repr(flaky), secrets)
