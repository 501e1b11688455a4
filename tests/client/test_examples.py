"""Every example body of the REST contract, served by a stub gateway, through the real client.

The stub answers each path with a file from tests/fixtures/linkis and the HTTP code
the README there gives it; each row of EXAMPLES says which client call reads it and which model
or exception must come out.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from support.contract import EXAMPLE_EXEC_ID as EXEC_ID
from support.contract import example_files, load_example

import linkis_kernel
from linkis_kernel import wire
from linkis_kernel.client import (
    DirTree,
    FilePage,
    JobStatus,
    LinkisAuthError,
    LinkisError,
    LinkisNotFoundError,
    LinkisPermissionError,
    LinkisRestClient,
    LinkisServerError,
    LinkisTransportError,
    LinkisValidationError,
    LogChunk,
    LoginInfo,
    Progress,
    SubmitResult,
    TaskInfo,
    TaskPage,
)
from linkis_kernel.client.transport import Transport

REQUEST_EXAMPLES = {
    "login-request.json",
    "submit-request.json",
    "execute-request.json",
    "killJobs-request.json",
    "saveGlobalVariable-request.json",
}
# Answers of endpoints the client has no call for; the server's conformance test covers them.
NOT_READ_BY_THE_CLIENT = {
    "baseinfo.json",
    "configuration-engineType.json",
    "error-job-extra-info-no-jobid.json",
    "error-oauth-redirect-disabled.json",
    "governanceStationAdmin.json",
    "jobhistory-diagnosis-query.json",
    "jobhistory-job-extra-info.json",
    "jobhistory-listundonetasks.json",
    "linkisManager-rm-enginekill.json",
    "linkisManager-rm-userresources.json",
    "linkisManager-rm-applicationlist.json",
    "linkisManager-rm-engineType.json",
    "linkisManager-ecrHistoryList.json",
    "linkisManager-listAllECMHealthyStatus.json",
    "linkisManager-listAllNodeHealthyStatus.json",
    "microservice-modifiableLabelKey.json",
    "error-listEMEngines-not-admin.json",
}


def example(name: str) -> dict:
    return load_example(name)


@dataclass
class StubGateway:
    """Answers `routes[path]` = (body bytes, HTTP code); records (method, path, query, body)."""

    routes: dict[tuple[str | None, str], tuple[bytes, int]] = field(default_factory=dict)
    seen: list[tuple[str, str, str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    client_ports: list[int] = field(default_factory=list)
    url: str = ""

    def answer(
        self,
        path: str,
        name_or_body: str | dict | bytes,
        code: int = 200,
        method: str | None = None,
    ) -> None:
        """Answer `path` (only for `method` when given) with an example, a dict or raw bytes."""
        if isinstance(name_or_body, bytes):
            body = name_or_body
        else:
            data = example(name_or_body) if isinstance(name_or_body, str) else name_or_body
            body = json.dumps(data).encode()
        self.routes[(method, path)] = (body, code)

    def bodies(self, path: str) -> list[Any]:
        return [body for _, p, _, body in self.seen if p == path]


def _stub_handler(stub: StubGateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # headers and body leave in one write (no delayed-ACK stalls)

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path, _, query = self.path.partition("?")
            path = path.removeprefix(wire.API_PREFIX + "/")
            stub.seen.append((self.command, path, query, json.loads(raw) if raw else None))
            stub.headers.append(dict(self.headers.items()))
            stub.client_ports.append(self.client_address[1])
            route = stub.routes.get((self.command, path)) or stub.routes.get((None, path))
            body, code = route or (b"<html>no route</html>", 404)
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            if path == "user/login" and code == 200:
                self.send_header("Set-Cookie", f"{wire.SESSION_COOKIE}=tick/et=val==; Path=/")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _serve

    return Handler


@contextmanager
def serving(gateway: StubGateway, tls: ssl.SSLContext | None = None) -> Iterator[StubGateway]:
    """Run `gateway` on 127.0.0.1 (a free port), over TLS when `tls` is given."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _stub_handler(gateway))
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls else "http"
    gateway.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    gateway.answer("user/publicKey", "publicKey.json")
    gateway.answer("user/login", "login.json")
    try:
        yield gateway
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def stub() -> Iterator[StubGateway]:
    with serving(StubGateway()) as gateway:
        yield gateway


