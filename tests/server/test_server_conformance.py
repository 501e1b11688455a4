"""Every Linkis example body (tests/fixtures/linkis) against what the real server answers.

For each example the table below names the request that produces it. The answer must have the
same `status`, the HTTP code the fixtures' README gives, and the same shape of `data`: the same
keys at every level (for lists, those of the first element) and the same JSON types, where a null
on either side is compatible with anything.

Some examples describe situations the embedded server cannot be in by nature; `NEAREST` lists
them with the reason and the example whose request stands in for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from support.bodies import submit_body
from support.contract import EXAMPLE_EXEC_ID, example_files, load_example, shape_differences
from support.serverproc import GUEST, ServerProcess, start_server, wait_for_state
from support.twousers import guest_client

from linkis_kernel import wire

TABLE_SQL = "select 1 as id, 'alice' as name, 10.50 as amount union all select 2, null, 0.00"


@dataclass(frozen=True)
class Case:
    """The request that produces one example. `{name}` in path/params is filled from `World`."""

    method: str
    path: str
    http: int  # the fixtures' README gives it
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None
    auth: str = "token"  # token | guest | none | session | bad-token | stale-ticket
    values: tuple[str, ...] = ()  # data keys whose values must equal the example's
    note: str = ""


CASES: dict[str, Case] = {
    "baseinfo.json": Case(
        "GET",
        "user/baseinfo",
        200,
        auth="none",
        values=("resultSetExportEnable", "linkisClusterName", "engineLogOnlyAdminEnable"),
    ),
    "configuration-engineType.json": Case(
        "GET",
        "configuration/engineType",
        200,
        note="the engine types this server runs, not Linkis' default list",
    ),
    "error-execid-slot-empty.json": Case("GET", "entrance/{empty_slot_exec}/status", 400),
    "error-filesystem-path-empty.json": Case("GET", "filesystem/getDirFileTrees", 400),
    "error-jobhistory-not-found.json": Case("GET", "jobhistory/999999/get", 400),
    "error-job-extra-info-no-jobid.json": Case("GET", "jobhistory/job-extra-info", 400),
    "error-kill-by-taskid-completed.json": Case("GET", "entrance/{old_task}/kill", 400),
    "error-kill-no-permission.json": Case("GET", "entrance/{running_exec}/kill", 400, auth="guest"),
    "error-kill-unknown-no-taskid.json": Case("GET", f"entrance/{EXAMPLE_EXEC_ID}/kill", 400),
    "error-log-by-taskid-completed.json": Case("GET", "entrance/{old_task}/log", 400),
    "error-log-job-not-in-memory.json": Case("GET", "entrance/{old_exec}/log", 400),
    "error-login-expired.json": Case(
        "GET",
        "entrance/{table_exec}/status",
        401,
        auth="stale-ticket",
        note="a ticket the server does not know; real idle expiry: test_server_auth",
    ),
    "error-malformed-execid.json": Case("GET", "entrance/exec_idabc/status", 400),
    "error-oauth-redirect-disabled.json": Case("GET", "user/oauth-redirect", 401, auth="none"),
    "error-openFile-pagesize-too-large.json": Case(
        "GET", "filesystem/openFile", 400, params={"path": "{table_result}", "pageSize": "100001"}
    ),
    "error-progress-unknown-execid.json": Case("GET", f"entrance/{EXAMPLE_EXEC_ID}/progress", 400),
    "error-saveGlobalVariable-empty-value.json": Case(
        "POST",
        "variable/saveGlobalVariable",
        400,
        body={"globalVariables": [{"key": "run_region", "value": " "}]},
    ),
    "error-submit-empty-code.json": Case("POST", "entrance/submit", 400, body=submit_body(" ")),
    "error-submit-missing-engineType.json": Case(
        "POST",
        "entrance/submit",
        400,
        body={"executionContent": {"code": "select 1", "runType": "sql"}, "labels": {"a": "b"}},
    ),
    "error-token-invalid.json": Case("POST", "entrance/submit", 401, body={}, auth="bad-token"),
    "error-unauthenticated-service-direct.json": Case("GET", "jobhistory/list", 401, auth="none"),
    "error-unauthenticated.json": Case("POST", "entrance/submit", 401, body={}, auth="none"),
    "error-unknown-execid.json": Case("GET", f"entrance/{EXAMPLE_EXEC_ID}/status", 400),
    "execute.json": Case("POST", "entrance/execute", 200, body="execute-request.json"),
    "linkisManager-listAllECMHealthyStatus.json": Case(
        "GET",
        "linkisManager/listAllECMHealthyStatus",
        200,
        params={"onlyEditable": "true"},
        values=("nodeHealthy",),
    ),
    "linkisManager-listAllNodeHealthyStatus.json": Case(
        "GET", "linkisManager/listAllNodeHealthyStatus", 200, values=("nodeStatus",)
    ),
    "microservice-modifiableLabelKey.json": Case(
        "GET", "microservice/modifiableLabelKey", 200, values=("keyList",)
    ),
    "gateway-error-taskid-not-exists.json": Case("GET", "entrance/999999/status", 200),
    "getDirFileTrees-missing-dir.json": Case(
        "GET", "filesystem/getDirFileTrees", 200, params={"path": "{table_dir}/missing"}
    ),
    "getDirFileTrees.json": Case(
        "GET", "filesystem/getDirFileTrees", 200, params={"path": "{table_dir}"}
    ),
    "governanceStationAdmin.json": Case(
        "GET",
        "jobhistory/governanceStationAdmin",
        200,
        values=("admin", "historyAdmin", "deptAdmin", "errorMsgTip", "canResultSet"),
    ),
    "jobhistory-diagnosis-query.json": Case(
        "GET",
        "jobhistory/diagnosis-query",
        200,
        params={"taskID": "{table_task}"},
        values=("diagnosisMsg",),
    ),
    "jobhistory-get-cancelled.json": Case("GET", "jobhistory/{cancelled_task}/get", 200),
    "jobhistory-get-failed.json": Case("GET", "jobhistory/{failed_task}/get", 200),
    "jobhistory-get-inited.json": Case(
        "GET",
        "jobhistory/{running_task}/get",
        200,
        note="jobs leave Inited inside the submit call here; a running job's row has its keys",
    ),
    "jobhistory-get-running.json": Case("GET", "jobhistory/{running_task}/get", 200),
    "jobhistory-get-succeed.json": Case("GET", "jobhistory/{table_task}/get", 200),
    "jobhistory-job-extra-info.json": Case(
        "GET", "jobhistory/job-extra-info", 200, params={"jobId": "{table_task}"}
    ),
    "jobhistory-list.json": Case("GET", "jobhistory/list", 200),
    "jobhistory-listundonetasks.json": Case(
        "GET",
        "jobhistory/listundonetasks",
        200,
        params={"pageSize": "100", "status": "Running,Inited,Scheduled"},
    ),
    "kill-forced.json": Case(
        "GET", "entrance/{old_exec}/kill", 200, params={"taskID": "{old_task}"}
    ),
    "kill.json": Case(
        "GET",
        "entrance/{table_exec}/kill",
        200,
        note="a finished job still held in memory answers the same success",
    ),
    "killJobs.json": Case(
        "POST",
        "entrance/{text_exec}/killJobs",
        200,
        body={"idList": ["{text_exec}", "{old_exec}"], "taskIDList": ["{text_task}", "{old_task}"]},
    ),
    "listGlobalVariable.json": Case("GET", "variable/listGlobalVariable", 200),
    "log-distinctLevel-false.json": Case(
        "GET", "entrance/{table_exec}/log", 200, params={"distinctLevel": "false"}
    ),
    "log-no-new-lines.json": Case(
        "GET", "entrance/{table_exec}/log", 200, params={"fromLine": "100000"}
    ),
    "log.json": Case("GET", "entrance/{table_exec}/log", 200, params={"fromLine": "0"}),
    "login-already-logged-in.json": Case(
        "POST",
        "user/login",
        200,
        body={"userName": "{user}", "password": "{password}"},
        auth="session",
    ),
    "login-failed-ldap.json": Case(
        "POST", "user/login", 400, body={"userName": "{user}", "password": "wrong"}, auth="none"
    ),
    "login-ldap-user.json": Case(
        "POST",
        "user/login",
        200,
        body={"userName": GUEST["name"], "password": GUEST["password"]},
        auth="none",
        values=("isAdmin",),
        note="a user of users.json stands for an LDAP user: not an admin",
    ),
    "login-missing-password.json": Case(
        "POST", "user/login", 400, body={"userName": "{user}"}, auth="none"
    ),
    "login.json": Case(
        "POST",
        "user/login",
        200,
        body={"userName": "{user}", "password": "{password}"},
        auth="none",
        values=("isAdmin",),
    ),
    "logout.json": Case("GET", "user/logout", 200, auth="session"),
    "metadata-columns.json": Case(
        "GET", "datasource/columns", 200, params={"database": "{db}", "table": "{table}"}
    ),
    "metadata-dbs.json": Case("GET", "datasource/dbs", 200),
    "metadata-tables.json": Case("GET", "datasource/tables", 200, params={"database": "{db}"}),
    "openFile-page-past-end.json": Case(
        "GET", "filesystem/openFile", 200, params={"path": "{table_result}", "page": "50"}
    ),
    "openFile-table.json": Case(
        "GET", "filesystem/openFile", 200, params={"path": "{table_result}"}
    ),
    "openFile-text.json": Case("GET", "filesystem/openFile", 200, params={"path": "{text_result}"}),
    "openLog.json": Case("GET", "filesystem/openLog", 200, params={"path": "{table_log}"}),
    "progress-completed.json": Case(
        "GET", "entrance/{table_exec}/progress", 200, values=("progress",)
    ),
    "progress.json": Case("GET", "entrance/{running_exec}/progress", 200),
    "progressWithResource-by-taskid-completed.json": Case(
        "GET", "entrance/{old_task}/progressWithResource", 200, values=("progress",)
    ),
    "progressWithResource-yarn.json": Case(
        "GET",
        "entrance/{running_exec}/progressWithResource",
        200,
        note="no YARN here: a running job reports its process's memory and CPU as yarnMetrics",
    ),
    "progressWithResource.json": Case("GET", "entrance/{table_exec}/progressWithResource", 200),
    "publicKey.json": Case("GET", "user/publicKey", 200, auth="none"),
    "saveGlobalVariable.json": Case(
        "POST", "variable/saveGlobalVariable", 200, body="saveGlobalVariable-request.json"
    ),
    "status-by-taskid-completed.json": Case(
        "GET", "entrance/{old_task}/status", 200, values=("status",)
    ),
    "status-cancelled.json": Case(
        "GET", "entrance/{cancelled_exec}/status", 200, values=("status",)
    ),
    "status-fallback-history.json": Case(
        "GET",
        "entrance/{old_exec}/status",
        200,
        params={"taskID": "{old_task}"},
        values=("status",),
    ),
    "status-inited.json": Case(
        "GET",
        "entrance/{running_exec}/status",
        200,
        note="jobs leave Inited inside the submit call here; same keys as any status",
    ),
    "status-running.json": Case("GET", "entrance/{running_exec}/status", 200, values=("status",)),
    "status-succeed.json": Case("GET", "entrance/{table_exec}/status", 200, values=("status",)),
    "submit.json": Case("POST", "entrance/submit", 200, body="submit-request.json"),
    "token-login.json": Case("POST", "user/token-login", 200, values=("isAdmin",)),
}

# Examples the embedded server cannot produce by nature -> (stand-in example, reason).
NEAREST: dict[str, tuple[str, str]] = {
    "publicKey-encrypt-enabled.json": (
        "publicKey.json",
        "login encryption (RSA) is off: passwords never leave 127.0.0.1",
    ),
    "log-read-illegal-state.json": (
        "log-distinctLevel-false.json",
        "the log reader has no illegal-state failure; this is the other string-valued `log`",
    ),
    "openFile-html.json": (
        "openFile-text.json",
        "no local engine writes HTML result sets; text result sets have the same shape",
    ),
}

# Examples whose `message` names things that differ here; every other message must be equal.
MESSAGE_DIFFERS = {
    "error-kill-no-permission.json": "names the job's owner",
    "error-login-expired.json": "an unknown ticket stands in for an expired one",
    "error-token-invalid.json": "the token is a secret and is not echoed",
    "error-unauthenticated-service-direct.json": "the server answers as the gateway does",
    "login-already-logged-in.json": "names the logged-in user",
}


# -- the jobs the requests refer to ----------------------------------------------------------------


@dataclass
class World:
    """A server (restarted once, so that some jobs are only in history) and its jobs."""

    server: ServerProcess
    names: dict[str, str]

    def fill(self, value: Any) -> Any:
        if isinstance(value, str):
            return value.format(**self.names) if "{" in value else value
        if isinstance(value, list):
            return [self.fill(item) for item in value]
        if isinstance(value, dict):
            return {key: self.fill(item) for key, item in value.items()}
        return value


def _task(server: ServerProcess, task_id: int) -> dict[str, Any]:
    return server.get_data(f"jobhistory/{task_id}/get")["task"]


def _first_result(server: ServerProcess, task_id: int) -> tuple[str, str]:
    return _task(server, task_id)["resultLocation"], server.result_paths(task_id)[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data_dir = tmp_path_factory.mktemp("conformance")
    with start_server(data_dir, users=[GUEST]) as first:
        old = first.submit(TABLE_SQL)
        assert first.wait(old["execID"]) == wire.SUCCEED
    server = start_server(data_dir, users=[GUEST])
    try:
        table = server.submit(TABLE_SQL)
        text = server.submit("echo hello; echo world", engine="shell", run_type="shell")
        failed = server.submit("select * from no_such_table")
        for job in (table, text, failed):
            server.wait(job["execID"])
        cancelled = server.submit("sleep 30", engine="shell", run_type="shell")
        wait_for_state(server, cancelled["execID"], wire.RUNNING)
        server.client.get(server.api(f"entrance/{cancelled['execID']}/kill"), timeout=10)
        assert server.wait(cancelled["execID"]) == wire.CANCELLED
        server.client.post(
            server.api("variable/saveGlobalVariable"),
            json=load_example("saveGlobalVariable-request.json"),
            timeout=10,
        ).raise_for_status()
        running = server.submit("sleep 30", engine="shell", run_type="shell")
        wait_for_state(server, running["execID"], wire.RUNNING)
        table_dir, table_result = _first_result(server, table["taskID"])
        _, text_result = _first_result(server, text["taskID"])
        prefix, _, index = table["execID"].rpartition("_")
        dbs = server.client.get(server.api("datasource/dbs"), timeout=10).json()["data"]["dbs"]
        db = dbs[0]["dbName"]
        tables = server.client.get(
            server.api("datasource/tables"), params={"database": db}, timeout=10
        ).json()["data"]["tables"]
        names = {
            "user": server.user,
            "password": server.password,
            "old_exec": old["execID"],
            "old_task": str(old["taskID"]),
            "table_exec": table["execID"],
            "table_task": str(table["taskID"]),
            "table_dir": table_dir,
            "table_result": table_result,
            "table_log": _task(server, table["taskID"])["logPath"],
            "text_exec": text["execID"],
            "text_task": str(text["taskID"]),
            "text_result": text_result,
            "failed_task": str(failed["taskID"]),
            "cancelled_exec": cancelled["execID"],
            "cancelled_task": str(cancelled["taskID"]),
            "running_exec": running["execID"],
            "running_task": str(running["taskID"]),
            "empty_slot_exec": f"{prefix}_{int(index) + 1000}",
            "db": db,
            "table": tables[0]["tableName"],
        }
        yield World(server, names)
        server.client.get(server.api(f"entrance/{running['execID']}/kill"), timeout=10)
    finally:
        server.stop()


# -- requests and shape comparison ---------------------------------------------------------------


def _session_for(world: World, auth: str) -> requests.Session:
    server = world.server
    if auth == "token":
        return server.client
    if auth == "guest":
        return guest_client(server)
    session = requests.Session()
    if auth == "session":
        session = server.session()
    elif auth == "bad-token":
        session.headers.update(server.token_headers(token="WRONG-TOKEN"))
    elif auth == "stale-ticket":
        session.cookies.set(wire.SESSION_COOKIE, "a-ticket-this-server-never-issued")
    return session


def _perform(world: World, case: Case) -> requests.Response:
    # A string body names an example request body, sent as it is.
    body = load_example(case.body) if isinstance(case.body, str) else world.fill(case.body)
    return _session_for(world, case.auth).request(
        case.method,
        world.server.api(world.fill(case.path)),
        params=world.fill(case.params),
        json=body,
        timeout=10,
    )


def _method_kind(method: str | None) -> str:
    """null (gateway user endpoints, caught exceptions), full URI (gateway) or /api/<service>."""
    if method is None:
        return "null"
    return "request URI" if method.startswith(wire.API_PREFIX) else "service path"


def test_shape_comparison_catches_differences() -> None:
    expected = {"a": 1, "b": [{"c": "x"}], "d": None, "e": 1.0}
    assert shape_differences(expected, {"a": 2, "b": [{"c": "y"}], "d": 5, "e": 2.5}) == []
    assert shape_differences(expected, {"a": 1.0, "b": [{"c": "x"}], "d": 1, "e": 1.0}) == [
        "data.a: expected int, got float (1.0)"
    ]
    assert shape_differences(expected, {"a": 1, "b": [{}], "e": 1.0, "f": True}) == [
        "data: missing key 'd'",
        "data: unexpected key 'f'",
        "data.b[0]: missing key 'c'",
    ]


# The LinkisManager examples need live engines: test_server_engines.py checks them.
ENGINE_EXAMPLES = {
    path.name for path in example_files() if "linkisManager" in path.name and path.name not in CASES
} | {
    "error-killEngineConn-no-permission.json",
    "error-listEMEngines-not-admin.json",
}


def test_table_covers_every_example() -> None:
    responses = {path.name for path in example_files() if not path.name.endswith("-request.json")}
    assert responses == set(CASES) | set(NEAREST) | ENGINE_EXAMPLES
    assert all(stand_in in CASES for stand_in, _ in NEAREST.values())


@pytest.mark.parametrize("example", sorted(CASES) + sorted(NEAREST))
def test_answer_matches_example(world: World, example: str) -> None:
    produced = NEAREST[example][0] if example in NEAREST else example
    case = CASES[produced]
    expected = load_example(example if example in CASES else produced)
    response = _perform(world, case)
    assert response.status_code == case.http, response.text
    answer = response.json()
    assert list(answer) == ["method", "status", "message", "data"]
    assert answer["status"] == expected["status"], answer
    assert isinstance(answer["data"], dict)
    assert shape_differences(expected["data"], answer["data"]) == [], answer
    if example not in MESSAGE_DIFFERS:
        assert answer["message"] == expected["message"]
    assert _method_kind(answer["method"]) == _method_kind(expected["method"]), answer
    for key in case.values:
        assert answer["data"][key] == expected["data"][key], answer
    if expected["status"] != 0 and not expected["data"]:
        assert answer["data"] == {}
