"""The tornado application of `linkis-kernel serve`: the Linkis REST paths over `LocalLinkis`.

`ROUTES` maps each path under `wire.API_PREFIX` to its endpoint (`endpoints`); one `ApiHandler`
(`handler`) serves them all, and any other path gets a Linkis-shaped error.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import tornado.web

from .. import wire
from . import endpoints
from .auth import AuthStore
from .endpoints import OPENAPI_FILE
from .handler import (
    MAX_BODY_BYTES,
    ApiHandler,
    AppContext,
    Endpoint,
    NotFoundHandler,
    Route,
    log_request,
)

if TYPE_CHECKING:
    from .service import LocalLinkis

__all__ = ["MANAGER_ROUTES", "MAX_BODY_BYTES", "OPENAPI_FILE", "ROUTES", "make_app"]

HTTP_THREADS = 8

_ID = r"(?P<job_id>[^/]+)"
GET, POST = ("GET",), ("POST",)
BOTH = ("GET", "POST")


def _route(
    methods: tuple[str, ...],
    path: str,
    endpoint: Endpoint,
    *,
    auth: bool = True,
    text_errors: bool = False,
    changes_state: bool = False,
) -> Route:
    service = path.split("/", 1)[0]
    family = service if service in ("entrance", "user") else "service"
    return Route(methods, re.compile(path), endpoint, family, auth, text_errors, changes_state)


ROUTES: tuple[Route, ...] = (
    # GETs that change something get the same cross-site checks as POSTs (handler.py).
    _route(BOTH, "user/login", endpoints.login, auth=False, changes_state=True),
    _route(BOTH, "user/logout", endpoints.logout, changes_state=True),
    _route(GET, "user/publicKey", endpoints.public_key, auth=False),
    _route(BOTH, "user/token-login", endpoints.token_login, auth=False, changes_state=True),
    _route(GET, "user/userInfo", endpoints.user_info),
    _route(BOTH, "user/heartbeat", endpoints.heartbeat),
    _route(BOTH, "user/baseinfo", endpoints.base_info, auth=False),
    _route(BOTH, "user/oauth-redirect", endpoints.oauth_redirect, auth=False),
    _route(POST, "entrance/submit", endpoints.submit),
    _route(POST, "entrance/execute", endpoints.execute),
    _route(POST, "entrance/killJobs", endpoints.kill_jobs),
    _route(GET, f"entrance/{_ID}/status", endpoints.job_status),
    _route(GET, f"entrance/{_ID}/log", endpoints.job_log),
    _route(GET, f"entrance/{_ID}/progress", endpoints.job_progress),
    _route(GET, f"entrance/{_ID}/progressWithResource", endpoints.job_progress_with_resource),
    _route(BOTH, f"entrance/{_ID}/kill", endpoints.job_kill, changes_state=True),
    _route(GET, f"entrance/{_ID}/pause", endpoints.job_pause, changes_state=True),
    _route(POST, f"entrance/{_ID}/killJobs", endpoints.kill_jobs),
    _route(GET, f"jobhistory/{_ID}/get", endpoints.history_get),
    _route(GET, "jobhistory/list", endpoints.history_list),
    _route(GET, "jobhistory/listundonetasks", endpoints.undone_tasks),
    _route(GET, "jobhistory/job-extra-info", endpoints.job_extra_info),
    _route(GET, "jobhistory/diagnosis-query", endpoints.diagnosis_query),
    _route(GET, "jobhistory/governanceStationAdmin", endpoints.governance_station_admin),
    _route(GET, "configuration/engineType", endpoints.engine_types),
    _route(GET, "variable/listGlobalVariable", endpoints.list_global_variables),
    _route(POST, "variable/saveGlobalVariable", endpoints.save_global_variables),
    _route(GET, "filesystem/getDirFileTrees", endpoints.dir_file_trees),
    _route(GET, "filesystem/openFile", endpoints.open_file),
    _route(GET, "filesystem/openLog", endpoints.open_log),
    _route(GET, "filesystem/resultsetToExcel", endpoints.resultset_to_excel, text_errors=True),
    _route(GET, "datasource/dbs", endpoints.databases),
    _route(GET, "datasource/tables", endpoints.tables),
    _route(GET, "datasource/columns", endpoints.columns),
    _route(GET, "datasource/all", endpoints.all_databases),
    _route(GET, r"openapi\.yaml", endpoints.openapi_document, auth=False),
)


def _manager_route(methods: tuple[str, ...], path: str, endpoint: Endpoint) -> Route:
    """A LinkisManager path; `RMMonitorRest`'s (linkisManager/rm/...) answer with `method: null`."""
    family = (
        "rm" if path.startswith("linkisManager/rm/") and "enginekill" not in path else "manager"
    )
    return Route(methods, re.compile(path), endpoint, family, True, False)


# The LinkisManager: engines (EngineConns), their resources and their history.
MANAGER_ROUTES: tuple[Route, ...] = (
    _manager_route(GET, "linkisManager/listUserEngines", endpoints.list_user_engines),
    _manager_route(POST, "linkisManager/killEngineConn", endpoints.kill_engine_conn),
    _manager_route(POST, "linkisManager/rm/enginekill", endpoints.engine_kill),
    _manager_route(POST, "linkisManager/listEMEngines", endpoints.list_em_engines),
    _manager_route(POST, "linkisManager/rm/userresources", endpoints.user_resources),
    _manager_route(POST, "linkisManager/rm/applicationlist", endpoints.application_list),
    _manager_route(GET, "linkisManager/rm/engineType", endpoints.rm_engine_types),
    _manager_route(GET, "linkisManager/ecinfo/ecrHistoryList", endpoints.ecr_history_list),
    _manager_route(GET, "linkisManager/listAllECMHealthyStatus", endpoints.ecm_healthy_statuses),
    _manager_route(GET, "linkisManager/listAllNodeHealthyStatus", endpoints.node_statuses),
    # InstanceRestful (the instance-label service) answers with `method: null`.
    Route(
        GET,
        re.compile("microservice/modifiableLabelKey"),
        endpoints.modifiable_label_keys,
        "labels",
        True,
        False,
    ),
)
ROUTES += MANAGER_ROUTES


def make_app(service: LocalLinkis, auth: AuthStore) -> tornado.web.Application:
    """The tornado Application serving the Linkis REST contract over `service`."""
    ctx = AppContext(
        service=service,
        auth=auth,
        routes=ROUTES,
        executor=ThreadPoolExecutor(HTTP_THREADS, thread_name_prefix="linkis-http"),
    )
    prefix = re.escape(wire.API_PREFIX)
    return tornado.web.Application(
        [(rf"{prefix}/(.*)", ApiHandler, {"ctx": ctx})],
        default_handler_class=NotFoundHandler,
        log_function=log_request,
    )