def token_client(stub: StubGateway) -> LinkisRestClient:
    return LinkisRestClient(stub.url, user="hadoop", token="tok-123456", retries=0)


def password_client(stub: StubGateway) -> LinkisRestClient:
    return LinkisRestClient(stub.url, user="hadoop", password="pw-abcdef", retries=0)


Call = Callable[[LinkisRestClient], Any]
Check = Callable[[Any], bool]

# example file, HTTP code, path the client calls, the call, model class or exception class, check
EXAMPLES: list[tuple[str, int, str, Call, type, Check | None]] = [
    ("login.json", 200, "user/login", lambda c: c.login(), LoginInfo,
     lambda r: r.user_name == "hadoop" and r.is_admin and r.session_timeout_ms == 3600000),
    ("login-ldap-user.json", 200, "user/login", lambda c: c.login(), LoginInfo,
     lambda r: r.user_name == "alice" and not r.is_admin),
    ("login-already-logged-in.json", 200, "user/login", lambda c: c.login(), LoginInfo,
     lambda r: r.user_name == "hadoop"),
    ("login-failed-ldap.json", 400, "user/login", lambda c: c.login(), LinkisAuthError,
     lambda e: "wrong user name or password" in str(e)),
    ("login-missing-password.json", 400, "user/login", lambda c: c.login(), LinkisAuthError,
     lambda e: "Password can not be blank" in str(e)),
    ("token-login.json", 200, "user/token-login", lambda c: c.login(), LoginInfo,
     lambda r: r.user_name == "hadoop" and r.session_timeout_ms is None),
    ("error-unauthenticated.json", 401, "entrance/submit", lambda c: c.entrance_submit({}),
     LinkisAuthError, lambda e: e.status == -1 and e.http_status == 401),
    ("error-unauthenticated-service-direct.json", 401, "jobhistory/list",
     lambda c: c.jobhistory_list(), LinkisAuthError, lambda e: "LINKIS_TOKEN" in e.hint),
    ("error-login-expired.json", 401, f"entrance/{EXEC_ID}/status", lambda c: c.status(EXEC_ID),
     LinkisAuthError, lambda e: "Login has expired" in e.message),
    ("error-token-invalid.json", 401, "entrance/submit", lambda c: c.entrance_submit({}),
     LinkisAuthError, lambda e: "Invalid Token" in e.message),
    ("submit.json", 200, "entrance/submit", lambda c: c.entrance_submit({"x": 1}), SubmitResult,
     lambda r: r.task_id == 1 and r.exec_id == EXEC_ID),
    ("execute.json", 200, "entrance/execute", lambda c: c.entrance_execute({}), SubmitResult,
     lambda r: r.task_id == 2 and r.exec_id.endswith("IDE_hadoop_hive_0")),
    ("error-submit-missing-engineType.json", 400, "entrance/submit",
     lambda c: c.entrance_submit({}), LinkisValidationError, lambda e: e.error_code == 20009),
    ("error-submit-empty-code.json", 400, "entrance/submit", lambda c: c.entrance_submit({}),
     LinkisValidationError, lambda e: e.error_code == 20007 and "executionCode" in e.message),
    ("status-inited.json", 200, f"entrance/{EXEC_ID}/status", lambda c: c.status(EXEC_ID),
     JobStatus, lambda r: r.state == "Inited" and r.exec_id == EXEC_ID and r.task_id is None),
    ("status-running.json", 200, f"entrance/{EXEC_ID}/status", lambda c: c.status(EXEC_ID),
     JobStatus, lambda r: r.state == "Running"),
    ("status-succeed.json", 200, f"entrance/{EXEC_ID}/status", lambda c: c.status(EXEC_ID),
     JobStatus, lambda r: r.state == "Succeed"),
    ("status-cancelled.json", 200, f"entrance/{EXEC_ID}/status", lambda c: c.status(EXEC_ID),
     JobStatus, lambda r: r.state == "Cancelled"),
    ("status-fallback-history.json", 200, f"entrance/{EXEC_ID}/status",
     lambda c: c.status(EXEC_ID, task_id=1), JobStatus,
     lambda r: r.state == "Succeed" and r.task_id == 1),
    ("status-by-taskid-completed.json", 200, "entrance/1/status", lambda c: c.status("1"),
     JobStatus, lambda r: r.state == "Succeed" and r.task_id == 1 and r.exec_id == ""),
    ("error-unknown-execid.json", 400, f"entrance/{EXEC_ID}/status", lambda c: c.status(EXEC_ID),
     LinkisNotFoundError, lambda e: e.http_status == 400 and e.status == 1),
    ("error-execid-slot-empty.json", 400, f"entrance/{EXEC_ID}/status",
     lambda c: c.status(EXEC_ID), LinkisNotFoundError, None),
    ("error-malformed-execid.json", 400, "entrance/exec_idabc/status",
     lambda c: c.status("exec_idabc"), LinkisServerError,
     lambda e: "NumberFormatException" in e.message and not e.error_code),
    ("gateway-error-taskid-not-exists.json", 200, "entrance/999999/status",
     lambda c: c.status("999999"), LinkisNotFoundError, lambda e: e.http_status == 200),
    ("log.json", 200, f"entrance/{EXEC_ID}/log", lambda c: c.log(EXEC_ID), LogChunk,
     lambda r: len(r.warn) == 1 and not r.error and len(r.all) == 9 and r.from_line == 10),
    ("log-no-new-lines.json", 200, f"entrance/{EXEC_ID}/log", lambda c: c.log(EXEC_ID, 10),
     LogChunk, lambda r: r.all == [] and r.error == [] and r.from_line == 10),
    ("log-distinctLevel-false.json", 200, f"entrance/{EXEC_ID}/log", lambda c: c.log(EXEC_ID),
     LogChunk, lambda r: len(r.all) == 3 and len(r.info) == 2 and len(r.warn) == 1),
    ("log-read-illegal-state.json", 200, f"entrance/{EXEC_ID}/log",
     lambda c: c.log(EXEC_ID, 10), LogChunk, lambda r: r.all == [] and r.from_line == 10),
    ("error-log-job-not-in-memory.json", 400, f"entrance/{EXEC_ID}/log",
     lambda c: c.log(EXEC_ID), LinkisNotFoundError,
     lambda e: e.message.startswith(wire.MSG_JOB_ENDED_PREFIX)),
    ("error-log-by-taskid-completed.json", 400, "entrance/1/log", lambda c: c.log("1"),
     LinkisNotFoundError, None),
    ("progress.json", 200, f"entrance/{EXEC_ID}/progress", lambda c: c.progress(EXEC_ID),
     Progress, lambda r: r.progress == 0.35 and r.stages[0].total == 8 and r.resources is None),
    ("progress-completed.json", 200, f"entrance/{EXEC_ID}/progress",
     lambda c: c.progress(EXEC_ID), Progress, lambda r: r.progress == 1.0 and r.stages == []),
    ("progressWithResource.json", 200, f"entrance/{EXEC_ID}/progressWithResource",
     lambda c: c.progress_with_resource(EXEC_ID), Progress,
     lambda r: r.resources is None and r.stages[0].succeed == 3),
    ("progressWithResource-yarn.json", 200, f"entrance/{EXEC_ID}/progressWithResource",
     lambda c: c.progress_with_resource(EXEC_ID), Progress,
     lambda r: r.resources.memory_rgb == "green" and r.resources.memory_percent == 0.004
     and r.resources.applications[0]["queueCores"] == 2),
    ("progressWithResource-by-taskid-completed.json", 200, "entrance/1/progressWithResource",
     lambda c: c.progress_with_resource("1"), Progress, lambda r: r.progress == 1.0),
    ("error-progress-unknown-execid.json", 400, f"entrance/{EXEC_ID}/progress",
     lambda c: c.progress(EXEC_ID), LinkisNotFoundError, None),
    ("kill.json", 200, f"entrance/{EXEC_ID}/kill", lambda c: c.kill(EXEC_ID), str,
     lambda r: r == "Successfully killed the job(成功kill了job)"),
    ("kill-forced.json", 200, f"entrance/{EXEC_ID}/kill", lambda c: c.kill(EXEC_ID, 1), str,
     lambda r: r.startswith("Forced Kill task")),
    ("error-kill-unknown-no-taskid.json", 400, f"entrance/{EXEC_ID}/kill",
     lambda c: c.kill(EXEC_ID), LinkisNotFoundError, None),
    ("error-kill-by-taskid-completed.json", 400, "entrance/1/kill", lambda c: c.kill("1"),
     LinkisServerError, lambda e: "already completed" in e.message),
    ("error-kill-no-permission.json", 400, f"entrance/{EXEC_ID}/kill", lambda c: c.kill(EXEC_ID),
     LinkisPermissionError, lambda e: "excecute by user:alice" in e.message),
    ("killJobs.json", 200, f"entrance/{EXEC_ID}/killJobs",
     lambda c: c.kill_jobs([EXEC_ID, EXEC_ID.replace("spark", "hive")], [1, 2]), list,
     lambda r: [m["status"] for m in r] == [0, 0]),
    ("jobhistory-get-succeed.json", 200, "jobhistory/1/get", lambda c: c.jobhistory_get(1),
     TaskInfo, lambda r: r.status == "Succeed" and r.progress == 1.0 and r.err_code == 0
     and r.created_time.year == 2024 and r.created_time.tzinfo is not None
     and r.stronger_exec_id == EXEC_ID and r.exec_id == "IDE_hadoop_spark_0"),
    ("jobhistory-get-running.json", 200, "jobhistory/1/get", lambda c: c.jobhistory_get(1),
     TaskInfo, lambda r: r.status == "Running" and r.progress == 0.35 and r.err_code is None),
    ("jobhistory-get-inited.json", 200, "jobhistory/3/get", lambda c: c.jobhistory_get(3),
     TaskInfo, lambda r: r.progress is None and r.exec_id is None and r.result_location is None),
    ("jobhistory-get-failed.json", 200, "jobhistory/4/get", lambda c: c.jobhistory_get(4),
     TaskInfo, lambda r: r.status == "Failed" and r.err_code == 41002
     and "default.t1" in r.err_desc),
    ("jobhistory-get-cancelled.json", 200, "jobhistory/5/get", lambda c: c.jobhistory_get(5),
     TaskInfo, lambda r: r.status == "Cancelled" and r.cost_time_ms == 7000
     and r.labels[1] == "engineType:spark-3.2.1" and r.creator == "IDE"),
    ("error-jobhistory-not-found.json", 400, "jobhistory/999999/get",
     lambda c: c.jobhistory_get(999999), LinkisNotFoundError, None),
    ("jobhistory-list.json", 200, "jobhistory/list", lambda c: c.jobhistory_list(), TaskPage,
     lambda r: [t.task_id for t in r.tasks] == [1, 2] and r.total == 2
     and r.tasks[0].execution_code.startswith("select")),
    ("getDirFileTrees.json", 200, "filesystem/getDirFileTrees", lambda c: c.dir_file_trees("d"),
     DirTree, lambda r: r.result_paths()[1].endswith("_1.dolphin") and r.children[0].size == 186
     and not r.is_leaf and r.children[0].modified.year == 2024),
    ("getDirFileTrees-missing-dir.json", 200, "filesystem/getDirFileTrees",
     lambda c: c.dir_file_trees("d"), type(None), None),
    ("error-filesystem-path-empty.json", 400, "filesystem/getDirFileTrees",
     lambda c: c.dir_file_trees(""), LinkisValidationError, lambda e: e.error_code == 80004),
    ("openFile-table.json", 200, "filesystem/openFile", lambda c: c.open_file("p"), FilePage,
     lambda r: r.type == "2" and [x.name for x in r.columns] == ["id", "name", "amount"]
     and r.columns[0].comment is None and r.columns[1].comment == "user name"
     and r.rows[1] == ["2", "NULL", "0.00"] and r.total_line == 2),
    ("openFile-text.json", 200, "filesystem/openFile", lambda c: c.open_file("p"), FilePage,
     lambda r: r.type == "1" and r.columns is None and r.rows == [["hello"], ["world"]]),
    ("openFile-html.json", 200, "filesystem/openFile", lambda c: c.open_file("p"), FilePage,
     lambda r: r.type == "5" and r.rows[0][0].startswith("<table>")),
    ("openFile-page-past-end.json", 200, "filesystem/openFile",
     lambda c: c.open_file("p", page=2), FilePage,
     lambda r: r.rows == [] and r.total_line == 0 and r.page == 2 and len(r.columns) == 3),
    ("error-openFile-pagesize-too-large.json", 400, "filesystem/openFile",
     lambda c: c.open_file("p", page_size=100000), LinkisValidationError,
     lambda e: e.error_code == 80034),
    ("openLog.json", 200, "filesystem/openLog", lambda c: c.open_log("l"), LogChunk,
     lambda r: len(r.all) == 3 and len(r.warn) == 1 and r.error == []),
    ("metadata-dbs.json", 200, "datasource/dbs", lambda c: c.databases(), list,
     lambda r: r == ["default", "dw_ods", "hadoop_ind"]),
    ("metadata-tables.json", 200, "datasource/tables", lambda c: c.tables("default"), list,
     lambda r: [t.name for t in r] == ["orders", "orders_daily_v"] and r[1].is_view
     and r[0].created_at.year == 2024 and r[0].database == "default"),
    ("metadata-columns.json", 200, "datasource/columns", lambda c: c.columns("default", "o"),
     list, lambda r: [c.partitioned for c in r] == [False, False, True]
     and r[1].comment is None and r[1].type == "decimal(10,2)"),
    ("listGlobalVariable.json", 200, "variable/listGlobalVariable",
     lambda c: c.global_variables(), dict,
     lambda r: r == {"run_region": "cn", "limit_n": "100"}),
    ("saveGlobalVariable.json", 200, "variable/saveGlobalVariable",
     lambda c: c.set_global_variables({"run_region": "eu"}), type(None), None),
    ("error-saveGlobalVariable-empty-value.json", 400, "variable/saveGlobalVariable",
     lambda c: c.set_global_variables({"run_region": "eu"}), LinkisServerError,
     lambda e: "Key or value cannot be empty" in e.message and e.http_status == 400),
    ("logout.json", 200, "user/logout", lambda c: (c.login(), c.logout())[1], type(None), None),
    ("publicKey.json", 200, "user/publicKey", lambda c: c.login(), LoginInfo, None),
    ("publicKey-encrypt-enabled.json", 200, "user/publicKey", lambda c: c.login(),
     LinkisAuthError, lambda e: "public key" in e.message),
]  # fmt: skip

