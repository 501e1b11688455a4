"""The request handler of `linkis-kernel serve`: routing, authentication and the Linkis envelope.

One handler serves every path under `wire.API_PREFIX`: it finds the route, authenticates,
parses parameters, runs the service call on a bounded thread pool (so a slow page read never
stalls the IOLoop) and wraps the answer in the Linkis envelope. Nothing ever reaches the client
as a 500, an HTML page or a traceback: unexpected errors are logged and answered the way the
Linkis services answer any exception (`operation failed(操作失败)s！...`).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import tornado.web
from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError

from .. import wire
from .auth import MSG_NOT_LOGGED_IN, AuthStore
from .errors import OPERATION_FAILED, ServiceError

if TYPE_CHECKING:
    from .paths import Layout
    from .service import LocalLinkis

log = logging.getLogger("linkis_kernel.local")

MAX_BODY_BYTES = 10 * 1024 * 1024
# Requests of one user answered at once, from the start of the work until the answer is sent;
# the user's other requests wait, so answers a user leaves unread cannot fill the memory.
ANSWERS_PER_USER = 8
# The gateway answers an unknown numeric id with HTTP 200 (docs/linkis-rest.md, "Errors and
# HTTP codes").
_GATEWAY_PARSER_ERROR = re.compile(r"taskId \S+ is not exists\.")
_SERVICE_KIND = {
    "entrance": wire.ENTRANCE_APPLICATION,
    "service": "linkis-ps-publicservice",
    "user": "linkis-mg-gateway",
    "manager": "linkis-cg-linkismanager",
    "rm": "linkis-cg-linkismanager",
    "labels": "linkis-ps-publicservice",
}
# Services whose answers carry `method: null` (no `...RestfulApi` class on the stack).
_NULL_METHOD_FAMILIES = ("user", "rm", "labels")


@dataclass
class Reply:
    """What an endpoint answers: the envelope's `data`, `message` and `status`."""

    data: dict[str, Any] = field(default_factory=dict)
    message: str = "OK"
    status: int = wire.STATUS_OK


Endpoint = Callable[..., Awaitable["Reply | None"]]


@dataclass(frozen=True)
class Route:
    """One REST path (relative to the API prefix), its methods and its endpoint."""

    methods: tuple[str, ...]
    pattern: re.Pattern[str]
    endpoint: Endpoint
    family: str  # a `_SERVICE_KIND` key: decides `method` and `serviceKind`
    auth: bool = True
    text_errors: bool = False  # a file download: errors answer as text with HTTP 200
    changes_state: bool = False  # a GET that changes something (kill): checked as a POST is


class AnswerSlots:
    """How many requests of each user are answered at once (used on the IOLoop only)."""

    def __init__(self, per_user: int = ANSWERS_PER_USER):
        self._per_user = per_user
        self._slots: dict[str, asyncio.Semaphore] = {}

    def of(self, user: str) -> asyncio.Semaphore:
        if user not in self._slots:
            self._slots[user] = asyncio.Semaphore(self._per_user)
        return self._slots[user]


@dataclass
class AppContext:
    """What every request needs: the services, the users, the routes and the thread pool."""

    service: LocalLinkis
    auth: AuthStore
    routes: tuple[Route, ...]
    executor: ThreadPoolExecutor
    answer_slots: AnswerSlots = field(default_factory=AnswerSlots)


class ApiError(ServiceError):
    """A request the HTTP layer refuses before any service sees it."""


# -- the handler ---------------------------------------------------------------------------------


