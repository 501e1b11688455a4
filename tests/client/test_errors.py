"""Exception texts, IPython rendering, client-side validation and reprs without secrets."""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

from linkis_kernel import client as client_pkg
from linkis_kernel.client import (
    LOG,
    PYTHON_COMMANDS,
    LinkisError,
    LinkisJobError,
    LinkisRestClient,
    LinkisSubmitUncertainError,
    LinkisTimeoutError,
    LinkisTransportError,
    LinkisValidationError,
)

PASSWORD = "pa55-Word-ZZ"
TOKEN = "TOKEN-9f8e7d6c"


def test_job_error_renders_a_short_traceback() -> None:
    error = LinkisJobError(
        task_id=42,
        exec_id="exec_id018016linkis-cg-entrancehost:9104IDE_u_spark_3",
        state="Failed",
        err_code=41002,
        err_desc="Table default.t1 not found",
        error_lines=[f"2024-12-19 11:52:01.052 ERROR line {i}" for i in range(8)],
    )
    lines = error._render_traceback_()
    assert lines[0] == "LinkisJobError: Linkis job 42 ended Failed"
    assert any("errCode 41002: Table default.t1 not found" in line for line in lines)
    assert not [line for line in lines if "line" in line or "exec_id" in line], (
        "the errDesc says why; the log lines are not repeated, the exec id is not shown"
    )
    assert lines[-1] == "  Run `client.job(42).log()` to see the full log."
    shell = error.traceback_lines({**PYTHON_COMMANDS, LOG: "linkis-kernel log {ref}"})
    assert shell[-1] == "  Run `linkis-kernel log 42` to see the full log."
    text = str(error)
    assert text.startswith("Linkis job 42 ended Failed: errCode 41002, Table default.t1 not found")
    assert "ERROR line" not in text and "`client.job(42).log()`" in text
    assert isinstance(error, LinkisError) and error.state == "Failed"
    no_desc = LinkisJobError(
        task_id=43, exec_id=None, state="Failed", error_lines=error.error_lines
    )
    assert no_desc.traceback_lines(PYTHON_COMMANDS)[1:-1] == [f"  line {i}" for i in range(3, 8)]
    assert "Last error: line 7." in str(no_desc)


def test_cancelled_job_error_without_code() -> None:
    error = LinkisJobError(task_id=5, exec_id=None, state="Cancelled")
    assert str(error) == (
        "Linkis job 5 ended Cancelled. Run `client.job(5).log()` to see the full log."
    )


def test_timeout_error_says_the_job_still_runs_and_how_to_reattach() -> None:
    error = LinkisTimeoutError(task_id=9, exec_id="e", waited_s=30.0, state="Running")
    text = str(error)
    assert "after 30 s" in text and "still running" in text and "(state Running)" in text
    assert "Run `client.job(9)` to re-attach, or `client.job(9).kill()` to kill it." in text


def test_server_error_str_is_one_sentence_with_context() -> None:
    error = LinkisTransportError(
        "The server answered HTTP 502 with a non-Linkis body: 502 Bad Gateway",
        method="GET",
        url="http://h:9001/api/rest_j/v1/jobhistory/list",
        http_status=502,
        excerpt="502 Bad Gateway",
    )
    assert str(error) == (
        "GET http://h:9001/api/rest_j/v1/jobhistory/list: The server answered HTTP 502 with a "
        "non-Linkis body: 502 Bad Gateway (HTTP 502). Check that the Linkis gateway is running "
        "and LINKIS_URL points at it, then retry."
    )


def test_submit_uncertain_error_says_how_to_find_the_job() -> None:
    error = LinkisSubmitUncertainError("the connection broke", method="POST", url="u")
    assert isinstance(error, LinkisTransportError)
    assert "may have been created" in str(error) and "jobhistory_list" in str(error)


