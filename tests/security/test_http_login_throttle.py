"""One user cannot keep another out by failing logins under their name (docs/linkis-rest.md,
"Authentication").

Failed password logins slow down further attempts per (user, address), and all users of a shared
machine come from one address. A client that has logged in as alice holds her device cookie; its
attempts count only its own failures, so bob, failing logins as alice from the same address,
cannot delay them. A client without the cookie (or with a forged one, or bob's) shares the
throttle of its address.

The throttle tests serve the app in this process on a clock that only moves by hand, so bob's
refusal window cannot run out while a test checks who it holds back; the device key's storage is
tested on real server processes.
"""

from __future__ import annotations

import json
import logging
import re
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.inprocess import FakeClock, InProcessServer, serve_in_process
from support.serverproc import ServerProcess, start_server
from support.twousers import ALICE, BOB, envelope
from support.waiting import wait_until

from linkis_kernel import LinkisClient, wire
from linkis_kernel.client import LinkisAuthError
from linkis_kernel.local.auth import FREE_LOGIN_FAILURES, AuthStore, User
from linkis_kernel.local.service import LocalLinkis

WRONG_PASSWORD = "wrong user name or password(用户名或密码错误)！"
THROTTLED = re.compile(r"Too many failed logins for user alice from \S+: try again in (\d+) s")
THROTTLE_SECONDS = 4  # what bob's failures hold a real server's shared-address login back for

Server = ServerProcess | InProcessServer


@pytest.fixture
def server(in_process_service: LocalLinkis) -> Iterator[InProcessServer]:
    """The app for ALICE and BOB, on a FakeClock that the tests never advance."""
    clock = FakeClock()
    users = [User.create(user["name"], user["password"], user["token"]) for user in (ALICE, BOB)]
    with serve_in_process(in_process_service, AuthStore(users, clock=clock), clock) as served:
        yield served


def _login(
    server: Server, user: dict[str, str], password: str, client: requests.Session
) -> requests.Response:
    body = {"userName": user["name"], "password": password}
    return client.post(server.api("user/login"), json=body, timeout=10)


def _logged_in_device(server: Server, user: dict[str, str]) -> requests.Session:
    """A client that logged in as `user` and out again: it keeps only the device cookie."""
    client = requests.Session()
    assert envelope(_login(server, user, user["password"], client))["status"] == 0
    client.post(server.api("user/logout"), json={}, timeout=10)
    assert list(client.cookies.keys()) == [wire.DEVICE_COOKIE]
    return client


def _throttle_alice_as_bob(server: InProcessServer) -> None:
    """Bob fails logins as alice from the shared address until a login without alice's device
    cookie is refused; the server's clock stands still, so the refusal lasts."""
    for _ in range(FREE_LOGIN_FAILURES):
        refused = envelope(_login(server, ALICE, "bob-guess", requests.Session()))
        assert refused["message"] == WRONG_PASSWORD
    _assert_throttled(_login(server, ALICE, ALICE["password"], requests.Session()))


def _throttle_alice_as_bob_for_seconds(server: ServerProcess) -> None:
    """As `_throttle_alice_as_bob` on a real server, until the refusal is for THROTTLE_SECONDS
    or more (each window doubles the last, from 1 s)."""

    def refused_long_enough() -> bool:
        message = envelope(_login(server, ALICE, "bob-guess", requests.Session()))["message"]
        if message == WRONG_PASSWORD:
            return False
        seconds = THROTTLED.fullmatch(message.split(" (")[0])
        assert seconds is not None, message
        return int(seconds.group(1)) >= THROTTLE_SECONDS

    wait_until(refused_long_enough, timeout=30, interval=0.2)


def _assert_throttled(response: requests.Response) -> None:
    assert response.status_code == 400
    message = envelope(response)["message"]
    assert THROTTLED.match(message), message
    assert wire.SESSION_COOKIE not in response.cookies
    assert wire.DEVICE_COOKIE not in response.cookies


def test_bob_failing_logins_as_alice_does_not_hold_up_her_device(server: InProcessServer) -> None:
    device = _logged_in_device(server, ALICE)
    _throttle_alice_as_bob(server)
    accepted = envelope(_login(server, ALICE, ALICE["password"], device))
    assert accepted["status"] == 0 and accepted["data"]["userName"] == "alice"
    whoami = envelope(device.get(server.api("user/userInfo"), timeout=10))
    assert whoami["data"] == {"userName": "alice"}
    # ...while a client that never logged in as alice still waits out bob's failures.
    _assert_throttled(_login(server, ALICE, ALICE["password"], requests.Session()))


