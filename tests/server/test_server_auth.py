"""Authentication of the embedded server: login, logout, cookies, tokens, expiry, throttling."""

from __future__ import annotations

import re
import stat
from collections.abc import Iterator

import pytest
import requests
from support.inprocess import PASSWORD, SESSION_TIMEOUT, USER, InProcessServer
from support.serverproc import GUEST, ServerProcess, start_server

from linkis_kernel import wire
from linkis_kernel.local.app import ROUTES

NOT_LOGGED_IN = "You are not logged in, please login first(您尚未登录，请先登录)!"


def _sample_requests() -> list[tuple[str, str]]:
    """(method, path) for every authenticated route, with a made-up id in `{id}`."""
    samples = []
    for route in ROUTES:
        if not route.auth:
            continue
        path = route.pattern.pattern.replace("(?P<job_id>[^/]+)", "exec_id_unknown")
        samples += [(method, path) for method in route.methods]
    return [*samples, ("POST", "user/token-login")]


@pytest.mark.parametrize(("method", "path"), _sample_requests())
def test_every_route_needs_auth(linkis_server: ServerProcess, method: str, path: str) -> None:
    response = requests.request(method, linkis_server.api(path), json={}, timeout=10)
    assert response.status_code == 401
    assert response.json() == {
        "method": f"{wire.API_PREFIX}/{path}",
        "status": -1,
        "message": NOT_LOGGED_IN,
        "data": {},
    }


def test_public_key_needs_no_auth(linkis_server: ServerProcess) -> None:
    body = requests.get(linkis_server.api("user/publicKey"), timeout=10).json()
    assert body["status"] == 0
    assert body["data"] == {"enableSSL": False, "enableLoginEncrypt": False}


def test_login_sets_http_only_session_cookie(linkis_server: ServerProcess) -> None:
    session = requests.Session()
    credentials = {"userName": linkis_server.user, "password": linkis_server.password}
    response = session.post(linkis_server.api("user/login"), json=credentials, timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["method"] is None
    assert body["message"] == "login successful(登录成功)！"
    assert body["data"] == {
        "userName": linkis_server.user,
        "isAdmin": True,
        "sessionTimeOut": 3600000,
        "enableWatermark": True,
    }
    cookie_header = response.headers["Set-Cookie"]
    assert cookie_header.startswith(f"{wire.SESSION_COOKIE}=")
    assert "HttpOnly" in cookie_header and "Path=/" in cookie_header
    ticket = session.cookies[wire.SESSION_COOKIE]
    assert re.fullmatch(r"[A-Za-z0-9_-]{32,}", ticket)
    info = session.get(linkis_server.api("user/userInfo"), timeout=10).json()
    assert info["data"] == {"userName": linkis_server.user}

    again = session.post(linkis_server.api("user/login"), json=credentials, timeout=10).json()
    assert again["status"] == 0
    assert again["message"].startswith(f"{linkis_server.user} {wire.MSG_ALREADY_LOGGED_IN}")
    assert again["data"] == {"userName": linkis_server.user}


def test_login_by_query_parameters(linkis_server: ServerProcess) -> None:
    response = requests.get(
        linkis_server.api("user/login"),
        params={"userName": GUEST["name"], "password": GUEST["password"]},
        timeout=10,
    )
    body = response.json()
    assert body["status"] == 0 and body["data"]["isAdmin"] is False
    assert wire.SESSION_COOKIE in response.cookies


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"userName": "nobody-here", "password": "x"},
            "wrong user name or password(用户名或密码错误)！",
        ),
        ({"password": "x"}, "Username can not be empty(用户名不能为空)！"),
        ({"userName": "someone"}, "Password can not be blank(密码不能为空)！"),
        ({"userName": GUEST["name"], "password": ""}, "Password can not be blank(密码不能为空)！"),
    ],
)
def test_login_failures(linkis_server: ServerProcess, body: dict, message: str) -> None:
    response = requests.post(linkis_server.api("user/login"), json=body, timeout=10)
    assert response.status_code == 400
    assert response.json() == {
        "method": None,
        "status": 1,
        "message": message,
        "data": {"sessionTimeOut": 3600000, "enableWatermark": True},
    }
    assert wire.SESSION_COOKIE not in response.cookies


def test_login_with_wrong_password_of_real_user(linkis_server: ServerProcess) -> None:
    body = {"userName": GUEST["name"], "password": "not-the-password"}
    response = requests.post(linkis_server.api("user/login"), json=body, timeout=10)
    assert response.status_code == 400
    assert response.json()["message"] == "wrong user name or password(用户名或密码错误)！"


def test_logout_ends_the_session(linkis_server: ServerProcess) -> None:
    session = linkis_server.session()
    ticket = session.cookies[wire.SESSION_COOKIE]
    response = session.get(linkis_server.api("user/logout"), timeout=10)
    assert response.json() == {
        "method": None,
        "status": 0,
        "message": "Logout successful(退出登录成功)！",
        "data": {},
    }
    assert wire.SESSION_COOKIE not in session.cookies
    stale = requests.get(
        linkis_server.api("user/userInfo"), cookies={wire.SESSION_COOKIE: ticket}, timeout=10
    )
    assert stale.status_code == 401
    assert stale.json()["status"] == -1
    assert "You are not logged in, please login first!" in stale.json()["message"]


