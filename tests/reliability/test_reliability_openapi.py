"""The embedded server against its own OpenAPI description: served, complete, and obeyed.

schemathesis generates requests for every operation in `linkis_kernel/local/openapi.yaml` and
sends them (with the token headers) to a real server: no answer may be a 5xx, carry a traceback,
or fall outside the described status codes, content types and schemas.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from support.serverproc import ServerProcess

from linkis_kernel import wire
from linkis_kernel.local.app import OPENAPI_FILE, ROUTES

SCHEMA = schemathesis.openapi.from_path(OPENAPI_FILE)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"[^\"]+\.py\", line \d+")


def _route_operations() -> dict[tuple[str, str], bool]:
    """(OpenAPI path, method) -> whether the route needs auth; `{id}` for the job or task id."""
    operations = {}
    for route in ROUTES:
        path = route.pattern.pattern.replace("(?P<job_id>[^/]+)", "{id}").replace("\\", "")
        operations.update({(f"/{path}", method): route.auth for method in route.methods})
    return operations


def test_the_description_is_served_without_auth_and_lists_every_route(
    linkis_server: ServerProcess,
) -> None:
    response = requests.get(linkis_server.api("openapi.yaml"), timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/yaml")
    served = yaml.safe_load(response.text)
    assert served == yaml.safe_load(OPENAPI_FILE.read_text())
    assert served["openapi"].startswith("3.") and served["servers"][0]["url"] == wire.API_PREFIX
    described = {
        (path, method.upper()): operation.get("security")
        for path, operations in served["paths"].items()
        for method, operation in operations.items()
    }
    routes = _route_operations()
    assert set(described) == set(routes)
    # Public in the description exactly where the server asks for no auth (token-login checks
    # the token headers itself).
    public = {op for op, security in described.items() if security == []}
    assert public == {op for op, auth in routes.items() if not auth and "token-login" not in op[0]}
    schemes = served["components"]["securitySchemes"]
    assert schemes["session"]["name"] == wire.SESSION_COOKIE
    assert {schemes["token"]["name"], schemes["tokenUser"]["name"]} == {
        wire.TOKEN_CODE_HEADER,
        wire.TOKEN_USER_HEADER,
    }


@pytest.fixture(scope="module")
def api_base(linkis_server: ServerProcess) -> str:
    return f"{linkis_server.url}{wire.API_PREFIX}"


@pytest.fixture(scope="module", autouse=True)
def forget_generated_variables(linkis_server: ServerProcess) -> Iterator[None]:
    """Generated requests save global variables, which would fill `${...}` in later jobs."""
    yield
    linkis_server.client.post(
        linkis_server.api("variable/saveGlobalVariable"), json={"globalVariables": []}, timeout=10
    ).raise_for_status()


@SCHEMA.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_generated_requests_get_described_answers(
    case: schemathesis.Case, api_base: str, linkis_server: ServerProcess
) -> None:
    headers = linkis_server.token_headers() if case.operation.security else {}
    response = case.call_and_validate(base_url=api_base, headers=headers, checks=CHECKS, timeout=15)
    body = response.content.decode("utf-8", "replace")
    assert not TRACEBACK.search(body), body[:500]
