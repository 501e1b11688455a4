"""Users, password and token checks, login sessions and failed-login throttling.

Passwords are kept only as scrypt hashes with a per-user salt; tokens (random, high-entropy)
only as SHA-256 digests. Every comparison is constant-time. Nothing here ever puts a secret
into a message, a log line or a repr.

Failed password logins are counted per (user, address), and, for a client holding a valid device
cookie of the user (devices.py), per device instead: another client failing logins under the
user's name, from the same address, cannot then keep the user's own device out. Token logins
are not throttled: the generated token is a random 256-bit secret, which no number of guesses
finds (users.json's tokens are as good as whoever wrote them; README, "Security").
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..wire import STATUS_NOT_LOGGED_IN, TOKEN_CODE_HEADER, TOKEN_USER_HEADER
from .devices import DeviceCookies
from .errors import ServiceError

DEFAULT_SESSION_TIMEOUT = 3600.0  # seconds; Linkis ships `wds.linkis.session.timeout=1h`
FREE_LOGIN_FAILURES = 5  # failed logins per (user, address or device) before slowing down
MAX_LOGIN_DELAY = 300.0  # seconds; the refusal window grows up to this
MAX_TRACKED_FAILURES = 10_000
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
_DUMMY_SALT = secrets.token_bytes(16)

MSG_LOGIN_OK = "login successful(登录成功)！"
MSG_LOGOUT_OK = "Logout successful(退出登录成功)！"
MSG_WRONG_PASSWORD = "wrong user name or password(用户名或密码错误)！"
MSG_NO_USER = "Username can not be empty(用户名不能为空)！"
MSG_NO_PASSWORD = "Password can not be blank(密码不能为空)！"
MSG_NOT_LOGGED_IN = "You are not logged in, please login first(您尚未登录，请先登录)!"
DESC_UNKNOWN_TICKET = "You are not logged in, please login first!(您尚未登录，请先登录!)"
DESC_EXPIRED = "Login has expired, please log in again!(登录已过期，请重新登录！)"
DESC_INVALID_TOKEN = "Invalid Token(数据库中未配置的无效令牌)"
GATEWAY_SERVICE = "linkis-mg-gateway"


def new_secret() -> str:
    """A random secret for passwords, tokens and tickets: URL-safe, without `=` or `/`."""
    return secrets.token_urlsafe(32)


def _password_hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)


def _token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class User:
    """A user of the local server; holds only hashes of its secrets."""

    name: str
    is_admin: bool = field(default=False)
    _salt: bytes = field(default=b"", repr=False)
    _password_hash: bytes = field(default=b"", repr=False)
    _token_digest: bytes | None = field(default=None, repr=False)

    @classmethod
    def create(cls, name: str, password: str, token: str | None, *, is_admin: bool = False) -> User:
        """Hash `password` (and `token`) for a new user; the clear texts are not kept."""
        if not name or not password:
            raise ValueError("a user needs a non-empty name and password")
        salt = secrets.token_bytes(16)
        return cls(
            name=name,
            is_admin=is_admin,
            _salt=salt,
            _password_hash=_password_hash(password, salt),
            _token_digest=_token_digest(token) if token else None,
        )

    def password_matches(self, password: str) -> bool:
        return hmac.compare_digest(_password_hash(password, self._salt), self._password_hash)

    def token_matches(self, token: str) -> bool:
        if self._token_digest is None:
            return False
        return hmac.compare_digest(_token_digest(token), self._token_digest)


@dataclass
class _Session:
    user: str
    last_seen: float


@dataclass
class _Failures:
    count: int = 0
    blocked_until: float = 0.0


@dataclass(frozen=True)
class _Client:
    """Whose failed logins an attempt counts with: a device's own, or all from its address."""

    user: str  # lower case
    address: str
    device: str | None  # the nonce of a valid device cookie of `user`

    @property
    def key(self) -> tuple[str, str, str]:
        if self.device is not None:
            return ("device", self.user, self.device)
        return ("address", self.user, self.address)

    def describe(self) -> str:
        return "this device" if self.device is not None else self.address


@dataclass(frozen=True)
class PasswordLogin:
    """A successful password login: the user, and the device cookie to (re)set on the client."""

    user: User
    device_cookie: str = field(repr=False)