# The LinkisManager: the user's engines and ending one.
EXAMPLES += [
    ("linkisManager-listUserEngines.json", 200, "linkisManager/listUserEngines",
     lambda c: c.engines(), list,
     lambda r: r[0].instance == "linkis-host:38841" and r[0].creator == "IDE"
     and r[0].engine_type == "python" and r[0].status == "Unlock"
     and r[0].memory_bytes == 1073741824 and r[0].idle_seconds is not None),
    ("linkisManager-killEngineConn.json", 200, "linkisManager/killEngineConn",
     lambda c: c.kill_engine("linkis-host:38841"), str, lambda r: r == "Kill engineConn succeed."),
    ("error-killEngineConn-no-permission.json", 400, "linkisManager/killEngineConn",
     lambda c: c.kill_engine("linkis-host:38841"), LinkisError,
     lambda e: "no permission to kill EngineConn" in e.message),
]  # fmt: skip
# Answers the client never asks for (the web console's resource pages do).


def test_every_example_file_is_in_the_table() -> None:
    covered = {row[0] for row in EXAMPLES} | REQUEST_EXAMPLES | NOT_READ_BY_THE_CLIENT
    assert covered == {p.name for p in example_files()}
    assert not NOT_READ_BY_THE_CLIENT & {row[0] for row in EXAMPLES}


