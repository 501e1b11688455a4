"""The HTTP side of the Linkis client: one keep-alive session, auth, retries with backoff.

Token auth sends its headers on every call; password auth logs in on first need, keeps the
session cookie and logs in once more when the session is refused (docs/linkis-rest.md,
"Authentication"). Idempotent calls are retried on connection errors and HTTP 502/503/504; a
submit only when it surely never left this machine.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

import requests
from requests.cookies import remove_cookie_by_name
from urllib3.exceptions import NewConnectionError

from .. import wire
from ..version import __version__
from . import envelope
from .auth import encrypt_password
from .errors import (
    LinkisAuthError,
    LinkisError,
    LinkisSubmitUncertainError,
    LinkisTransportError,
    LinkisValidationError,
)
from .models import LoginInfo

logger = logging.getLogger("linkis_kernel.client")

T = TypeVar("T")

_TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
_BACKOFF_FIRST_S = 0.2
_BACKOFF_CAP_S = 2.0
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class Transport:
    """Sends authenticated requests to one Linkis gateway and decodes their envelopes.

    `url` is the gateway root; `timeout` is (connect, read) seconds; `retries` bounds the retries
    of idempotent calls. `sleep` paces the backoff between retries.
    """

    def __init__(
        self,
        url: str,
        *,
        user: str | None,
        password: str | None,
        token: str | None,
        verify: bool | str,
        timeout: tuple[float, float],
        retries: int,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self.user = user
        self.auth_kind = "token" if token else "password" if password else "none"
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self.sleep = sleep
        self._password = password
        self._token = token
        self._api = url + wire.API_PREFIX + "/"
        self.session = requests.Session()
        self.session.verify = verify
        if urlsplit(url).hostname in _LOOPBACK_HOSTS:
            self.session.trust_env = False  # a local server is never behind HTTP(S)_PROXY
        self.session.headers["User-Agent"] = f"linkis-kernel/{__version__}"
        if token and user:
            self.session.headers[wire.TOKEN_CODE_HEADER] = token
            self.session.headers[wire.TOKEN_USER_HEADER] = user
        self._login_lock = threading.Lock()
        self._logged_in = False
        self._login_generation = 0
        self._sent_password: str | None = None

    def close(self) -> None:
        self.session.close()

    # ---- auth -------------------------------------------------------------------------------

    def login(self) -> LoginInfo:
        """Log in now (password: `user/login`; token: `user/token-login`) and return who we are."""
        if self.auth_kind == "none":
            raise LinkisAuthError(
                "No credentials configured, so there is nothing to log in with",
                hint="Set LINKIS_TOKEN (with LINKIS_USER), or LINKIS_USER and LINKIS_PASSWORD.",
            )
        if self.auth_kind == "token":
            payload = self.finish("POST", "user/token-login", self.send("POST", "user/token-login"))
            return envelope.parse(LoginInfo.from_json, envelope.data_of(payload))
        with self._login_lock:
            return self._password_login()

    def logout(self) -> None:
        """End the password session (`user/logout`); a no-op for token auth."""
        if self.auth_kind != "password" or not self._logged_in:
            return
        with self._login_lock:
            self._logged_in = False
            try:
                self.finish("POST", "user/logout", self.send("POST", "user/logout", body={}))
            except LinkisAuthError:
                pass  # the session had already expired: logged out either way
            finally:
                # Other cookies stay: a device cookie (embedded server) is meant to outlive
                # the session, so that this client's next login is not held up by others'.
                remove_cookie_by_name(self.session.cookies, wire.SESSION_COOKIE)

    def with_auth(self, action: Callable[[], T]) -> T:
        """Run `action`, logging in first when needed and once more if the session was refused."""
        self._ensure_login()
        generation = self._login_generation
        try:
            return action()
        except LinkisAuthError as exc:
            if self.auth_kind != "password":
                raise
            logger.debug("Session refused (%s); logging in again", exc.http_status)
        with self._login_lock:
            if self._login_generation == generation:  # another thread may have done it already
                self._logged_in = False
                self._password_login()
        try:
            return action()
        except LinkisAuthError as exc:
            exc.message = (
                f"Linkis refused the credentials of user {self.user!r} even right after a fresh "
                f"login: {exc.message}"
            )
            raise

    def _password_login(self) -> LoginInfo:
        body = {"userName": self.user, "password": self._login_password()}
        response = self.send("POST", "user/login", body=body)
        try:
            payload = self.finish("POST", "user/login", response)
        except LinkisTransportError:
            raise
        except LinkisError as exc:
            if wire.MSG_ALREADY_LOGGED_IN.lower() not in exc.message.lower():
                raise LinkisAuthError(
                    f"Linkis refused the login of user {self.user!r}: {exc.message}",
                    status=exc.status,
                    method="POST",
                    http_status=exc.http_status,
                    url=exc.url,
                    hint="Check LINKIS_USER and LINKIS_PASSWORD (or use LINKIS_TOKEN).",
                ) from None
            payload = {"data": {"userName": self.user}}
        self._logged_in = True
        self._login_generation += 1
        return envelope.parse(LoginInfo.from_json, envelope.data_of(payload))

    def _login_password(self) -> str:
        """The password as the gateway wants it: RSA-encrypted when it publishes a key."""
        password = self._password or ""
        try:
            key_info = envelope.data_of(
                self.finish("GET", "user/publicKey", self.send("GET", "user/publicKey"))
            )
        except LinkisTransportError as exc:
            if exc.http_status is None:
                raise  # the server is unreachable: the login would fail the same way
            key_info = {}  # no such endpoint on older gateways: plain password
        except LinkisError:
            key_info = {}
        if key_info.get("enableLoginEncrypt") and key_info.get("publicKey"):
            self._sent_password = encrypt_password(password, key_info["publicKey"])
            return self._sent_password
        return password

    def _ensure_login(self) -> None:
        if self.auth_kind == "password" and not self._logged_in:
            with self._login_lock:
                if not self._logged_in:
                    self._password_login()

    def auth_hint(self) -> str:
        """What to check when the gateway refuses these credentials."""
        if self.auth_kind == "token":
            return "Check LINKIS_TOKEN and LINKIS_USER (the token must be known to the gateway)."
        if self.auth_kind == "password":
            return "Check LINKIS_USER and LINKIS_PASSWORD."
        return "Set LINKIS_TOKEN (with LINKIS_USER), or LINKIS_USER and LINKIS_PASSWORD."

    def scrub(self, text: str) -> str:
        """Replace every secret this client holds (password, token, cookies) by ***."""
        secrets = [self._password, self._token, self._sent_password]
        secrets.extend(c.value for c in self.session.cookies)
        return envelope.scrub_secrets(text, secrets)

    # ---- requests ---------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        body: dict | None = None,
        retry: bool = True,
    ) -> dict:
        """One authenticated call; returns the envelope (status 0) or raises its error."""
        return self.with_auth(
            lambda: self.finish(method, path, self.send(method, path, params, body, retry))
        )

    def send(
        self,
        method: str,
        path: str,
        params: dict | None = None,
        body: dict | None = None,
        retry: bool = True,
        stream: bool = False,
    ) -> requests.Response:
        """Send one request, retrying with backoff what may be retried.

        `retry=False` (submit) only retries a request that surely never left this machine.
        """
        delay = _BACKOFF_FIRST_S
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._request_once(method, path, params, body, stream)
            except _TRANSIENT_ERRORS as exc:
                sent = not _never_sent(exc)
                if last or (sent and not retry):
                    uncertain = sent and not retry
                    raise self.transport_error(
                        method, path, exc, uncertain=uncertain, attempts=attempt + 1
                    ) from None
            else:
                if last or not retry or response.status_code not in envelope.RETRY_HTTP_CODES:
                    return response
                response.close()
            self.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, _BACKOFF_CAP_S)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def finish(self, method: str, path: str, response: requests.Response) -> dict:
        """Decode the envelope once; return it when `status` is 0, else raise its error."""
        try:
            return envelope.decode(
                method,
                path,
                response,
                scrub=self.scrub,
                auth_hint=self.auth_hint(),
                attempts=self.retries + 1,
            )
        except requests.RequestException as exc:
            raise self.transport_error(method, path, exc, uncertain=False) from None

    def transport_error(
        self, method: str, path: str, exc: Exception, *, uncertain: bool, attempts: int = 1
    ) -> LinkisTransportError:
        """The error for a request that got no usable answer (`uncertain`: a lost submit)."""
        if isinstance(exc, requests.Timeout):
            reason = f"no answer within {self.timeout[1]:g} s"
        elif isinstance(exc, requests.exceptions.ChunkedEncodingError):
            reason = "the answer was cut off"
        elif _never_sent(exc):
            reason = "could not connect to the server"
        else:
            reason = "the connection broke"
        failure = _connect_failure(exc)
        cls = LinkisSubmitUncertainError if uncertain else LinkisTransportError
        return cls(
            f"{reason} ({failure or type(exc).__name__}){envelope.gave_up_note(attempts)}",
            reason=failure or reason,
            method=method,
            url=envelope.safe_url(self._api + path),
        )

    def _request_once(
        self, method: str, path: str, params: dict | None, body: dict | None, stream: bool
    ) -> requests.Response:
        url = self._api + path
        started = time.monotonic()
        try:
            response = self.session.request(
                method, url, params=params, json=body, timeout=self.timeout, stream=stream
            )
        except requests.exceptions.SSLError as exc:
            raise LinkisTransportError(
                f"The TLS connection failed ({_tls_reason(exc)})",
                method=method,
                url=envelope.safe_url(url),
                hint="If the gateway uses a private CA, pass verify='<CA bundle path>'; "
                "verify=False turns checking off.",
            ) from None
        except _TRANSIENT_ERRORS as exc:
            logger.debug(
                "%s %s failed after %.0f ms: %s", method, path, _ms(started), type(exc).__name__
            )
            raise
        except requests.RequestException as exc:
            raise LinkisValidationError(
                f"Cannot send {method} {path} to {self.url}: {type(exc).__name__}",
                hint="Check LINKIS_URL.",
            ) from None
        logger.debug(
            "%s %s -> HTTP %s in %.0f ms", method, path, response.status_code, _ms(started)
        )
        return response


def _never_sent(exc: Exception) -> bool:
    """True when the request surely never reached the server (connect refused or timed out)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _connect_failure(exc: Exception) -> str | None:
    """Why a connection could not be made, in words: `connection refused`, `unknown host`."""
    text = str(exc)
    if "Connection refused" in text:
        return "connection refused"
    if "Name or service not known" in text or "NameResolutionError" in text:
        return "unknown host"
    return None


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000


def _tls_reason(exc: Exception) -> str:
    """The innermost reason of a requests error, e.g. `CERTIFICATE_VERIFY_FAILED`."""
    text = str(exc)
    match = re.search(r"\[SSL: ([A-Z_]+)\]", text)
    return match.group(1) if match else type(exc).__name__
