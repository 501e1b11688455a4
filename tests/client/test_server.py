"""The client against the real embedded server (and the fault proxy in front of it)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import openpyxl
import pytest
from support.bodies import submit_body
from support.faultproxy import FaultProxy
from support.inprocess import SESSION_TIMEOUT, InProcessServer
from support.serverproc import ServerProcess, start_server, stop_child
from support.waiting import wait_until

from linkis_kernel import wire
from linkis_kernel.client import (
    JobStatus,
    LinkisAuthError,
    LinkisNotFoundError,
    LinkisRestClient,
    LinkisSubmitUncertainError,
    LinkisTransportError,
    SubmitResult,
)


def wait_for_end(client: LinkisRestClient, job: SubmitResult, timeout: float = 20) -> JobStatus:
    def final() -> JobStatus | None:
        status = client.status(job.exec_id, job.task_id)
        return status if status.state in wire.TERMINAL_STATES else None

    return wait_until(final, timeout, 0.05, message=f"job {job.task_id} did not finish")


def wait_for_state(client: LinkisRestClient, job: SubmitResult, state: str) -> None:
    wait_until(
        lambda: client.status(job.exec_id, job.task_id).state == state,
        15,
        0.05,
        message=f"job never reached {state}",
    )


def tasks_with(client: LinkisRestClient, marker: str) -> list:
    page = client.jobhistory_list(page_size=100)
    return [t for t in page.tasks if marker in (t.execution_code or "")]


def token_client(server: ServerProcess, url: str | None = None, **options) -> LinkisRestClient:
    """A token client for `server`, reached through `url` (a fault proxy) when given."""
    return LinkisRestClient(url or server.url, user=server.user, token=server.token, **options)


@contextmanager
def password_client_via_proxy(
    server: ServerProcess | InProcessServer,
) -> Iterator[tuple[FaultProxy, LinkisRestClient]]:
    """A password client talking to `server` through a fault proxy that logs every request."""
    with (
        FaultProxy(server.url) as proxy,
        LinkisRestClient(proxy.url, user=server.user, password=server.password) as client,
    ):
        yield proxy, client


@pytest.fixture(scope="module")
def client(linkis_server: ServerProcess) -> Iterator[LinkisRestClient]:
    with token_client(linkis_server) as client:
        yield client


@pytest.fixture(scope="module")
def finished(linkis_server: ServerProcess, client: LinkisRestClient) -> SubmitResult:
    """A finished SQL job with two result sets: a table with nulls, then a second table."""
    code = "select 1 as id, NULL as n, 'NULL' as s union all select 2, 'x', 'y';\nselect 42 as k"
    job = client.entrance_submit(submit_body(code, user=linkis_server.user))
    assert wait_for_end(client, job).state == wire.SUCCEED
    return job


def test_submit_status_progress_and_logs(
    client: LinkisRestClient, finished: SubmitResult, linkis_server: ServerProcess
) -> None:
    assert finished.exec_id.startswith(wire.EXEC_ID_PREFIX) and finished.task_id > 0
    status = client.status(finished.exec_id)
    assert status.state == wire.SUCCEED and status.exec_id == finished.exec_id
    progress = client.progress(finished.exec_id, finished.task_id)
    assert progress.progress == 1.0
    assert client.progress_with_resource(finished.exec_id).progress == 1.0
    first = client.log(finished.exec_id, from_line=1, size=3)
    assert len(first.all) == 3 and first.from_line == 4
    rest = client.log(finished.exec_id, from_line=first.from_line, size=1000)
    assert rest.all and rest.all[0] != first.all[-1]
    assert any("Variables substitution" in line for line in first.info + rest.info)


def test_entrance_execute_old_format(client: LinkisRestClient) -> None:
    job = client.entrance_execute(
        {"executionCode": "select 7 as seven", "runType": "sql", "executeApplicationName": "spark"}
    )
    assert wait_for_end(client, job).state == wire.SUCCEED
    task = client.jobhistory_get(job.task_id)
    assert task.labels and any(label.startswith("engineType:spark") for label in task.labels)


def test_history_results_and_open_file_nulls(
    client: LinkisRestClient, finished: SubmitResult
) -> None:
    task = client.jobhistory_get(finished.task_id)
    assert task.status == wire.SUCCEED and task.task_id == finished.task_id
    assert task.stronger_exec_id == finished.exec_id and task.created_time.tzinfo is not None
    page = client.jobhistory_list(status=[wire.SUCCEED], page_size=5)
    assert finished.task_id in [t.task_id for t in page.tasks] and page.total >= 1
    tree = client.dir_file_trees(task.result_location)
    paths = tree.result_paths()
    assert [p.rsplit("/", 1)[1] for p in paths] == ["_0.dolphin", "_1.dolphin"]
    first = client.open_file(paths[0])
    assert first.type == wire.RESULT_TABLE and [c.name for c in first.columns] == ["id", "n", "s"]
    assert first.rows == [["1", None, "NULL"], ["2", "x", "y"]]
    assert client.open_file(paths[0], null_value="BLANK").rows[0][1] == ""
    assert client.open_file(paths[0], page=2).rows == []
    assert client.open_file(paths[1]).rows == [["42"]]
    assert client.dir_file_trees(task.result_location + "/missing") is None
    log = client.open_log(task.log_path)
    assert log.all and log.error == []


def test_metadata_lists(client: LinkisRestClient) -> None:
    databases = client.databases()
    assert "demo" in databases
    tables = client.tables("demo")
    assert tables and all(t.database == "demo" for t in tables)
    columns = client.columns("demo", tables[0].name)
    assert columns and all(c.name and c.type for c in columns)


def test_kill_a_running_job_and_kill_jobs(
    client: LinkisRestClient, linkis_server: ServerProcess
) -> None:
    user = linkis_server.user
    sleeper = submit_body("sleep 30", run_type="shell", engine="shell-1", user=user)
    first = client.entrance_submit(sleeper)
    second = client.entrance_submit(sleeper)
    wait_for_state(client, first, wire.RUNNING)
    assert "Successfully killed" in client.kill(first.exec_id, first.task_id)
    assert wait_for_end(client, first).state == wire.CANCELLED
    answers = client.kill_jobs([second.exec_id], [second.task_id])
    assert [a["status"] for a in answers] == [0]
    assert wait_for_end(client, second).state == wire.CANCELLED


def test_failed_job_reports_err_code(
    client: LinkisRestClient, linkis_server: ServerProcess
) -> None:
    job = client.entrance_submit(
        submit_body("select * from no_such_table", user=linkis_server.user)
    )
    assert wait_for_end(client, job).state == wire.FAILED
    task = client.jobhistory_get(job.task_id)
    assert task.err_code and "no_such_table" in (task.err_desc or "")


def test_unknown_task_is_not_found(client: LinkisRestClient) -> None:
    with pytest.raises(LinkisNotFoundError) as caught:
        client.jobhistory_get(987654321)
    assert caught.value.http_status == 400 and "987654321" in str(caught.value)


def test_password_login_logout_and_relogin(linkis_server: ServerProcess) -> None:
    with LinkisRestClient(
        linkis_server.url, user=linkis_server.user, password=linkis_server.password
    ) as client:
        info = client.login()
        assert info.user_name == linkis_server.user and info.session_timeout_ms
        assert client.databases()
        client.logout()
        assert client.databases()  # logs in again on first need


def test_token_login_endpoint(client: LinkisRestClient, linkis_server: ServerProcess) -> None:
    assert client.login().user_name == linkis_server.user


def test_expired_session_is_renewed_with_exactly_one_login(
    clocked: InProcessServer,
) -> None:
    with password_client_via_proxy(clocked) as (proxy, client):
        assert client.databases()
        clocked.clock.advance(SESSION_TIMEOUT + 1)
        assert client.databases()
    assert len(proxy.paths(r"user/login$")) == 2
    statuses = [r.status for r in proxy.requests if r.path.endswith("datasource/dbs")]
    assert statuses == [200, 401, 200]


def test_download_on_an_expired_session_logs_in_again(
    clocked: InProcessServer, tmp_path: Path
) -> None:
    with password_client_via_proxy(clocked) as (proxy, client):
        job = client.entrance_submit(submit_body("select 3 as x", user=clocked.user))
        assert wait_for_end(client, job).state == wire.SUCCEED
        location = client.jobhistory_get(job.task_id).result_location
        path = client.dir_file_trees(location).result_paths()[0]
        clocked.clock.advance(SESSION_TIMEOUT + 1)
        target = client.resultset_to_excel(path, tmp_path / "x.csv")
    assert target.read_text().splitlines() == ["x", "3"]
    assert len(proxy.paths(r"user/login$")) == 2
    statuses = [r.status for r in proxy.requests if r.path.endswith("resultsetToExcel")]
    assert statuses == [401, 200]


def test_concurrent_calls_on_an_expired_session_log_in_again_only_once(
    clocked: InProcessServer,
) -> None:
    with password_client_via_proxy(clocked) as (proxy, client):
        assert client.databases()
        clocked.clock.advance(SESSION_TIMEOUT + 1)
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda _: client.databases(), range(4)))
    assert all("demo" in answer for answer in answers)
    assert len(proxy.paths(r"user/login$")) == 2


def test_wrong_password_fails_fast_with_a_clear_message(
    clocked: InProcessServer,
) -> None:
    wrong = "definitely-Wrong-pw"
    with FaultProxy(clocked.url) as proxy:
        client = LinkisRestClient(proxy.url, user=clocked.user, password=wrong)
        with client, pytest.raises(LinkisAuthError) as caught:
            client.databases()
    # One login, neither retried nor followed by the call it was for.
    assert [path.rsplit("/", 1)[1] for path in proxy.paths()] == ["publicKey", "login"]
    text = str(caught.value)
    assert f"refused the login of user {clocked.user!r}" in text
    assert "LINKIS_PASSWORD" in text and wrong not in text and wrong not in repr(caught.value)


def test_wrong_token_is_an_auth_error_without_the_token(linkis_server: ServerProcess) -> None:
    wrong = "WRONG-token-abcdef"
    client = LinkisRestClient(linkis_server.url, user=linkis_server.user, token=wrong)
    with client, pytest.raises(LinkisAuthError) as caught:
        client.databases()
    assert wrong not in str(caught.value) and "LINKIS_TOKEN" in str(caught.value)


def test_html_502_on_submit_is_a_transport_error_with_excerpt(
    linkis_server: ServerProcess,
) -> None:
    with FaultProxy(linkis_server.url) as proxy:
        proxy.inject("html502", r"entrance/submit$")
        c = token_client(linkis_server, proxy.url)
        with c, pytest.raises(LinkisTransportError) as caught:
            c.entrance_submit(submit_body("select 1", user=linkis_server.user))
        error = caught.value
        assert error.http_status == 502 and error.excerpt.startswith("502 Bad Gateway")
        assert "<" not in error.excerpt and "HTTP 502" in str(error)
        assert len(proxy.paths("entrance/submit$")) == 1  # not retried


def test_html_502_and_503_on_gets_are_retried_transparently(
    linkis_server: ServerProcess, finished: SubmitResult
) -> None:
    with FaultProxy(linkis_server.url) as proxy:
        proxy.inject("html502", r"/status$")
        proxy.inject("html503", r"/status$")
        proxy.inject("truncate", r"filesystem/openFile$")
        proxy.inject("drop", r"jobhistory/\d+/get$")
        with token_client(linkis_server, proxy.url) as c:
            assert c.status(finished.exec_id).state == wire.SUCCEED
            task = c.jobhistory_get(finished.task_id)
            paths = c.dir_file_trees(task.result_location).result_paths()
            assert c.open_file(paths[0]).rows[1] == ["2", "x", "y"]
        faults = [(r.fault, r.status) for r in proxy.requests if r.fault]
        assert faults == [("html502", 502), ("html503", 503), ("drop", None), ("truncate", 200)]
        assert [r.status for r in proxy.requests if r.path.endswith("/status")] == [502, 503, 200]
        assert [r.fault for r in proxy.requests if r.path.endswith("openFile")] == [
            "truncate",
            None,
        ]


def test_slow_answer_beyond_the_read_timeout_is_retried_for_gets(
    linkis_server: ServerProcess,
) -> None:
    with FaultProxy(linkis_server.url) as proxy:
        proxy.inject("delay", r"datasource/dbs$", delay_s=1.0)
        with token_client(linkis_server, proxy.url, timeout=(2.0, 0.5)) as client:
            assert "demo" in client.databases()
        assert [r.fault for r in proxy.requests] == ["delay", None]


def test_reset_during_submit_is_uncertain_and_never_resubmitted(
    linkis_server: ServerProcess, client: LinkisRestClient
) -> None:
    marker = f"reset_{uuid.uuid4().hex[:8]}"
    with FaultProxy(linkis_server.url) as proxy:
        proxy.inject("reset", r"entrance/submit$")
        c = token_client(linkis_server, proxy.url)
        with c, pytest.raises(LinkisSubmitUncertainError) as caught:
            c.entrance_submit(submit_body(f"select '{marker}' as m", user=linkis_server.user))
        assert len(proxy.paths("entrance/submit$")) == 1
    assert "may have been created" in str(caught.value)
    assert len(tasks_with(client, marker)) == 1  # the server did create it, exactly once


def test_read_timeout_on_submit_is_uncertain_and_not_resent(
    linkis_server: ServerProcess, client: LinkisRestClient
) -> None:
    marker = f"slow_{uuid.uuid4().hex[:8]}"
    with FaultProxy(linkis_server.url) as proxy:
        proxy.inject("delay", r"entrance/submit$", delay_s=1.0)
        c = token_client(linkis_server, proxy.url, timeout=(2.0, 0.3))
        with c, pytest.raises(LinkisSubmitUncertainError) as caught:
            c.entrance_submit(submit_body(f"select '{marker}' as m", user=linkis_server.user))
        (submit,) = proxy.requests  # delivered to the server after the client gave up:
        wait_until(lambda: submit.status is not None, 10, message="the submit never got through")
    assert "no answer within 0.3 s" in str(caught.value)
    assert len(tasks_with(client, marker)) == 1


def test_resultset_to_excel_csv_and_xlsx(
    client: LinkisRestClient, finished: SubmitResult, tmp_path: Path
) -> None:
    task = client.jobhistory_get(finished.task_id)
    path = client.dir_file_trees(task.result_location).result_paths()[0]
    seen: list[int] = []
    csv_path = client.resultset_to_excel(path, tmp_path / "r.csv", on_progress=seen.append)
    assert csv_path.read_text().splitlines() == ["id,n,s", "1,NULL,NULL", "2,x,y"]
    assert seen and seen[-1] == csv_path.stat().st_size
    xlsx = client.resultset_to_excel(path, tmp_path / "r.xlsx", output_type="xlsx")
    sheet = openpyxl.load_workbook(xlsx).active
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert rows[0] == ["id", "n", "s"] and len(rows) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.csv", "r.xlsx"]


def test_resultset_to_excel_error_body_leaves_no_file(
    client: LinkisRestClient, finished: SubmitResult, tmp_path: Path
) -> None:
    task = client.jobhistory_get(finished.task_id)
    missing = task.result_location + "/_9.dolphin"
    with pytest.raises(LinkisNotFoundError) as caught:
        client.resultset_to_excel(missing, tmp_path / "r.csv")
    assert caught.value.http_status == 200 and "error(" not in caught.value.message
    assert list(tmp_path.iterdir()) == []


def test_from_env_uses_url_and_token(
    linkis_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LINKIS_URL", linkis_server.url)
    monkeypatch.setenv("LINKIS_USER", linkis_server.user)
    monkeypatch.setenv("LINKIS_TOKEN", linkis_server.token)
    monkeypatch.delenv("LINKIS_PASSWORD", raising=False)
    with LinkisRestClient.from_env(retries=1) as client:
        assert client.auth_kind == "token" and client.retries == 1
        assert not client.embedded
        assert "demo" in client.databases()


def test_from_env_without_url_starts_the_embedded_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("LINKIS_URL", "LINKIS_USER", "LINKIS_PASSWORD", "LINKIS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path))
    connection = tmp_path / "linkis-kernel" / "connection.json"
    try:
        with LinkisRestClient.from_env() as client:
            assert client.auth_kind == "token" and client.embedded
            assert client.url == json.loads(connection.read_text())["url"]
            assert "demo" in client.databases()
    finally:
        if connection.exists():
            stop_child(json.loads(connection.read_text())["pid"])


def test_cut_off_download_leaves_no_file(
    linkis_server: ServerProcess, finished: SubmitResult, tmp_path: Path
) -> None:
    with FaultProxy(linkis_server.url) as proxy:
        proxy.inject("truncate", r"filesystem/resultsetToExcel$")
        c = token_client(linkis_server, proxy.url)
        with c:
            task = c.jobhistory_get(finished.task_id)
            path = c.dir_file_trees(task.result_location).result_paths()[0]
            with pytest.raises(LinkisTransportError) as caught:
                c.resultset_to_excel(path, tmp_path / "r.xlsx", output_type="xlsx")
    assert "cut off" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_global_variables_round_trip_and_fill_a_job(tmp_path: Path) -> None:
    # A server of its own: global variables fill `${...}` in every later job of the user.
    with start_server(tmp_path / "data") as server, server.linkis_client() as client:
        assert client.global_variables() == {}
        client.set_global_variables({"region": "eu", "n": 2})
        client.set_global_variable("n", 41)
        assert client.global_variables() == {"region": "eu", "n": "41"}
        job = client.submit("select '${region}' as region, ${n} + 1 as answer", engine="spark")
        assert job.wait().state == wire.SUCCEED
        assert job.results()[0].data.values.tolist() == [["eu", 42]]
        client.set_global_variables({})
        assert client.global_variables() == {}
