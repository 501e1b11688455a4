"""Malformed and wrong requests: always a Linkis-shaped answer that says what is wrong.

Never a 500, an HTML page or a traceback, whatever the request.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.bodies import submit_body
from support.contract import EXAMPLE_EXEC_ID
from support.serverproc import ServerProcess

from linkis_kernel import wire
from linkis_kernel.local.app import ROUTES

SPARK = {"engineType": "spark-3.2.1", "codeType": "sql"}


@dataclass(frozen=True)
class Bad:
    """One bad request and the answer it must get."""

    method: str
    path: str
    http: int
    status: int
    fragment: str
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None  # bytes are sent as they are, anything else as JSON


BAD_REQUESTS = {
    "submit-invalid-json": Bad("POST", "entrance/submit", 400, 1, "not valid JSON", body=b"{bad"),
    "submit-array-body": Bad(
        "POST", "entrance/submit", 400, 1, "must be a JSON object, got an array", body=b"[1, 2]"
    ),
    "submit-empty-body": Bad("POST", "entrance/submit", 400, 1, "body is empty", body=b""),
    "submit-not-utf8": Bad("POST", "entrance/submit", 400, 1, "not UTF-8", body=b'{"a":"\xff"}'),
    "submit-no-code": Bad(
        "POST", "entrance/submit", 400, 1, "executionCode cannot be empty", body={}
    ),
    "submit-content-not-object": Bad(
        "POST",
        "entrance/submit",
        400,
        1,
        "executionContent must be an object",
        body={"executionContent": "select 1", "labels": SPARK},
    ),
    "submit-no-labels": Bad(
        "POST",
        "entrance/submit",
        400,
        1,
        "labels is null",
        body={"executionContent": {"code": "select 1", "runType": "sql"}},
    ),
    "submit-no-run-type": Bad(
        "POST",
        "entrance/submit",
        400,
        1,
        "codeType",
        body={"executionContent": {"code": "select 1"}, "labels": {"engineType": "spark-3.2.1"}},
    ),
    "submit-unknown-engine": Bad(
        "POST",
        "entrance/submit",
        400,
        1,
        "Label params invalid",
        body={**submit_body("select 1"), "labels": {"engineType": "nosuch-1", "codeType": "sql"}},
    ),
    "submit-bad-user-creator": Bad(
        "POST",
        "entrance/submit",
        400,
        1,
        "userCreator must be <user>-<creator>",
        body={**submit_body("select 1"), "labels": {**SPARK, "userCreator": "a-b-c"}},
    ),
    "submit-params-not-object": Bad(
        "POST",
        "entrance/submit",
        400,
        1,
        "'params' must be a JSON object",
        body=submit_body("select 1", params=7),
    ),
    "submit-variables-not-object": Bad(
        "POST",
        "entrance/submit",
        400,
        1,
        "Variable replacement failed",
        body=submit_body("select 1", params={"variable": [1]}),
    ),
    "execute-no-code": Bad("POST", "entrance/execute", 400, 1, "executionCode", body={}),
    "execute-no-engine": Bad(
        "POST",
        "entrance/execute",
        400,
        1,
        "executeApplicationName",
        body={"executionCode": "select 1"},
    ),
    "status-malformed-exec-id": Bad(
        "GET", "entrance/exec_idabc/status", 400, 1, "NumberFormatException"
    ),
    "status-task-id-not-number": Bad(
        "GET",
        f"entrance/{EXAMPLE_EXEC_ID}/status",
        400,
        1,
        "Parameter taskID must be an integer, got 'abc'",
        params={"taskID": "abc"},
    ),
    "status-unknown-task": Bad(
        "GET", "entrance/999999/status", 200, 1, "taskId 999999 is not exists."
    ),
    "log-from-line-not-number": Bad(
        "GET",
        f"entrance/{EXAMPLE_EXEC_ID}/log",
        400,
        1,
        "Parameter fromLine must be an integer",
        params={"fromLine": "abc"},
    ),
    "log-size-not-number": Bad(
        "GET",
        f"entrance/{EXAMPLE_EXEC_ID}/log",
        400,
        1,
        "Parameter size must be an integer",
        params={"size": "big"},
    ),
    "log-distinct-level-not-bool": Bad(
        "GET",
        f"entrance/{EXAMPLE_EXEC_ID}/log",
        400,
        1,
        "Parameter distinctLevel must be true or false",
        params={"distinctLevel": "maybe"},
    ),
    "progress-unknown-exec-id": Bad(
        "GET", f"entrance/{EXAMPLE_EXEC_ID}/progress", 400, 1, "task progress cannot be obtained"
    ),
    "progress-with-resource-task-id-not-number": Bad(
        "GET",
        f"entrance/{EXAMPLE_EXEC_ID}/progressWithResource",
        400,
        1,
        "Parameter taskID must be an integer",
        params={"taskID": "1.5"},
    ),
    "kill-unknown-exec-id": Bad("GET", f"entrance/{EXAMPLE_EXEC_ID}/kill", 400, 1, "kill failed"),
    "pause-by-post": Bad("POST", f"entrance/{EXAMPLE_EXEC_ID}/pause", 400, 1, "use GET", body={}),
    "kill-jobs-not-arrays": Bad(
        "POST",
        "entrance/killJobs",
        400,
        1,
        "must both be arrays",
        body={"idList": "x", "taskIDList": []},
    ),
    "kill-jobs-length-mismatch": Bad(
        "POST",
        f"entrance/{EXAMPLE_EXEC_ID}/killJobs",
        400,
        1,
        "must pair up",
        body={"idList": ["a"], "taskIDList": []},
    ),
    "history-id-not-number": Bad(
        "GET", "jobhistory/abc/get", 400, 1, "must be a number, got 'abc'"
    ),
    "history-unknown-id": Bad(
        "GET", "jobhistory/999999/get", 400, 1, "The corresponding job was not found"
    ),
    "list-page-size-zero": Bad(
        "GET", "jobhistory/list", 400, 1, "at least 1", params={"pageSize": "0"}
    ),
    "list-page-not-number": Bad(
        "GET",
        "jobhistory/list",
        400,
        1,
        "Parameter pageNow must be an integer",
        params={"pageNow": "x"},
    ),
    "list-start-date-not-number": Bad(
        "GET",
        "jobhistory/list",
        400,
        1,
        "Parameter startDate must be an integer",
        params={"startDate": "yesterday"},
    ),
    "open-file-no-path": Bad("GET", "filesystem/openFile", 400, 1, "80004"),
    "open-file-page-not-number": Bad(
        "GET",
        "filesystem/openFile",
        400,
        1,
        "Parameter page must be an integer, got 'abc'",
        params={"path": "/x", "page": "abc"},
    ),
    "open-file-page-size-too-large": Bad(
        "GET",
        "filesystem/openFile",
        400,
        1,
        "80034",
        params={"path": "/x", "pageSize": str(wire.OPEN_FILE_MAX_PAGE_SIZE + 1)},
    ),
    "open-file-page-zero": Bad(
        "GET", "filesystem/openFile", 400, 1, "at least 1", params={"path": "/x", "page": "0"}
    ),
    "open-log-no-path": Bad("GET", "filesystem/openLog", 400, 1, "80004"),
    "dir-tree-blank-path": Bad(
        "GET", "filesystem/getDirFileTrees", 400, 1, "80004", params={"path": ""}
    ),
    "metadata-by-post": Bad("POST", "datasource/tables", 400, 1, "use GET", body={}),
    "user-info-by-put": Bad("PUT", "user/userInfo", 400, 1, "use GET", body={}),
    "login-invalid-json": Bad("POST", "user/login", 400, 1, "not valid JSON", body=b"{'x'"),
    "login-name-not-string": Bad(
        "POST", "user/login", 400, 1, "Username can not be empty", body={"userName": 5}
    ),
    "unknown-uri": Bad("GET", "entrance/submit/extra", 400, 1, "unknown request URI"),
    "unknown-service": Bad("GET", "nosuchservice/list", 400, 1, "unknown request URI"),
    "put-on-submit": Bad("PUT", "entrance/submit", 400, 1, "'PUT' is not supported", body={}),
    "get-on-submit": Bad("GET", "entrance/submit", 400, 1, "use POST"),
    "delete-on-list": Bad("DELETE", "jobhistory/list", 400, 1, "use GET"),
    "post-on-public-key": Bad("POST", "user/publicKey", 400, 1, "use GET"),
    "body-too-large": Bad(
        "POST", "entrance/submit", 413, 1, "larger than 10 MiB", body=b" " * (10 * 1024 * 1024 + 1)
    ),
}


def _send(server: ServerProcess, bad: Bad, session: requests.Session) -> requests.Response:
    raw = isinstance(bad.body, bytes)
    return session.request(
        bad.method,
        server.api(bad.path),
        params=bad.params,
        data=bad.body if raw else None,
        json=None if raw else bad.body,
        timeout=30,
    )


def _assert_clean(response: requests.Response) -> dict[str, Any]:
    assert response.status_code < 500
    assert "Traceback" not in response.text and "<html" not in response.text.lower()
    body = response.json()
    assert list(body) == ["method", "status", "message", "data"]
    assert isinstance(body["data"], dict)
    return body


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_request_gets_a_clear_linkis_error(linkis_server: ServerProcess, case: str) -> None:
    bad = BAD_REQUESTS[case]
    response = _send(linkis_server, bad, linkis_server.client)
    body = _assert_clean(response)
    assert (response.status_code, body["status"]) == (bad.http, bad.status), body
    assert bad.fragment in body["message"]
    if "unknown request URI" in bad.fragment or "use " in bad.fragment:
        assert body["method"] == f"{wire.API_PREFIX}/{bad.path}"  # routing: the gateway's answer


def test_at_least_thirty_bad_requests_are_covered() -> None:
    assert len(BAD_REQUESTS) >= 30


@pytest.mark.parametrize("path", ["/", "/favicon.ico", "/api/rest_j/v2/entrance/submit"])
def test_paths_outside_the_api_answer_in_linkis_shape(
    linkis_server: ServerProcess, path: str
) -> None:
    response = requests.get(f"{linkis_server.url}{path}", timeout=10)
    body = _assert_clean(response)
    assert response.status_code == 400 and body["status"] == 1
    assert body["message"].startswith(f"unknown request URI {path}")
    assert wire.API_PREFIX in body["message"]


def test_unsupported_http_verb_answers_in_linkis_shape(linkis_server: ServerProcess) -> None:
    response = requests.request("OPTIONS", linkis_server.api("entrance/submit"), timeout=10)
    body = _assert_clean(response)
    assert response.status_code == 405 and body["status"] == 1


def test_envelope_of_a_success(linkis_server: ServerProcess) -> None:
    response = linkis_server.client.get(linkis_server.api("jobhistory/list"), timeout=10)
    assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
    body = _assert_clean(response)
    assert body["method"] == "/api/jobhistory/list"
    assert (body["status"], body["message"]) == (0, "OK")
    assert set(body["data"]) == {"tasks", "totalPage"}


def test_server_stays_healthy_after_bad_requests(linkis_server: ServerProcess) -> None:
    for bad in BAD_REQUESTS.values():
        if bad.http != 413:
            _send(linkis_server, bad, linkis_server.client)
    job = linkis_server.submit("select 1 as still_fine")
    assert linkis_server.wait(job["execID"]) == wire.SUCCEED


_TEMPLATES = [route.pattern.pattern for route in ROUTES]
_PARAM_NAMES = ["path", "page", "pageSize", "taskID", "fromLine", "size", "distinctLevel"]
_PARAM_NAMES += ["pageNow", "status", "startDate", "database", "table", "outputFileType", "limit"]
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


@st.composite
def _requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes]:
    segment = draw(st.text(st.characters(codec="ascii", exclude_characters="/?#%"), max_size=12))
    path = draw(st.sampled_from(_TEMPLATES)).replace("(?P<job_id>[^/]+)", segment or "x")
    params = draw(st.dictionaries(st.sampled_from(_PARAM_NAMES), st.text(max_size=12)))
    body = draw(st.binary(max_size=40) | _json_values.map(lambda v: json.dumps(v).encode()))
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE"]))
    return method, path, params, body


@settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(request=_requests())
def test_no_request_gets_a_server_error(
    linkis_server: ServerProcess, request: tuple[str, str, dict[str, str], bytes]
) -> None:
    method, path, params, body = request
    response = linkis_server.client.request(
        method, linkis_server.api(path), params=params, data=body, timeout=10
    )
    if path == "filesystem/resultsetToExcel" and method == "GET":
        assert response.status_code == 200 and "Traceback" not in response.text
        return
    _assert_clean(response)