@pytest.mark.parametrize(
    ("name", "code", "path", "call", "expected", "check"),
    EXAMPLES,
    ids=[row[0] for row in EXAMPLES],
)
def test_example(
    stub: StubGateway,
    name: str,
    code: int,
    path: str,
    call: Call,
    expected: type,
    check: Check | None,
) -> None:
    stub.answer(path, name, code)
    uses_password = path.startswith(("user/login", "user/logout", "user/publicKey"))
    client = password_client(stub) if uses_password else token_client(stub)
    with client:
        if issubclass(expected, Exception):
            with pytest.raises(expected) as caught:
                call(client)
            result: Any = caught.value
            assert str(result) and "Traceback" not in str(result)
        else:
            result = call(client)
            assert isinstance(result, expected)
    if check is not None:
        assert check(result), result
    assert path in [p for _, p, _, _ in stub.seen]


def test_request_bodies_match_the_contract_examples(stub: StubGateway) -> None:
    stub.answer("entrance/submit", "submit.json")
    stub.answer("entrance/execute", "execute.json")
    stub.answer(f"entrance/{EXEC_ID}/killJobs", "killJobs.json")
    with password_client(stub) as client:
        client.entrance_submit(example("submit-request.json"))
        client.entrance_execute(example("execute-request.json"))
        wanted = example("killJobs-request.json")
        client.kill_jobs(wanted["idList"], wanted["taskIDList"])
    assert stub.bodies("entrance/submit") == [example("submit-request.json")]
    assert stub.bodies("entrance/execute") == [example("execute-request.json")]
    assert stub.bodies(f"entrance/{EXEC_ID}/killJobs") == [wanted]
    (login_body,) = stub.bodies("user/login")
    assert set(login_body) == set(example("login-request.json"))
    assert login_body == {"userName": "hadoop", "password": "pw-abcdef"}