@tornado.web.stream_request_body
class ApiHandler(tornado.web.RequestHandler):
    """Every request under the API prefix; the body is streamed so its size can be capped."""

    SUPPORTED_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")

    def initialize(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.user = ""
        self.route: Route | None = None
        self._body = bytearray()
        self._body_too_large = False

    async def prepare(self) -> None:
        length = self.request.headers.get("Content-Length", "")
        if length.isdecimal() and int(length) > MAX_BODY_BYTES:
            self._refuse_large_body()

    def compute_etag(self) -> None:
        # API answers are never revalidated; hashing every (page-sized) body costs CPU for nothing.
        return None

    def data_received(self, chunk: bytes) -> None:
        if len(self._body) + len(chunk) > MAX_BODY_BYTES:
            self._body_too_large = True
            self._body.clear()
        elif not self._body_too_large:
            self._body.extend(chunk)

    def _refuse_large_body(self) -> None:
        self.set_status(413)
        self._write_json(
            None,
            wire.STATUS_ERROR,
            f"The request body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MiB; "
            "send less data per request.",
            {},
        )

    async def get(self, rest: str) -> None:
        await self._dispatch(rest)

    post = put = delete = patch = get

    # -- dispatch ------------------------------------------------------------------------------

    async def _dispatch(self, rest: str) -> None:
        if self._body_too_large:
            self._refuse_large_body()
            return
        # Routing errors come from the gateway, which names the full request URI.
        method_path: str | None = self.request.path
        try:
            route, params = self._find_route(rest)
            self.route = route
            method_path = None if route.family in _NULL_METHOD_FAMILIES else f"/api/{unquote(rest)}"
            if route.changes_state or self.request.method != "GET":
                self._refuse_cross_site()
            if route.auth:
                self.user = self._authenticate()
                async with self.ctx.answer_slots.of(self.user):
                    await self._answer(route, params, method_path)
            else:
                await self._answer(route, params, method_path)
        except StreamClosedError:
            pass  # the client went away before reading the answer
        except ServiceError as err:
            self._send_service_error(err, method_path)
        except Exception as err:
            log.exception("%s %s failed", self.request.method, self.request.path)
            message = _operation_failed(err, self.ctx.service.layout)
            self._send_service_error(ServiceError(message), method_path)

    async def _answer(self, route: Route, params: dict[str, str], method: str | None) -> None:
        """Run the endpoint and send its answer, returning once it is sent."""
        reply = await route.endpoint(self, **params)
        # Writing is inside the error handling too: an answer that cannot be serialised
        # still ends as an envelope, never as tornado's HTTP 500.
        if reply is not None:
            sent = self._write_json(method, reply.status, reply.message, reply.data)
            if sent is not None:
                await sent

    def _find_route(self, rest: str) -> tuple[Route, dict[str, str]]:
        allowed: list[str] = []
        for route in self.ctx.routes:
            match = route.pattern.fullmatch(rest)
            if match is None:
                continue
            if self.request.method in route.methods:
                return route, {k: unquote(v) for k, v in match.groupdict().items()}
            allowed.extend(route.methods)
        if allowed:
            raise ApiError(
                f"Request method '{self.request.method}' is not supported for "
                f"{self.request.path}; use {' or '.join(sorted(set(allowed)))}."
            )
        raise ApiError(f"unknown request URI {self.request.path}")

    def _refuse_cross_site(self) -> None:
        """Refuse what another page can make a browser send with the user's cookies
        (docs/linkis-rest.md, "Authentication"): a request that says it is not same-origin, one
        whose Origin is not this server, and, without an Origin, a body that is not JSON (an HTML
        form or a fetch without preflight cannot send Content-Type application/json)."""
        headers = self.request.headers
        what = f"{self.request.method} {self.request.path}"
        # `same-site` too: a page on another port of this host (another local server) is
        # same-site, and SameSite cookies go with its requests.
        fetch_site = headers.get("Sec-Fetch-Site", "none").lower()
        if fetch_site not in ("same-origin", "none"):
            raise _cross_site(
                f"{what} came from another site's page (Sec-Fetch-Site: {fetch_site})"
            )
        origin = headers.get("Origin")
        if origin is not None:
            host = headers.get("X-Forwarded-Host") or self.request.host
            if urlsplit(origin).netloc.lower() != host.lower():
                raise _cross_site(f"{what} came from {origin!r}, not from this server ({host})")
            return
        content_type = headers.get("Content-Type")
        if content_type is not None and not _is_json_type(content_type):
            raise _cross_site(
                f"{what} sent Content-Type {content_type!r} without an Origin header; send the "
                "body as JSON (Content-Type: application/json)"
            )

    def _authenticate(self) -> str:
        """The user a request acts as: token headers (or cookies) first, then the session."""
        token_user = self.header_or_cookie(wire.TOKEN_USER_HEADER)
        token_code = self.header_or_cookie(wire.TOKEN_CODE_HEADER)
        if token_user or token_code:
            return self.ctx.auth.token_user(token_user, token_code).name
        ticket = self.get_cookie(wire.SESSION_COOKIE)
        if not ticket:
            raise ServiceError(MSG_NOT_LOGGED_IN, status=wire.STATUS_NOT_LOGGED_IN)
        return self.ctx.auth.session_user(ticket)

    def header_or_cookie(self, name: str) -> str | None:
        """A request header, or a cookie of the same name (Linkis accepts token cookies too)."""
        return self.request.headers.get(name) or self.get_cookie(name)

    # -- answers -------------------------------------------------------------------------------

    def _send_service_error(self, err: ServiceError, method_path: str | None) -> None:
        if err.status == wire.STATUS_NOT_LOGGED_IN:
            self._write_json(self.request.path, err.status, err.message, {})
            return
        if self.route is not None and self.route.text_errors:
            self._send_error_text(err.message)
            return
        data: dict[str, Any] = {}
        if err.code is not None or err.message.startswith(OPERATION_FAILED):
            # An exception caught by the Linkis services' aspect: no `method`, and `errorMsg`.
            data["errorMsg"] = self._error_detail(err)
            method_path = None
        http_code = None
        if _GATEWAY_PARSER_ERROR.fullmatch(err.message):
            http_code, method_path = 200, self.request.path
        self._write_json(method_path, err.status, err.message, data, http_code)

    def _send_error_text(self, message: str) -> None:
        """The error answer of a void endpoint: HTTP 200, `error(错误):<message>` as text."""
        if self._headers_written:
            # Part of the file is out already: cut the connection so it cannot pass as complete.
            stream = getattr(self.request.connection, "stream", None)
            if stream is not None:
                stream.close()
            return
        self.clear()
        self.set_status(200)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"error(错误):{message}".encode(errors="backslashreplace"))

    def _error_detail(self, err: ServiceError) -> dict[str, Any]:
        ip, port = self.ctx.auth.where
        family = self.route.family if self.route else "service"
        return {
            "serviceKind": _SERVICE_KIND[family],
            "level": 2,
            "port": port,
            "errCode": err.code or 0,
            "desc": err.desc if err.code is not None else err.message,
            "ip": ip,
        }

    def _write_json(
        self,
        method_path: str | None,
        status: int,
        message: str,
        data: dict[str, Any],
        http_code: int | None = None,
    ) -> Awaitable[None] | None:
        """Send the envelope; the awaitable is done when the client has it."""
        if self._finished:
            return None
        body = _envelope_bytes(
            {"method": method_path, "status": status, "message": message, "data": data}
        )
        if http_code is not None:
            self.set_status(http_code)
        elif self.get_status() != 413:
            self.set_status(wire.HTTP_CODE_FOR_STATUS.get(status, 400))
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        return self.finish(body)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """Tornado-level failures (bad HTTP, unsupported verb) still answer a Linkis envelope."""
        self.clear()
        self.set_status(status_code)
        reason = self._reason or "error"
        message = f"The request failed: HTTP {status_code} {reason} ({self.request.path})."
        self._write_json(self.request.path, wire.STATUS_ERROR, message, {}, status_code)

    # -- helpers for endpoints ----------------------------------------------------------------

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a (blocking) service call on the HTTP thread pool."""
        call = functools.partial(fn, *args, **kwargs)
        return await IOLoop.current().run_in_executor(self.ctx.executor, call)

    def has_body(self) -> bool:
        return bool(self._body.strip())

    def json_object(self) -> dict[str, Any]:
        """The request body as a JSON object, or a clear error."""
        value = self.json_value()
        if not isinstance(value, dict):
            raise ApiError(
                f"The request body must be a JSON object, got {_json_kind(value)}; "
                "send a JSON object."
            )
        return value

    def json_value(self) -> Any:
        """The request body as any JSON value, or a clear error."""
        if not self.has_body():
            raise ApiError("The request body is empty; send a JSON object.")
        try:
            value = json.loads(bytes(self._body))
        except UnicodeDecodeError:
            raise ApiError("The request body is not UTF-8 text; send a JSON object.") from None
        except RecursionError:
            raise ApiError(
                "The request body nests arrays or objects too deeply; send a flatter JSON object."
            ) from None
        except json.JSONDecodeError as err:
            raise ApiError(
                f"The request body is not valid JSON ({err.msg} at line {err.lineno} "
                f"column {err.colno}); send a JSON object."
            ) from None
        field = _field_not_utf8(value)
        if field is not None:
            raise ApiError(
                f"The field {field or '(the body)'} holds text that is not valid Unicode "
                "(a lone surrogate escape such as \\ud800); send it as valid UTF-8 text."
            )
        return value

    def str_param(self, name: str, default: str | None = None) -> str | None:
        return self.get_query_argument(name, default)

    def int_param(self, name: str, default: int | None = None) -> int | None:
        text = self.get_query_argument(name, None)
        if text is None or text == "":
            return default
        try:
            return int(text)
        except ValueError:
            raise ApiError(f"Parameter {name} must be an integer, got {text!r}.") from None

    def bool_param(self, name: str, default: bool) -> bool:
        text = self.get_query_argument(name, None)
        if text is None or text == "":
            return default
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise ApiError(f"Parameter {name} must be true or false, got {text!r}.")

    def path_param(self) -> str:
        """The `path` parameter; the services answer 80004 when it is missing or blank."""
        return self.get_query_argument("path", "")

    def task_id_param(self) -> int | None:
        return self.int_param("taskID")


def log_request(handler: tornado.web.RequestHandler) -> None:
    """The access log line; without the query string, where a GET login carries the password."""
    elapsed = 1000.0 * handler.request.request_time()
    status = handler.get_status()
    level = logging.DEBUG if status < 400 else logging.INFO  # clients poll: keep successes quiet
    request = handler.request
    log.log(level, "%d %s %s %.1fms", status, request.method, request.path, elapsed)


def _cross_site(reason: str) -> ApiError:
    return ApiError(
        f"Refused a request that may come from another site: {reason}. Requests that change "
        "something must come from this server's own pages or from a client that sends JSON.",
        status=wire.STATUS_NO_PERMISSION,
    )


def _is_json_type(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/json"


def _envelope_bytes(envelope: dict[str, Any]) -> bytes:
    """The envelope as UTF-8 JSON. Text that UTF-8 cannot hold (a lone surrogate read back from
    an old history row) is sent as a JSON escape instead of failing the whole answer."""
    try:
        return json.dumps(envelope, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return json.dumps(envelope).encode()


def _field_not_utf8(value: Any) -> str | None:
    """The dotted name of a key or string in `value` that UTF-8 cannot encode ("" for the value
    itself), or None when all of it can. Iterative: bodies may nest as deep as JSON allows."""
    pending: list[tuple[str, Any]] = [("", value)]
    while pending:
        where, item = pending.pop()
        if isinstance(item, str) and not _is_utf8(item):
            return where
        if isinstance(item, dict):
            for key, child in item.items():
                name = f"{where}.{key}" if where else str(key)
                if not _is_utf8(name):
                    return ascii(name)
                pending.append((name, child))
        elif isinstance(item, list):
            pending.extend((f"{where}[{i}]", child) for i, child in enumerate(item))
    return None


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _json_kind(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _operation_failed(err: BaseException, layout: Layout) -> str:
    """The Linkis text of an unexpected exception, without the server's data dir (the full
    exception is in the server's log)."""
    root = err
    while root.__cause__ is not None:
        root = root.__cause__
    return f"{OPERATION_FAILED}{type(root).__name__}: {layout.hidden(str(root))}"


class NotFoundHandler(tornado.web.RequestHandler):
    """Any path outside the API prefix: a Linkis-shaped error, never tornado's HTML page."""

    SUPPORTED_METHODS = ApiHandler.SUPPORTED_METHODS

    async def get(self, *args: Any) -> None:
        self.write_error(400)

    post = put = delete = patch = get

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.clear()
        self.set_status(400)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        message = (
            f"unknown request URI {self.request.path}: this Linkis-compatible server answers "
            f"under {wire.API_PREFIX}/"
        )
        envelope = {"method": self.request.path, "status": 1, "message": message, "data": {}}
        self.finish(json.dumps(envelope, ensure_ascii=False))