def test_client_repr_and_vars_of_errors_hold_no_secret() -> None:
    with LinkisRestClient("http://127.0.0.1:1/", user="u", password=PASSWORD) as c1:
        assert repr(c1) == "LinkisRestClient(url='http://127.0.0.1:1', user='u', auth='password')"
    with LinkisRestClient("http://127.0.0.1:1", user="u", token=TOKEN) as c2:
        assert TOKEN not in repr(c2) and c2.auth_kind == "token"


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"url": "ftp://host"}, "http(s)"),
        ({"url": ""}, "http(s)"),
        ({"url": "http://u:secret@host:9001"}, "must not carry credentials"),
        ({"url": "http://h", "token": TOKEN}, "without a user name"),
        ({"url": "http://h", "password": PASSWORD}, "without a user name"),
    ],
)
def test_bad_construction_is_a_validation_error_without_secrets(kwargs: dict, needle: str) -> None:
    with pytest.raises(LinkisValidationError) as caught:
        LinkisRestClient(**kwargs)
    assert needle in str(caught.value)
    for secret in ("secret", PASSWORD, TOKEN):
        assert secret not in str(caught.value)


def test_bad_arguments_fail_before_any_request() -> None:
    with LinkisRestClient("http://127.0.0.1:1", user="u", token=TOKEN, retries=0) as client:
        with pytest.raises(LinkisValidationError, match="page_size must be"):
            client.open_file("p", page_size=100001)
        with pytest.raises(LinkisValidationError, match="page must be"):
            client.jobhistory_list(page=0)
        with pytest.raises(LinkisValidationError, match="one task id per exec id"):
            client.kill_jobs(["a", "b"], [1])
        with pytest.raises(LinkisValidationError, match="exec id"):
            client.status("")
        with pytest.raises(LinkisValidationError, match="output_type"):
            client.resultset_to_excel("p", "/tmp/x.pdf", output_type="pdf")


def test_unreachable_server_is_a_transport_error_without_traceback_chain() -> None:
    client = LinkisRestClient("http://127.0.0.1:1", user="u", token=TOKEN, retries=1)
    with client, pytest.raises(LinkisTransportError) as caught:
        client.databases()
    error = caught.value
    assert "could not connect" in str(error) and error.__suppress_context__
    assert TOKEN not in str(error)


def test_refused_connection_on_submit_is_not_uncertain() -> None:
    client = LinkisRestClient("http://127.0.0.1:1", user="u", token=TOKEN, retries=0)
    with client, pytest.raises(LinkisTransportError) as caught:
        client.entrance_submit({"executionContent": {"code": "select 1"}})
    assert not isinstance(caught.value, LinkisSubmitUncertainError)


def test_package_exports_the_error_hierarchy() -> None:
    import linkis_kernel

    assert linkis_kernel.LinkisJobError is client_pkg.LinkisJobError
    names = [n for n in client_pkg.__all__ if n.startswith("Linkis") and n.endswith("Error")]
    assert all(issubclass(getattr(client_pkg, n), LinkisError) for n in names)


def test_from_env_reads_the_environment_and_explicit_credentials_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LINKIS_URL", "http://linkis-host:9001/api/rest_j/v1/")
    monkeypatch.setenv("LINKIS_USER", "alice")
    monkeypatch.setenv("LINKIS_TOKEN", TOKEN)
    monkeypatch.delenv("LINKIS_PASSWORD", raising=False)
    with LinkisRestClient.from_env() as from_env:
        assert (from_env.url, from_env.user, from_env.auth_kind) == (
            "http://linkis-host:9001",
            "alice",
            "token",
        )
    with LinkisRestClient.from_env(password=PASSWORD, user="bob") as overridden:
        assert (overridden.user, overridden.auth_kind) == ("bob", "password")


def test_errors_survive_pickling() -> None:
    job_error = LinkisJobError(task_id=3, exec_id="e", state="Failed", err_code=1, err_desc="d")
    transport = LinkisTransportError("cut", method="GET", url="u", http_status=502, excerpt="x")
    for error in (job_error, transport, LinkisTimeoutError(task_id=1, exec_id="e", waited_s=2)):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
        assert copy.__dict__ == error.__dict__


def test_client_package_imports_no_notebook_or_dataframe_libraries_nor_upper_layers() -> None:
    code = (
        "import sys, linkis_kernel.client; "
        "heavy = ['pandas', 'IPython', 'ipywidgets', 'cryptography']; "
        "upper = [m for m in sys.modules if m.startswith('linkis_kernel.') "
        "and m not in ('linkis_kernel.wire', 'linkis_kernel.version') "
        "and not m.startswith('linkis_kernel.client')]; "
        "print(sorted(upper + [m for m in heavy if m in sys.modules]))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"