def test_global_variables_are_saved_as_the_whole_list(stub: StubGateway) -> None:
    stub.answer("variable/listGlobalVariable", "listGlobalVariable.json")
    stub.answer("variable/saveGlobalVariable", "saveGlobalVariable.json")
    with token_client(stub) as client:
        client.set_global_variable("owner_team", "data-platform")
        client.set_global_variables({"run_region": "eu", "limit_n": 7})
        with pytest.raises(LinkisValidationError, match="empty value"):
            client.set_global_variable("run_region", " ")
        with pytest.raises(LinkisValidationError, match="needs a name"):
            client.set_global_variables({"": "x"})
    wanted_item_keys = set(example("saveGlobalVariable-request.json")["globalVariables"][1])
    first, second = stub.bodies("variable/saveGlobalVariable")
    assert first == {
        "globalVariables": [
            {"key": "run_region", "value": "cn"},
            {"key": "limit_n", "value": "100"},
            {"key": "owner_team", "value": "data-platform"},
        ]
    }
    assert second == {
        "globalVariables": [{"key": "run_region", "value": "eu"}, {"key": "limit_n", "value": "7"}]
    }
    assert all(set(item) == wanted_item_keys for item in first["globalVariables"])


def test_query_parameters_follow_the_contract(stub: StubGateway) -> None:
    stub.answer(f"entrance/{EXEC_ID}/log", "log.json")
    stub.answer("filesystem/openFile", "openFile-table.json")
    stub.answer("jobhistory/list", "jobhistory-list.json")
    with token_client(stub) as client:
        client.log(EXEC_ID, from_line=5, size=50, task_id=1)
        client.open_file("file:///r/_0.dolphin", page=3, page_size=1000)
        client.jobhistory_list(status=["Running", "Succeed"], page=2, page_size=5, creator="IDE")
    queries = {path: query for _, path, query, _ in stub.seen}
    assert queries[f"entrance/{EXEC_ID}/log"] == "fromLine=5&size=50&taskID=1"
    assert "page=3&pageSize=1000&nullValue=LINKIS_NULL" in queries["filesystem/openFile"]
    assert queries["jobhistory/list"] == (
        "pageNow=2&pageSize=5&status=Running%2CSucceed&creator=IDE"
    )


