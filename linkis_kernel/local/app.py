"""The tornado application of `linkis-kernel serve`: the Linkis REST contract over `LocalLinkis`.

One handler serves every path under `wire.API_PREFIX`: it finds the route, authenticates,
parses parameters, runs the service call on a bounded thread pool (so a slow page read never
stalls the IOLoop) and wraps the answer in the Linkis envelope. Nothing ever reaches the client
as a 500, an HTML page or a traceback: unexpected errors are logged and answered the way the
Linkis services answer any exception (`operation failed(操作失败)s！...`).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import tornado.web
from tornado.ioloop import IOLoop

from .. import wire
from . import excel
from .auth import (
    MSG_LOGIN_OK,
    MSG_LOGOUT_OK,
    MSG_NOT_LOGGED_IN,
    AuthStore,
    User,
)
from .errors import ServiceError

if TYPE_CHECKING:
    from .service import LocalLinkis

log = logging.getLogger("linkis_kernel.local")

MAX_BODY_BYTES = 10 * 1024 * 1024
OPENAPI_FILE = Path(__file__).with_name("openapi.yaml")
HTTP_THREADS = 8
OPERATION_FAILED = "operation failed(操作失败)s！the reason(原因)："
MSG_ALREADY_LOGGED_IN = f"{wire.MSG_ALREADY_LOGGED_IN}(已经登录，请先退出再进行登录)！"
MSG_PUBLIC_KEY = "Gain success(获取成功)！"
MSG_HEARTBEAT = "Maintain heartbeat success(维系心跳成功)"
MSG_PAUSE = "success to pause job (成功pause了job)"
# The gateway answers an unknown numeric id with HTTP 200 (CONTRACT §3, §5).
_GATEWAY_PARSER_ERROR = re.compile(r"taskId \S+ is not exists\.")
_SERVICE_KIND = {
    "entrance": wire.ENTRANCE_APPLICATION,
    "service": "linkis-ps-publicservice",
    "user": "linkis-mg-gateway",
}
# Databases `datasource/all` skips (`wds.linkis.db.filter.keywords`).
_DB_FILTER_KEYWORD = "bak"


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
    family: str  # "entrance", "service" or "user": decides `method` and `serviceKind`
    auth: bool = True


@dataclass
class AppContext:
    """What every request needs: the services, the users and the thread pool."""

    service: LocalLinkis
    auth: AuthStore
    executor: ThreadPoolExecutor


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
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
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
            method_path = None if route.family == "user" else f"/api/{unquote(rest)}"
            if route.auth:
                self.user = self._authenticate()
            reply = await route.endpoint(self, **params)
        except ServiceError as err:
            self._send_service_error(err, method_path)
            return
        except Exception as err:
            log.exception("%s %s failed", self.request.method, self.request.path)
            self._send_service_error(ServiceError(_operation_failed(err)), method_path)
            return
        if reply is not None:
            self._write_json(method_path, reply.status, reply.message, reply.data)

    def _find_route(self, rest: str) -> tuple[Route, dict[str, str]]:
        allowed: list[str] = []
        for route in ROUTES:
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
        if self.route is not None and self.route.endpoint is excel.resultset_to_excel:
            excel.send_error_text(self, err.message)
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
    ) -> None:
        if self._finished:
            return
        if http_code is not None:
            self.set_status(http_code)
        elif self.get_status() != 413:
            self.set_status(wire.HTTP_CODE_FOR_STATUS.get(status, 400))
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        envelope = {"method": method_path, "status": status, "message": message, "data": data}
        self.finish(json.dumps(envelope, ensure_ascii=False))

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
        if not isinstance(value, dict):
            raise ApiError(
                f"The request body must be a JSON object, got {_json_kind(value)}; "
                "send a JSON object."
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


def _json_kind(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _operation_failed(err: BaseException) -> str:
    root = err
    while root.__cause__ is not None:
        root = root.__cause__
    return f"{OPERATION_FAILED}{type(root).__name__}: {root}"


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


# -- user endpoints (gateway) --------------------------------------------------------------------


def _login_extras(h: ApiHandler) -> dict[str, Any]:
    return {"sessionTimeOut": int(h.ctx.auth.session_timeout * 1000), "enableWatermark": True}


def _login_credentials(h: ApiHandler) -> tuple[str | None, str | None]:
    name = h.get_query_argument("userName", None)
    password = h.get_query_argument("password", None) or h.get_query_argument("passwdEncrypt", None)
    if name is not None and password is not None:
        return name, password
    if not h.has_body():
        return name, password
    body = h.json_object()
    password = body.get("password") or body.get("passwdEncrypt")
    name = body.get("userName")
    return (
        name if isinstance(name, str) else None,
        password if isinstance(password, str) else None,
    )


def _open_session(h: ApiHandler, user: User) -> None:
    ticket = h.ctx.auth.open_session(user)
    h.set_cookie(wire.SESSION_COOKIE, ticket, path="/", httponly=True)


async def login(h: ApiHandler) -> Reply:
    current = h.ctx.auth.live_session_user(h.get_cookie(wire.SESSION_COOKIE))
    if current:
        return Reply({"userName": current}, f"{current} {MSG_ALREADY_LOGGED_IN}")
    try:
        name, password = _login_credentials(h)
        # scrypt takes tens of milliseconds: keep it off the IOLoop.
        user = await h.run(h.ctx.auth.login, name, password, h.request.remote_ip or "")
    except ServiceError as err:
        log.warning("failed login from %s", h.request.remote_ip)
        return Reply(_login_extras(h), err.message, wire.STATUS_ERROR)
    _open_session(h, user)
    data = {"userName": user.name, "isAdmin": user.is_admin, **_login_extras(h)}
    return Reply(data, MSG_LOGIN_OK)


async def token_login(h: ApiHandler) -> Reply:
    token_user = h.header_or_cookie(wire.TOKEN_USER_HEADER)
    token_code = h.header_or_cookie(wire.TOKEN_CODE_HEADER)
    if not token_user and not token_code:
        raise ServiceError(MSG_NOT_LOGGED_IN, status=wire.STATUS_NOT_LOGGED_IN)
    user = h.ctx.auth.token_user(token_user, token_code)
    _open_session(h, user)
    return Reply({"userName": user.name, "isAdmin": False}, MSG_LOGIN_OK)


async def logout(h: ApiHandler) -> Reply:
    h.ctx.auth.close_session(h.get_cookie(wire.SESSION_COOKIE))
    h.clear_cookie(wire.SESSION_COOKIE, path="/")
    return Reply({}, MSG_LOGOUT_OK)


async def public_key(h: ApiHandler) -> Reply:
    return Reply({"enableSSL": False, "enableLoginEncrypt": False}, MSG_PUBLIC_KEY)


async def user_info(h: ApiHandler) -> Reply:
    return Reply({"userName": h.user})


async def heartbeat(h: ApiHandler) -> Reply:
    return Reply({}, MSG_HEARTBEAT)


# -- entrance ------------------------------------------------------------------------------------


async def submit(h: ApiHandler) -> Reply:
    return Reply(await h.run(h.ctx.service.submit, h.user, h.json_object()))


async def execute(h: ApiHandler) -> Reply:
    return Reply(await h.run(h.ctx.service.execute, h.user, h.json_object()))


async def job_status(h: ApiHandler, job_id: str) -> Reply:
    return Reply(await h.run(h.ctx.service.status, h.user, job_id, h.task_id_param()))


async def job_log(h: ApiHandler, job_id: str) -> Reply:
    from_line = max(h.int_param("fromLine", 0) or 0, 0)
    size = h.int_param("size", wire.LOG_DEFAULT_SIZE)
    if size is None or size < 0:
        size = wire.LOG_NEGATIVE_SIZE
    distinct = h.bool_param("distinctLevel", True)
    return Reply(await h.run(h.ctx.service.log, h.user, job_id, from_line, size, distinct))


async def job_progress(h: ApiHandler, job_id: str) -> Reply:
    return Reply(await h.run(h.ctx.service.progress, h.user, job_id, h.task_id_param()))


async def job_progress_with_resource(h: ApiHandler, job_id: str) -> Reply:
    service = h.ctx.service
    return Reply(await h.run(service.progress, h.user, job_id, h.task_id_param(), True))


async def job_kill(h: ApiHandler, job_id: str) -> Reply:
    message, data = await h.run(h.ctx.service.kill, h.user, job_id, h.task_id_param())
    return Reply(data, message)


async def job_pause(h: ApiHandler, job_id: str) -> Reply:
    return Reply({}, MSG_PAUSE)


async def kill_jobs(h: ApiHandler, job_id: str | None = None) -> Reply:
    body = h.json_object()
    exec_ids, task_ids = body.get("idList"), body.get("taskIDList")
    message, data = await h.run(h.ctx.service.kill_jobs, h.user, exec_ids, task_ids)
    return Reply(data, message)


# -- job history ---------------------------------------------------------------------------------


async def history_get(h: ApiHandler, job_id: str) -> Reply:
    if not job_id.isdigit():
        raise ApiError(f"The task id in jobhistory/{{id}}/get must be a number, got {job_id!r}.")
    return Reply(await h.run(h.ctx.service.history_get, h.user, int(job_id)))


async def history_list(h: ApiHandler) -> Reply:
    status = h.str_param("status")
    states = [s for s in status.split(",") if s] if status else None
    data = await h.run(
        h.ctx.service.history_list,
        h.user,
        start_date=h.int_param("startDate"),
        end_date=h.int_param("endDate"),
        status=states,
        page_now=h.int_param("pageNow", 1),
        page_size=h.int_param("pageSize", 20),
        task_id=h.int_param("taskID"),
        engine_type=h.str_param("executeApplicationName") or None,
        creator=h.str_param("creator") or None,
    )
    return Reply(data)


# -- filesystem ----------------------------------------------------------------------------------


async def dir_file_trees(h: ApiHandler) -> Reply:
    return Reply(await h.run(h.ctx.service.dir_tree, h.user, h.path_param()))


async def open_file(h: ApiHandler) -> Reply:
    path = h.path_param()
    page = h.int_param("page", 1)
    page_size = h.int_param("pageSize", wire.OPEN_FILE_DEFAULT_PAGE_SIZE)
    null_value = h.str_param("nullValue", "") or ""
    service = h.ctx.service
    return Reply(await h.run(service.open_file, h.user, path, page, page_size, null_value))


async def open_log(h: ApiHandler) -> Reply:
    return Reply(await h.run(h.ctx.service.open_log, h.user, h.path_param()))


# -- metadata ------------------------------------------------------------------------------------


async def databases(h: ApiHandler) -> Reply:
    return Reply(await h.run(h.ctx.service.databases, h.user))


async def tables(h: ApiHandler) -> Reply:
    return Reply(await h.run(h.ctx.service.tables, h.user, h.str_param("database")))


async def columns(h: ApiHandler) -> Reply:
    database, table = h.str_param("database"), h.str_param("table")
    return Reply(await h.run(h.ctx.service.columns, h.user, database, table))


async def all_databases(h: ApiHandler) -> Reply:
    return Reply(await h.run(_databases_with_tables, h.ctx.service, h.user))


def _databases_with_tables(service: LocalLinkis, user: str) -> dict[str, Any]:
    found = []
    for db in service.databases(user)["dbs"]:
        name = db["dbName"]
        if not name.strip() or _DB_FILTER_KEYWORD in name:
            continue
        found.append({"databaseName": name, "tables": service.tables(user, name)["tables"]})
    return {"dbs": found}


# -- meta ----------------------------------------------------------------------------------------


@functools.cache
def _openapi_text() -> bytes:
    return OPENAPI_FILE.read_bytes()


async def openapi_document(h: ApiHandler) -> None:
    """The OpenAPI 3 description of this server (no auth: it holds no data)."""
    h.set_header("Content-Type", "application/yaml; charset=UTF-8")
    h.finish(_openapi_text())


# -- routes --------------------------------------------------------------------------------------

_ID = r"(?P<job_id>[^/]+)"
GET, POST = ("GET",), ("POST",)
BOTH = ("GET", "POST")


def _route(methods: tuple[str, ...], path: str, endpoint: Endpoint, *, auth: bool = True) -> Route:
    service = path.split("/", 1)[0]
    family = service if service in ("entrance", "user") else "service"
    return Route(methods, re.compile(path), endpoint, family, auth)


ROUTES: tuple[Route, ...] = (
    _route(BOTH, "user/login", login, auth=False),
    _route(BOTH, "user/logout", logout),
    _route(GET, "user/publicKey", public_key, auth=False),
    _route(BOTH, "user/token-login", token_login, auth=False),
    _route(GET, "user/userInfo", user_info),
    _route(BOTH, "user/heartbeat", heartbeat),
    _route(POST, "entrance/submit", submit),
    _route(POST, "entrance/execute", execute),
    _route(POST, "entrance/killJobs", kill_jobs),
    _route(GET, f"entrance/{_ID}/status", job_status),
    _route(GET, f"entrance/{_ID}/log", job_log),
    _route(GET, f"entrance/{_ID}/progress", job_progress),
    _route(GET, f"entrance/{_ID}/progressWithResource", job_progress_with_resource),
    _route(BOTH, f"entrance/{_ID}/kill", job_kill),
    _route(GET, f"entrance/{_ID}/pause", job_pause),
    _route(POST, f"entrance/{_ID}/killJobs", kill_jobs),
    _route(GET, f"jobhistory/{_ID}/get", history_get),
    _route(GET, "jobhistory/list", history_list),
    _route(GET, "filesystem/getDirFileTrees", dir_file_trees),
    _route(GET, "filesystem/openFile", open_file),
    _route(GET, "filesystem/openLog", open_log),
    _route(GET, "filesystem/resultsetToExcel", excel.resultset_to_excel),
    _route(GET, "datasource/dbs", databases),
    _route(GET, "datasource/tables", tables),
    _route(GET, "datasource/columns", columns),
    _route(GET, "datasource/all", all_databases),
    _route(GET, r"openapi\.yaml", openapi_document, auth=False),
)


def make_app(service: LocalLinkis, auth: AuthStore) -> tornado.web.Application:
    """The tornado Application serving the Linkis REST contract over `service`."""
    ctx = AppContext(
        service=service,
        auth=auth,
        executor=ThreadPoolExecutor(HTTP_THREADS, thread_name_prefix="linkis-http"),
    )
    prefix = re.escape(wire.API_PREFIX)
    return tornado.web.Application(
        [(rf"{prefix}/(.*)", ApiHandler, {"ctx": ctx})],
        default_handler_class=NotFoundHandler,
        log_function=log_request,
    )
