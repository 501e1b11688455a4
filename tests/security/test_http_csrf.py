"""Another site's page cannot act with a user's session (docs/linkis-rest.md, "Authentication").

The session cookie is HttpOnly and SameSite=Strict; a request that changes something (any POST,
and the GETs that kill, pause or log in/out) is refused when it says it is cross-site, when its
Origin is not the server, or, without an Origin, when its body is not JSON. The project's own
client (JSON bodies, no Origin) keeps working with a session and with a token.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from support.bodies import submit_body
from support.serverproc import GUEST, ServerProcess, history_state
from support.twousers import envelope, post_raw

from linkis_kernel import LinkisClient, wire

EVIL = "http://evil.example"


@pytest.fixture
def guest_session(linkis_server: ServerProcess) -> Iterator[requests.Session]:
    """The guest logged in with the password: authenticated by the session cookie only."""
    session = linkis_server.session(GUEST["name"], GUEST["password"])
    yield session
    session.close()


def _task_count(server: ServerProcess, session: requests.Session) -> int:
    listed = envelope(session.get(server.api("jobhistory/list"), params={"pageSize": 1}))
    return int(listed["data"]["totalPage"])


def _assert_refused_as_cross_site(response: requests.Response, reason: str) -> None:
    assert response.status_code == 403, response.text
    body = envelope(response)
    assert body["status"] == wire.STATUS_NO_PERMISSION
    assert body["message"].startswith("Refused a request that may come from another site")
    assert reason in body["message"]


def test_session_cookie_is_http_only_and_same_site_strict(linkis_server: ServerProcess) -> None:
    body = {"userName": GUEST["name"], "password": GUEST["password"]}
    response = requests.post(linkis_server.api("user/login"), json=body, timeout=10)
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{wire.SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_a_text_plain_post_with_only_the_cookie_is_refused(
    linkis_server: ServerProcess, guest_session: requests.Session
) -> None:
    before = _task_count(linkis_server, guest_session)
    text = json.dumps(submit_body("select 1", engine="duckdb"))
    response = post_raw(guest_session, linkis_server.api("entrance/submit"), text, "text/plain")
    _assert_refused_as_cross_site(response, "Content-Type 'text/plain'")
    form = post_raw(
        guest_session,
        linkis_server.api("entrance/submit"),
        "a=1",
        "application/x-www-form-urlencoded",
    )
    _assert_refused_as_cross_site(form, "application/x-www-form-urlencoded")
    assert _task_count(linkis_server, guest_session) == before


@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_a_post_from_another_origin_is_refused(
    linkis_server: ServerProcess, guest_session: requests.Session, content_type: str
) -> None:
    text = json.dumps(submit_body("select 1", engine="duckdb"))
    response = post_raw(
        guest_session, linkis_server.api("entrance/submit"), text, content_type, Origin=EVIL
    )
    _assert_refused_as_cross_site(response, EVIL)


def test_a_post_from_the_servers_own_origin_is_accepted(
    linkis_server: ServerProcess, guest_session: requests.Session
) -> None:
    text = json.dumps(submit_body("select 1", engine="duckdb"))
    response = post_raw(
        guest_session,
        linkis_server.api("entrance/submit"),
        text,
        "text/plain;charset=UTF-8",
        Origin=linkis_server.url,
    )
    assert envelope(response)["status"] == 0


def test_a_cross_site_get_kill_is_refused(
    linkis_server: ServerProcess, guest_session: requests.Session
) -> None:
    running = linkis_server.submit(
        "sleep 60", engine="shell", run_type="shell", session=guest_session
    )
    exec_id = running["execID"]
    try:
        for headers, reason in (
            ({"Sec-Fetch-Site": "cross-site"}, "Sec-Fetch-Site: cross-site"),
            # a page on another port of this host
            ({"Sec-Fetch-Site": "same-site"}, "Sec-Fetch-Site: same-site"),
            ({"Origin": EVIL}, EVIL),
        ):
            response = guest_session.get(
                linkis_server.api(f"entrance/{exec_id}/kill"), headers=headers, timeout=10
            )
            _assert_refused_as_cross_site(response, reason)
            pause = guest_session.get(
                linkis_server.api(f"entrance/{exec_id}/pause"), headers=headers, timeout=10
            )
            _assert_refused_as_cross_site(pause, reason)
        assert linkis_server.status(exec_id, session=guest_session) not in wire.TERMINAL_STATES
        same_site = guest_session.get(
            linkis_server.api(f"entrance/{exec_id}/kill"),
            headers={"Sec-Fetch-Site": "same-origin"},
            timeout=10,
        )
        assert envelope(same_site)["status"] == 0
    finally:
        guest_session.get(linkis_server.api(f"entrance/{exec_id}/kill"), timeout=10)


def test_reads_are_not_checked(
    linkis_server: ServerProcess, guest_session: requests.Session
) -> None:
    response = guest_session.get(
        linkis_server.api("jobhistory/list"), headers={"Origin": EVIL}, timeout=10
    )
    assert envelope(response)["status"] == 0


@pytest.mark.parametrize("auth", ["password", "token"])
def test_the_projects_client_still_works(linkis_server: ServerProcess, auth: str) -> None:
    credentials = (
        {"password": GUEST["password"]} if auth == "password" else {"token": GUEST["token"]}
    )
    with LinkisClient(linkis_server.url, user=GUEST["name"], **credentials) as client:
        job = client.submit("sleep 60", engine="shell", run_type="shell")
        assert "kill" in client.kill(job.exec_id).lower()
        assert history_state(client, job.task_id, {wire.CANCELLED}, 10) == wire.CANCELLED