def test_token_headers_on_one_kept_alive_connection_and_no_login(stub: StubGateway) -> None:
    stub.answer("datasource/dbs", "metadata-dbs.json")
    with token_client(stub) as client:
        assert client.auth_kind == "token"
        for _ in range(3):
            client.databases()
    assert [p for _, p, _, _ in stub.seen] == ["datasource/dbs"] * 3
    assert len(set(stub.client_ports)) == 1  # one kept-alive connection
    headers = stub.headers[0]
    assert headers[wire.TOKEN_CODE_HEADER] == "tok-123456"
    assert headers[wire.TOKEN_USER_HEADER] == "hadoop"
    assert headers["User-Agent"] == f"linkis-kernel/{linkis_kernel.__version__}"
    assert headers.get("Connection", "keep-alive").lower() == "keep-alive"


def test_password_client_logs_in_once_and_reuses_the_cookie(stub: StubGateway) -> None:
    stub.answer("datasource/dbs", "metadata-dbs.json")
    with password_client(stub) as client:
        client.databases()
        client.databases()
        assert client._session.cookies.get(wire.SESSION_COOKIE) == "tick/et=val=="
    cookies = [h.get("Cookie") for h in stub.headers]
    assert cookies == [None, None] + [f"{wire.SESSION_COOKIE}=tick/et=val=="] * 2
    assert [p for _, p, _, _ in stub.seen] == [
        "user/publicKey",
        "user/login",
        "datasource/dbs",
        "datasource/dbs",
    ]