def test_token_headers_authenticate_each_request(linkis_server: ServerProcess) -> None:
    response = requests.get(
        linkis_server.api("user/userInfo"), headers=linkis_server.token_headers(), timeout=10
    )
    assert response.json()["data"] == {"userName": linkis_server.user}
    assert wire.SESSION_COOKIE not in response.cookies
    guest = requests.get(
        linkis_server.api("user/userInfo"),
        headers=linkis_server.token_headers(GUEST["name"], GUEST["token"]),
        timeout=10,
    )
    assert guest.json()["data"] == {"userName": GUEST["name"]}


def test_token_cookies_authenticate_too(linkis_server: ServerProcess) -> None:
    response = requests.get(
        linkis_server.api("user/userInfo"), cookies=linkis_server.token_headers(), timeout=10
    )
    assert response.json()["data"] == {"userName": linkis_server.user}


@pytest.mark.parametrize(
    ("user", "token"),
    [
        (None, "WRONG-TOKEN-value-xyz"),
        ("nobody-here", "WRONG-TOKEN-value-xyz"),
        (GUEST["name"], None),  # the main user's token does not authenticate the guest
    ],
)
def test_bad_token_is_refused_without_echoing_it(
    linkis_server: ServerProcess, user: str | None, token: str | None
) -> None:
    headers = linkis_server.token_headers(user, token)
    response = requests.post(
        linkis_server.api("entrance/submit"), headers=headers, json={}, timeout=10
    )
    assert response.status_code == 401
    body = response.json()
    assert body["status"] == -1
    assert body["method"] == f"{wire.API_PREFIX}/entrance/submit"
    assert body["message"].startswith("Token Authentication Failed")
    assert headers[wire.TOKEN_CODE_HEADER] not in response.text


def test_token_header_alone_is_refused(linkis_server: ServerProcess) -> None:
    response = requests.get(
        linkis_server.api("user/userInfo"),
        headers={wire.TOKEN_CODE_HEADER: linkis_server.token},
        timeout=10,
    )
    assert response.status_code == 401
    assert "Token-User" in response.json()["message"]
    assert linkis_server.token not in response.text


def test_token_login_opens_a_session(linkis_server: ServerProcess) -> None:
    session = requests.Session()
    response = session.post(
        linkis_server.api("user/token-login"), headers=linkis_server.token_headers(), timeout=10
    )
    assert response.json() == {
        "method": None,
        "status": 0,
        "message": "login successful(登录成功)！",
        "data": {"userName": linkis_server.user, "isAdmin": False},
    }
    heartbeat = session.get(linkis_server.api("user/heartbeat"), timeout=10).json()
    assert heartbeat["status"] == 0
    assert heartbeat["message"] == "Maintain heartbeat success(维系心跳成功)"


def test_unknown_session_ticket_is_refused(linkis_server: ServerProcess) -> None:
    response = requests.get(
        linkis_server.api("jobhistory/list"),
        cookies={wire.SESSION_COOKIE: "made-up-ticket"},
        timeout=10,
    )
    assert response.status_code == 401
    body = response.json()
    assert body["status"] == -1
    assert body["message"].startswith("errCode: 11002 ,desc: You are not logged in")