def test_a_forged_or_another_users_device_cookie_gives_no_exemption(
    server: InProcessServer,
) -> None:
    alice_device = _logged_in_device(server, ALICE)
    real = alice_device.cookies[wire.DEVICE_COOKIE]
    bobs = _logged_in_device(server, BOB).cookies[wire.DEVICE_COOKIE]
    nonce, mac = real.split(".")
    other_mac = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    _throttle_alice_as_bob(server)
    for cookie in (bobs, f"{nonce}.{other_mac}", f"{'x' * 22}.{mac}", "made-up", real + "."):
        client = requests.Session()
        client.cookies.set(wire.DEVICE_COOKIE, cookie)
        _assert_throttled(_login(server, ALICE, ALICE["password"], client))
    assert envelope(_login(server, ALICE, ALICE["password"], alice_device))["status"] == 0


def test_the_device_cookie_is_http_only_same_site_strict_and_lasts_a_year(
    server: InProcessServer,
) -> None:
    response = _login(server, ALICE, ALICE["password"], requests.Session())
    headers = response.raw.headers.getlist("Set-Cookie")
    device = [h for h in headers if h.startswith(f"{wire.DEVICE_COOKIE}=")]
    assert len(device) == 1, headers
    attributes = {part.strip().split("=")[0] for part in device[0].split(";")[1:]}
    assert {"HttpOnly", "SameSite", "Path", "expires"} <= attributes, device[0]
    assert "SameSite=Strict" in device[0] and "Path=/" in device[0]
    cookie = next(c for c in response.cookies if c.name == wire.DEVICE_COOKIE)
    assert cookie.expires is not None
    assert 364 * 86400 < cookie.expires - time.time() <= 366 * 86400
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}", cookie.value)


def test_a_login_with_the_device_cookie_keeps_it(server: InProcessServer) -> None:
    device = _logged_in_device(server, ALICE)
    issued = device.cookies[wire.DEVICE_COOKIE]
    again = _login(server, ALICE, ALICE["password"], device)
    assert again.cookies[wire.DEVICE_COOKIE] == issued  # sent again, for another year
    fresh = _login(server, ALICE, ALICE["password"], requests.Session())
    assert fresh.cookies[wire.DEVICE_COOKIE] != issued


def test_the_device_cookie_key_is_kept_in_credentials_json_across_restarts(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    older = {"user": "owner", "password": "owner-password-1", "token": "owner-token-1"}
    (data_dir / "credentials.json").write_text(json.dumps(older))  # written before device keys
    with start_server(data_dir, users=[ALICE, BOB]) as first:
        device = _logged_in_device(first, ALICE)
    stored = json.loads((data_dir / "credentials.json").read_text())
    assert {k: stored[k] for k in older} == older
    assert len(stored["device_key"]) >= 43
    assert stat.S_IMODE((data_dir / "credentials.json").stat().st_mode) == 0o600
    with start_server(data_dir) as second:
        _throttle_alice_as_bob_for_seconds(second)
        assert envelope(_login(second, ALICE, ALICE["password"], device))["status"] == 0
    assert json.loads((data_dir / "credentials.json").read_text()) == stored


def test_the_client_keeps_the_device_cookie_across_logins_and_never_shows_it(
    server: InProcessServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="linkis_kernel")
    client = LinkisClient(server.url, user=ALICE["name"], password=ALICE["password"])
    with client:
        assert client.login().user_name == "alice"
        client.logout()
        cookie = client._session.cookies[wire.DEVICE_COOKIE]
        _throttle_alice_as_bob(server)
        assert client.login().user_name == "alice"  # sent the device cookie back
        assert client.global_variables() == {}  # the new session works
        shown = [repr(client), str(client.__dict__), caplog.text]
    assert all(cookie not in text for text in shown)
    fresh = LinkisClient(server.url, user=ALICE["name"], password=ALICE["password"])
    with fresh, pytest.raises(LinkisAuthError, match="Too many failed logins") as refused:
        fresh.login()
    assert cookie not in str(refused.value) and ALICE["password"] not in str(refused.value)