def test_second_refusal_after_relogin_says_credentials_were_refused(stub: StubGateway) -> None:
    stub.answer(f"entrance/{EXEC_ID}/status", "error-login-expired.json", 401)
    with password_client(stub) as client, pytest.raises(LinkisAuthError) as caught:
        client.status(EXEC_ID)
    assert "refused the credentials" in str(caught.value)
    assert stub.bodies("user/login") and len(stub.bodies("user/login")) == 2


def test_rsa_login_round_trip(stub: StubGateway) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    private_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    key_answer = example("publicKey-encrypt-enabled.json")
    key_answer["data"]["publicKey"] = base64.b64encode(der).decode()
    stub.answer("user/publicKey", key_answer)
    stub.answer("user/login", "login.json")
    with password_client(stub) as client:
        assert client.login().user_name == "hadoop"
    (login_body,) = stub.bodies("user/login")
    sent = base64.b64decode(login_body["password"])
    assert private_key.decrypt(sent, padding.PKCS1v15()) == b"pw-abcdef"


def test_secrets_echoed_by_the_server_are_scrubbed(
    stub: StubGateway, caplog: pytest.LogCaptureFixture
) -> None:
    cookie = "tick/et=val=="
    echo = example("error-token-invalid.json")
    echo["message"] = echo["message"].replace("WRONG-TOKEN", "tok-123456") + f" pw-abcdef {cookie}"
    echo["data"] = {"stack": "at Gateway(tok-123456)", "errorMsg": {"errCode": 15204}}
    stub.answer("entrance/submit", echo, 401)
    stub.answer("datasource/dbs", "metadata-dbs.json")
    caplog.set_level("DEBUG", logger="linkis_kernel.client")
    for client in (token_client(stub), password_client(stub)):
        with client, pytest.raises(LinkisAuthError) as caught:
            if client.auth_kind == "password":
                client.databases()  # log in first, so the session cookie is known
            client.entrance_submit({})
        error = caught.value
        texts = [str(error), repr(error), error.message, error.stack, repr(client), caplog.text]
        own = ("tok-123456",) if client.auth_kind == "token" else ("pw-abcdef", cookie)
        for secret in own:
            assert all(secret not in text for text in texts), secret
        assert "***" in error.message and error.error_code == 15204
    assert "POST entrance/submit -> HTTP 401" in caplog.text