@pytest.fixture(scope="module")
def short_session_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Its own server process, started with a session timeout of 2 s."""
    data_dir = tmp_path_factory.mktemp("short-session")
    with start_server(data_dir, env={"LINKIS_LOCAL_SESSION_TIMEOUT": "2"}) as server:
        yield server


def test_session_timeout_comes_from_the_environment(short_session_server: ServerProcess) -> None:
    server = short_session_server
    login = requests.post(
        server.api("user/login"),
        json={"userName": server.user, "password": server.password},
        timeout=10,
    ).json()
    assert login["data"]["sessionTimeOut"] == 2000


def test_session_expires_after_idle_timeout(clocked: InProcessServer) -> None:
    server, clock = clocked, clocked.clock
    session = requests.Session()
    login = server.login(USER, PASSWORD, session)
    assert login["data"]["sessionTimeOut"] == SESSION_TIMEOUT * 1000
    clock.advance(SESSION_TIMEOUT - 1)
    assert session.get(server.api("user/userInfo"), timeout=10).json()["status"] == 0
    clock.advance(SESSION_TIMEOUT - 1)  # idle less than the timeout since the last request
    assert session.get(server.api("user/userInfo"), timeout=10).json()["status"] == 0
    clock.advance(SESSION_TIMEOUT + 1)
    expired = session.get(server.api("jobhistory/list"), timeout=10)
    assert expired.status_code == 401
    body = expired.json()
    assert body["status"] == -1
    assert body["method"] == f"{wire.API_PREFIX}/jobhistory/list"
    assert "Login has expired, please log in again!" in body["message"]
    assert server.login(USER, PASSWORD, session)["message"] == "login successful(登录成功)！"
    assert session.get(server.api("jobhistory/list"), timeout=10).json()["status"] == 0


def test_long_expired_sessions_are_forgotten(clocked: InProcessServer) -> None:
    server, clock = clocked, clocked.clock
    session = requests.Session()
    server.login(USER, PASSWORD, session)
    clock.advance(10 * SESSION_TIMEOUT + 1)
    server.login(USER, PASSWORD)  # a new session drops the ones idle for ten timeouts
    forgotten = session.get(server.api("user/userInfo"), timeout=10).json()
    assert forgotten["message"].startswith("errCode: 11002 ,desc: You are not logged in")


def test_failed_logins_are_throttled(clocked: InProcessServer) -> None:
    server, clock = clocked, clocked.clock
    messages = {server.login(USER, "wrong")["message"] for _ in range(5)}
    assert messages == {"wrong user name or password(用户名或密码错误)！"}
    refused = requests.post(
        server.api("user/login"), json={"userName": USER, "password": PASSWORD}, timeout=10
    )
    assert refused.status_code == 400
    assert refused.json()["message"].startswith("Too many failed logins")
    assert "try again in 1 s" in refused.json()["message"]
    clock.advance(1.1)
    assert server.login(USER, PASSWORD)["status"] == 0


def test_the_throttling_window_doubles_with_each_further_failure_up_to_five_minutes(
    clocked: InProcessServer,
) -> None:
    server, clock = clocked, clocked.clock
    for _ in range(5):
        server.login(USER, "wrong")
    windows = []
    for _ in range(10):
        refused = server.login(USER, PASSWORD)["message"]
        found = re.search(r"try again in (\d+) s", refused)
        assert found is not None, refused
        windows.append(int(found[1]))
        clock.advance(windows[-1] + 0.1)
        assert server.login(USER, "wrong")["message"].startswith("wrong user name")
    assert windows == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert "try again in 300 s" in server.login(USER, PASSWORD)["message"]
    clock.advance(299)
    assert server.login(USER, PASSWORD)["message"].startswith("Too many failed logins")
    clock.advance(1.1)
    assert server.login(USER, PASSWORD)["status"] == 0


def test_a_devices_own_failures_throttle_only_that_device(clocked: InProcessServer) -> None:
    server, clock = clocked, clocked.clock
    device = requests.Session()
    server.login(USER, PASSWORD, device)
    device.post(server.api("user/logout"), json={}, timeout=10)
    assert wire.DEVICE_COOKIE in device.cookies
    for _ in range(5):
        assert server.login(USER, "wrong", device)["message"].startswith("wrong user name")
    refused = server.login(USER, PASSWORD, device)["message"]
    assert refused.startswith(f"Too many failed logins for user {USER} from this device: ")
    assert "try again in 1 s" in refused
    assert server.login(USER, PASSWORD)["status"] == 0  # its failures are not its address's
    clock.advance(1.1)
    assert server.login(USER, PASSWORD, device)["status"] == 0


def test_failures_from_the_address_leave_a_logged_in_device_alone(
    clocked: InProcessServer,
) -> None:
    server = clocked
    device = requests.Session()
    server.login(USER, PASSWORD, device)
    device.post(server.api("user/logout"), json={}, timeout=10)
    for _ in range(5):
        server.login(USER, "wrong")
    assert server.login(USER, PASSWORD)["message"].startswith("Too many failed logins")
    assert server.login(USER, PASSWORD, device)["status"] == 0


def test_secret_files_are_private(linkis_server: ServerProcess) -> None:
    for name in ("connection.json", "credentials.json"):
        mode = stat.S_IMODE((linkis_server.data_dir / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"
    assert stat.S_IMODE(linkis_server.data_dir.stat().st_mode) == 0o700


def test_banner_and_logs_hold_no_secrets(linkis_server: ServerProcess) -> None:
    session = linkis_server.session()  # a login, so that a ticket exists to leak
    failed = requests.get(  # a GET login carries the password in the query string
        linkis_server.api("user/login"),
        params={"userName": "nobody-here", "password": linkis_server.password},
        timeout=10,
    )
    assert failed.status_code == 400  # failures are logged
    requests.get(
        linkis_server.api("user/userInfo"), headers=linkis_server.token_headers(), timeout=10
    )
    banner = linkis_server.banner
    assert banner == (
        f"Linkis-compatible server at {linkis_server.url} "
        f"(data dir {linkis_server.data_dir}, user {linkis_server.user})"
    )
    logs = linkis_server.log_text() + (linkis_server.data_dir / "server.log").read_text()
    assert "/user/login" in logs  # the requests were logged...
    secrets = [linkis_server.password, linkis_server.token]
    secrets += [session.cookies[wire.SESSION_COOKIE], session.cookies[wire.DEVICE_COOKIE]]
    for secret in secrets:  # ...without any secret
        assert secret not in logs