class AuthStore:
    """The users, live sessions and failed-login counters of one server process.

    `where` is the (ip, port) that formatted gateway errors name; `clock` gives the seconds
    that session expiry and login throttling measure (monotonic; tests pass a fake one);
    `device_key` signs device cookies (a random one, good for this process, by default).
    """

    def __init__(
        self,
        users: list[User],
        *,
        session_timeout: float = DEFAULT_SESSION_TIMEOUT,
        where: tuple[str, int] = ("127.0.0.1", 0),
        clock: Callable[[], float] = time.monotonic,
        device_key: bytes | None = None,
    ):
        self._users = {user.name.lower(): user for user in users}
        self._devices = DeviceCookies(device_key or secrets.token_bytes(32))
        self.session_timeout = session_timeout
        self.where = where
        self._clock = clock
        self._sessions: dict[str, _Session] = {}
        self._failures: dict[tuple[str, str, str], _Failures] = {}
        self._lock = threading.Lock()

    def user(self, name: str) -> User | None:
        return self._users.get(name.lower())

    # -- password login -------------------------------------------------------------------------

    def login(
        self,
        name: str | None,
        password: str | None,
        address: str,
        device_cookie: str | None = None,
    ) -> PasswordLogin:
        """Check a user name and password; raise `ServiceError` with the Linkis message if wrong.

        `device_cookie` is the client's device cookie, if it sent one: when it is valid for
        `name`, only that device's own failures can slow the attempt down.
        """
        if not name:
            raise ServiceError(MSG_NO_USER)
        if not password:
            raise ServiceError(MSG_NO_PASSWORD)
        client = _Client(name.lower(), address, self._devices.device_of(name, device_cookie))
        self._refuse_if_throttled(client)
        user = self.user(name)
        if user is None:
            _password_hash(password, _DUMMY_SALT)  # as slow as a real check: names stay private
        elif user.password_matches(password):
            with self._lock:
                self._failures.pop(client.key, None)
            if client.device is None or device_cookie is None:
                device_cookie = self._devices.issue(user.name)
            return PasswordLogin(user, device_cookie)
        self._count_failure(client.key)
        raise ServiceError(MSG_WRONG_PASSWORD)

    def _refuse_if_throttled(self, client: _Client) -> None:
        with self._lock:
            failures = self._failures.get(client.key)
            wait = failures.blocked_until - self._clock() if failures else 0.0
        if wait > 0:
            raise ServiceError(
                f"Too many failed logins for user {client.user} from {client.describe()}: try "
                f"again in {max(wait, 1):.0f} s (the local server's password is in "
                "connection.json)."
            )

    def _count_failure(self, key: tuple[str, str, str]) -> None:
        with self._lock:
            if len(self._failures) > MAX_TRACKED_FAILURES:  # forget guesses no longer blocked
                now = self._clock()
                for stale in [k for k, f in self._failures.items() if f.blocked_until < now]:
                    del self._failures[stale]
            failures = self._failures.setdefault(key, _Failures())
            failures.count += 1
            extra = failures.count - FREE_LOGIN_FAILURES
            if extra >= 0:
                delay = min(2.0**extra, MAX_LOGIN_DELAY)
                failures.blocked_until = self._clock() + delay

    # -- sessions ------------------------------------------------------------------------------

    def open_session(self, user: User) -> str:
        """Start a session for `user`; returns the ticket to put in the session cookie."""
        ticket = new_secret()
        now = self._clock()
        with self._lock:
            self._drop_old_sessions(now)
            self._sessions[ticket] = _Session(user.name, now)
        return ticket

    def close_session(self, ticket: str | None) -> None:
        if ticket:
            with self._lock:
                self._sessions.pop(ticket, None)

    def session_user(self, ticket: str) -> str:
        """The user of a live session; refreshes its idle timer. Raises a 401 error otherwise."""
        now = self._clock()
        with self._lock:
            session = self._sessions.get(ticket)
            if session is None:
                raise self.gateway_error(DESC_UNKNOWN_TICKET)
            if now - session.last_seen > self.session_timeout:
                raise self.gateway_error(DESC_EXPIRED)
            session.last_seen = now
            return session.user

    def live_session_user(self, ticket: str | None) -> str | None:
        """The user of a live session, or None (for login's already-logged-in check)."""
        if not ticket:
            return None
        try:
            return self.session_user(ticket)
        except ServiceError:
            return None

    def _drop_old_sessions(self, now: float) -> None:
        # Expired sessions are kept for a while so that their holder hears "expired", not
        # "not logged in"; after ten timeouts they are forgotten.
        horizon = 10 * self.session_timeout
        for ticket in [t for t, s in self._sessions.items() if now - s.last_seen > horizon]:
            del self._sessions[ticket]

    # -- tokens --------------------------------------------------------------------------------

    def token_user(self, token_user: str | None, token_code: str | None) -> User:
        """The user a `Token-User`/`Token-Code` pair authenticates; a 401 error otherwise."""
        if not token_user or not token_code:
            missing = TOKEN_USER_HEADER if not token_user else TOKEN_CODE_HEADER
            raise self._token_error(token_user, f"the {missing} header is missing")
        user = self.user(token_user)
        if user is None or not user.token_matches(token_code):
            raise self._token_error(token_user, self.formatted(DESC_INVALID_TOKEN, 15204))
        return user

    def _token_error(self, token_user: str | None, reason: str) -> ServiceError:
        # Linkis echoes the token here; it is a secret, so it is left out.
        return ServiceError(
            f"Token Authentication Failed, tokenUser: {token_user or ''}, reason: {reason}",
            status=STATUS_NOT_LOGGED_IN,
        )

    def formatted(self, desc: str, code: int) -> str:
        """A gateway exception's text: `errCode: N ,desc: D ,ip: I ,port: P ,serviceKind: S`."""
        ip, port = self.where
        return (
            f"errCode: {code} ,desc: {desc} ,ip: {ip} ,port: {port} ,serviceKind: {GATEWAY_SERVICE}"
        )

    def gateway_error(self, desc: str) -> ServiceError:
        return ServiceError(self.formatted(desc, 11002), status=STATUS_NOT_LOGGED_IN)