def test_kill_falls_back_to_post_when_get_is_not_allowed(stub: StubGateway) -> None:
    refusal = b"Request method 'GET' not supported"
    stub.answer(f"entrance/{EXEC_ID}/kill", refusal, 405, method="GET")
    stub.answer(f"entrance/{EXEC_ID}/kill", "kill.json", method="POST")
    with token_client(stub) as client:
        assert client.kill(EXEC_ID, task_id=1).startswith("Successfully killed")
    calls = [(m, q) for m, p, q, _ in stub.seen if p.endswith("/kill")]
    assert calls == [("GET", "taskID=1"), ("POST", "taskID=1")]


def test_kill_falls_back_to_post_on_an_unknown_get_route(stub: StubGateway) -> None:
    unknown = {"method": None, "status": 1, "message": "unknown request URI /kill", "data": {}}
    stub.answer(f"entrance/{EXEC_ID}/kill", unknown, 400, method="GET")
    stub.answer(f"entrance/{EXEC_ID}/kill", "kill-forced.json", method="POST")
    with token_client(stub) as client:
        assert client.kill(EXEC_ID).startswith("Forced Kill task")


def test_kill_does_not_fall_back_on_other_errors(stub: StubGateway) -> None:
    stub.answer(f"entrance/{EXEC_ID}/kill", "error-kill-no-permission.json", 400)
    with token_client(stub) as client, pytest.raises(LinkisPermissionError):
        client.kill(EXEC_ID)
    assert [m for m, p, _, _ in stub.seen if p.endswith("/kill")] == ["GET"]


def test_non_json_answer_is_a_transport_error_with_excerpt(stub: StubGateway) -> None:
    page = b"<html><head><style>p {x: 1}</style></head><body><h1>Not Found</h1> &amp; gone</body>"
    stub.answer("datasource/dbs", page, 404)
    with token_client(stub) as client, pytest.raises(LinkisTransportError) as caught:
        client.databases()
    assert caught.value.excerpt == "Not Found & gone" and caught.value.http_status == 404
    assert "HTTP 404" in str(caught.value) and "JSONDecodeError" not in str(caught.value)


def test_loopback_server_is_reached_directly_despite_http_proxy(
    stub: StubGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    stub.answer("datasource/dbs", "metadata-dbs.json")
    with token_client(stub) as client:
        assert client.databases() == ["default", "dw_ods", "hadoop_ind"]


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_is_verified_by_default_and_verify_takes_a_ca_bundle(tmp_path: Path) -> None:
    cert_path, key_path = _self_signed_certificate(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert_path, key_path)
    with serving(StubGateway(), tls) as gateway:
        gateway.answer("datasource/dbs", "metadata-dbs.json")
        untrusting = LinkisRestClient(gateway.url, user="hadoop", token="tok-123456")
        with untrusting, pytest.raises(LinkisTransportError) as caught:
            untrusting.databases()
        assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value) and "verify=" in str(caught.value)
        trusting = LinkisRestClient(
            gateway.url, user="hadoop", token="tok-123456", verify=str(cert_path)
        )
        with trusting:
            assert trusting.databases() == ["default", "dw_ods", "hadoop_ind"]
    assert [p for _, p, _, _ in gateway.seen] == ["datasource/dbs"]


def test_a_503_is_retried_with_doubling_backoff_then_given_up_on(stub: StubGateway) -> None:
    stub.answer("datasource/dbs", b"<html>503 Service Unavailable</html>", code=503)
    pauses: list[float] = []
    transport = Transport(
        stub.url,
        user="hadoop",
        password=None,
        token="tok-123456",
        verify=True,
        timeout=(5.0, 5.0),
        retries=3,
        sleep=pauses.append,
    )
    with pytest.raises(LinkisTransportError, match="gave up after 4 attempts"):
        transport.call("GET", "datasource/dbs")
    assert len(stub.bodies("datasource/dbs")) == 4
    assert len(pauses) == 3
    for pause, nominal in zip(pauses, (0.2, 0.4, 0.8), strict=True):
        assert 0.8 * nominal <= pause <= 1.2 * nominal  # doubling, with jitter
