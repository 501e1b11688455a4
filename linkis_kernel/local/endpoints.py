"""The endpoints of `linkis-kernel serve`, one async function per REST path, grouped by service.

Each takes the request's `ApiHandler`, reads its parameters, runs the service call on the
handler's thread pool and returns the `Reply` the handler wraps in the Linkis envelope (or
answers itself, as the file download and the OpenAPI document do, and returns None).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tornado.iostream import StreamClosedError

from .. import wire
from .auth import MSG_LOGIN_OK, MSG_LOGOUT_OK, MSG_NOT_LOGGED_IN, PasswordLogin, User
from .devices import DEVICE_COOKIE_DAYS
from .dolphin import read_header
from .engines import ENGINE_RUN_TYPES
from .errors import ServiceError
from .excel import ExportOptions, attachment_headers, build_xlsx, check_downloadable, csv_chunks
from .handler import ApiError, ApiHandler, Reply

if TYPE_CHECKING:
    from .service import LocalLinkis

log = logging.getLogger("linkis_kernel.local")

OPENAPI_FILE = Path(__file__).with_name("openapi.yaml")
MSG_ALREADY_LOGGED_IN = f"{wire.MSG_ALREADY_LOGGED_IN}(已经登录，请先退出再进行登录)！"
MSG_PUBLIC_KEY = "Gain success(获取成功)！"
MSG_HEARTBEAT = "Maintain heartbeat success(维系心跳成功)"
MSG_PAUSE = "success to pause job (成功pause了job)"
MSG_BASEINFO = "get baseinfo success(获取成功)！"
MSG_OAUTH_OFF = "Gateway 未启用 OAuth 认证，请采用其他认证方式!"
# linkis.jobhistory.error.msg.tip: what a page shows, `%s` the request URL, when a call fails.
ERROR_MSG_TIP = (
    "The request interface %s is abnormal. You can try to troubleshoot common problems in the "
    "knowledge base document"
)
FILE_CHUNK = 64 * 1024
# Databases `datasource/all` skips (`wds.linkis.db.filter.keywords`).
_DB_FILTER_KEYWORD = "bak"


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
    # Strict: no other site's page (link, form, image) sends it; the Linkis console talks to the
    # server from the same origin (through its proxy), so it still gets it.
    h.set_cookie(wire.SESSION_COOKIE, ticket, path="/", httponly=True, samesite="Strict")


def _set_device_cookie(h: ApiHandler, cookie: str) -> None:
    # Set again on every login, so that a device in use keeps it for a year from its last login.
    h.set_cookie(
        wire.DEVICE_COOKIE,
        cookie,
        path="/",
        httponly=True,
        samesite="Strict",
        expires_days=DEVICE_COOKIE_DAYS,
    )


async def login(h: ApiHandler) -> Reply:
    current = h.ctx.auth.live_session_user(h.get_cookie(wire.SESSION_COOKIE))
    if current:
        return Reply({"userName": current}, f"{current} {MSG_ALREADY_LOGGED_IN}")
    try:
        name, password = _login_credentials(h)
        device = h.get_cookie(wire.DEVICE_COOKIE)
        # scrypt takes tens of milliseconds: keep it off the IOLoop.
        accepted: PasswordLogin = await h.run(
            h.ctx.auth.login, name, password, h.request.remote_ip or "", device
        )
    except ServiceError as err:
        log.warning("failed login from %s", h.request.remote_ip)
        return Reply(_login_extras(h), err.message, wire.STATUS_ERROR)
    user = accepted.user
    _open_session(h, user)
    _set_device_cookie(h, accepted.device_cookie)
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
    h.clear_cookie(wire.SESSION_COOKIE, path="/", httponly=True, samesite="Strict")
    return Reply({}, MSG_LOGOUT_OK)


async def public_key(h: ApiHandler) -> Reply:
    return Reply({"enableSSL": False, "enableLoginEncrypt": False}, MSG_PUBLIC_KEY)


async def user_info(h: ApiHandler) -> Reply:
    return Reply({"userName": h.user})


async def heartbeat(h: ApiHandler) -> Reply:
    return Reply({}, MSG_HEARTBEAT)


async def base_info(h: ApiHandler) -> Reply:
    data = {
        "resultSetExportEnable": True,
        "linkisClusterName": "",
        "engineLogOnlyAdminEnable": False,
    }
    return Reply(data, MSG_BASEINFO)


async def oauth_redirect(h: ApiHandler) -> Reply:
    raise ServiceError(MSG_OAUTH_OFF, status=wire.STATUS_NOT_LOGGED_IN)


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
    return Reply(await h.run(h.ctx.service.entrance.pause, h.user, job_id), MSG_PAUSE)


async def kill_jobs(h: ApiHandler, job_id: str | None = None) -> Reply:
    body = h.json_object()
    exec_ids, task_ids = body.get("idList"), body.get("taskIDList")
    message, data = await h.run(h.ctx.service.kill_jobs, h.user, exec_ids, task_ids)
    return Reply(data, message)


# -- job history ---------------------------------------------------------------------------------


async def history_get(h: ApiHandler, job_id: str) -> Reply:
    if not job_id.isdecimal():
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


async def undone_tasks(h: ApiHandler) -> Reply:
    data = await h.run(
        h.ctx.service.undone_tasks,
        h.user,
        status=h.str_param("status") or None,
        page_now=h.int_param("pageNow", 1),
        page_size=h.int_param("pageSize", 20),
        start_date=h.int_param("startDate"),
        end_date=h.int_param("endDate"),
        task_id=h.int_param("startTaskID"),
        engine_type=h.str_param("engineType"),
        creator=h.str_param("creator"),
    )
    return Reply(data)


async def job_extra_info(h: ApiHandler) -> Reply:
    return Reply(await h.run(h.ctx.service.extra_info, h.user, h.int_param("jobId")))


async def diagnosis_query(h: ApiHandler) -> Reply:
    return Reply(await h.run(h.ctx.service.diagnosis, h.user, h.str_param("taskID")))


async def governance_station_admin(h: ApiHandler) -> Reply:
    # Every user sees only their own jobs here, so nobody is a (history, department) admin.
    flags = {"admin": False, "historyAdmin": False, "deptAdmin": False}
    return Reply({**flags, "errorMsgTip": ERROR_MSG_TIP, "canResultSet": True})


# -- configuration and variables -----------------------------------------------------------------


async def engine_types(h: ApiHandler) -> Reply:
    return Reply({"engineType": list(ENGINE_RUN_TYPES)})


async def list_global_variables(h: ApiHandler) -> Reply:
    return Reply(await h.run(h.ctx.service.list_global_variables, h.user))


async def save_global_variables(h: ApiHandler) -> Reply:
    return Reply(await h.run(h.ctx.service.save_global_variables, h.user, h.json_object()))


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


async def resultset_to_excel(h: ApiHandler) -> None:
    """Stream the result set at `path` as the requested file type (csv or xlsx)."""
    options = ExportOptions.from_params(h)
    path: Path = await h.run(h.ctx.service.result_file, h.user, h.path_param())
    type_code, columns = await h.run(read_header, path)
    check_downloadable(type_code, options)
    names = [column.name for column in columns] if columns is not None else None
    if options.file_type == "xlsx":
        types = [column.data_type.lower() for column in columns or []]
        workbook = await h.run(build_xlsx, path, names, types, options)
        try:
            _send_attachment_headers(h, options)
            await _stream(h, _file_chunks(workbook))
        finally:
            workbook.unlink(missing_ok=True)
    else:
        _send_attachment_headers(h, options)
        await _stream(h, csv_chunks(path, names, options))


def _send_attachment_headers(h: ApiHandler, options: ExportOptions) -> None:
    h.set_status(200)
    for name, value in attachment_headers(options).items():
        h.set_header(name, value)


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(FILE_CHUNK):
            yield chunk


async def _stream(h: ApiHandler, chunks: Iterator[bytes]) -> None:
    """Write `chunks` (each made on the thread pool) and finish; stop if the client goes away."""
    try:
        while (chunk := await h.run(next, chunks, None)) is not None:
            h.write(chunk)
            await h.flush()
        h.finish()
    except StreamClosedError:
        pass  # the client went away
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


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


# -- LinkisManager: engines (docs/linkis-rest.md, "Engines") -------------------------------------


def _is_admin(h: ApiHandler) -> bool:
    user = h.ctx.auth.user(h.user)
    return user is not None and user.is_admin


async def list_user_engines(h: ApiHandler) -> Reply:
    return Reply(await h.run(h.ctx.service.manager.list_user_engines, h.user))


async def kill_engine_conn(h: ApiHandler) -> Reply:
    body = h.json_object()
    message, data = await h.run(h.ctx.service.manager.kill_engine_conn, h.user, body)
    return Reply(data, message)


async def engine_kill(h: ApiHandler) -> Reply:
    items = h.json_value()
    message, data = await h.run(h.ctx.service.manager.engine_kill, h.user, items)
    return Reply(data, message)


async def list_em_engines(h: ApiHandler) -> Reply:
    return Reply(await h.run(h.ctx.service.manager.list_em_engines, h.user, _is_admin(h)))


async def user_resources(h: ApiHandler) -> Reply:
    return Reply(await h.run(h.ctx.service.manager.user_resources, h.user))


async def application_list(h: ApiHandler) -> Reply:
    body = h.json_object()
    return Reply(await h.run(h.ctx.service.manager.application_list, h.user, body))


async def rm_engine_types(h: ApiHandler) -> Reply:
    return Reply(h.ctx.service.manager.engine_types())


async def ecr_history_list(h: ApiHandler) -> Reply:
    params: dict[str, Any] = {
        name: h.str_param(name)
        for name in ("instance", "creator", "startDate", "endDate", "engineType", "status")
    }
    params.update(pageNow=h.int_param("pageNow", 1), pageSize=h.int_param("pageSize", 20))
    manager = h.ctx.service.manager
    return Reply(await h.run(manager.ecr_history, h.user, _is_admin(h), params))


# NodeHealthy values an admin may set on an EngineConnManager (EMRestfulApi, `onlyEditable`).
_EDITABLE_ECM_HEALTHY = ("Healthy", "UnHealthy", "WARN", "StockAvailable", "StockUnavailable")
# Every NodeStatus, in the enum's order (EngineRestfulApi.listAllNodeHealthyStatus).
_NODE_STATUSES = (
    "Starting",
    "Unlock",
    "Locked",
    "Idle",
    "Busy",
    "Running",
    "ShuttingDown",
    "Failed",
    "Success",
)


async def ecm_healthy_statuses(h: ApiHandler) -> Reply:
    return Reply({"nodeHealthy": list(_EDITABLE_ECM_HEALTHY)})


async def node_statuses(h: ApiHandler) -> Reply:
    return Reply({"nodeStatus": list(_NODE_STATUSES)})


async def modifiable_label_keys(h: ApiHandler) -> Reply:
    """No label of this server's instances can be edited, so the list is empty."""
    return Reply({"keyList": []})
