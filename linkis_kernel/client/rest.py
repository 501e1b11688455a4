"""`LinkisRestClient`: one method per Linkis REST endpoint, over one keep-alive HTTP session.

The transport (`transport.py`) handles auth, retries and backoff; the envelope (`envelope.py`)
turns `status != 0` into exceptions and keeps secrets out of their texts; downloads stream
through `downloads.py`. Secrets never appear in reprs, logs or exception texts.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests

from .. import wire
from .downloads import download_result_set
from .embedded import EMBEDDED_NOTE, ensure_server
from .envelope import data_of, parse
from .errors import LinkisError, LinkisTransportError, LinkisValidationError
from .models import (
    ColumnInfo,
    DirTree,
    EngineInfo,
    FilePage,
    JobStatus,
    LogChunk,
    LoginInfo,
    Progress,
    SubmitResult,
    TableInfo,
    TaskInfo,
    TaskPage,
)
from .transport import Transport

__all__ = ["EMBEDDED_NOTE", "LinkisRestClient"]

logger = logging.getLogger("linkis_kernel.client")
ENGINECONN_APPLICATION = "linkis-cg-engineconn"
C = TypeVar("C", bound="LinkisRestClient")

_METHOD_NOT_ALLOWED = re.compile(
    r"method .*not (supported|allowed)|not allowed|unknown request URI", re.IGNORECASE
)


class LinkisRestClient:
    """A client for the Linkis 1.x REST API (gateway or embedded server).

    Auth: `token` (with `user`) sends the token headers on every call; else `user`/`password`
    logs in on first need and keeps the session cookie. `timeout` is (connect, read) seconds;
    `retries` bounds the retries of idempotent calls on connection errors and HTTP 502/503/504.
    """

    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        verify: bool | str = True,
        timeout: tuple[float, float] = (5.0, 60.0),
        retries: int = 3,
    ) -> None:
        if not url or not url.startswith(("http://", "https://")):
            shown = f": {url!r}" if url and "@" not in url else ""
            raise LinkisValidationError(
                f"Not an http(s) Linkis URL{shown}",
                hint="Pass the gateway address, e.g. http://linkis-host:9001 (or set LINKIS_URL).",
            )
        if "@" in urlsplit(url).netloc:
            raise LinkisValidationError(
                "The Linkis URL must not carry credentials",
                hint="Pass user=, password= or token= (or LINKIS_USER, LINKIS_PASSWORD, "
                "LINKIS_TOKEN) instead.",
            )
        if (token or password) and not user:
            raise LinkisValidationError(
                "A token or password was given without a user name",
                hint="Pass user= (or set LINKIS_USER).",
            )
        self._transport = Transport(
            _base_url(url),
            user=user,
            password=password,
            token=token,
            verify=verify,
            timeout=timeout,
            retries=retries,
        )
        self.url = self._transport.url
        self.user = user
        self.auth_kind = self._transport.auth_kind
        self.embedded = False  # from_env() started or reused the embedded server

    @classmethod
    def from_env(cls: type[C], **overrides: Any) -> C:
        """Build a client from LINKIS_URL, LINKIS_USER, LINKIS_PASSWORD, LINKIS_TOKEN.

        Keyword arguments override the environment. With no URL anywhere, the embedded local
        server is started (or reused) and its url, user and token are used.
        """
        settings: dict[str, Any] = {
            "url": os.environ.get("LINKIS_URL"),
            "user": os.environ.get("LINKIS_USER"),
            "password": os.environ.get("LINKIS_PASSWORD"),
            "token": os.environ.get("LINKIS_TOKEN"),
        }
        settings = {k: v for k, v in settings.items() if v}
        explicit = {k: v for k, v in overrides.items() if v is not None}
        for own, other in (("password", "token"), ("token", "password")):
            if own in explicit and other not in explicit:
                settings.pop(other, None)  # an explicit credential beats the environment's
        settings.update(explicit)
        embedded = not settings.get("url")
        if embedded:
            local = ensure_server()
            settings.update(url=local["url"], user=local["user"], token=local["token"])
            settings.pop("password", None)
            logger.info(EMBEDDED_NOTE.format(url=local["url"]))
        client = cls(**settings)
        client.embedded = embedded
        return client

    def __repr__(self) -> str:
        return f"LinkisRestClient(url={self.url!r}, user={self.user!r}, auth={self.auth_kind!r})"

    def __enter__(self) -> LinkisRestClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the HTTP connections (the server session is left as is)."""
        self._transport.close()

    @property
    def timeout(self) -> tuple[float, float]:
        """(connect, read) timeouts in seconds."""
        return self._transport.timeout

    @timeout.setter
    def timeout(self, value: tuple[float, float]) -> None:
        self._transport.timeout = value

    @property
    def retries(self) -> int:
        """How many times an idempotent call is retried."""
        return self._transport.retries

    @retries.setter
    def retries(self, value: int) -> None:
        self._transport.retries = max(0, int(value))

    @property
    def _session(self) -> requests.Session:
        return self._transport.session

    # ---- auth -------------------------------------------------------------------------------

    def login(self) -> LoginInfo:
        """Log in now (password: `user/login`; token: `user/token-login`) and return who we are."""
        return self._transport.login()

    def logout(self) -> None:
        """End the password session (`user/logout`); a no-op for token auth."""
        self._transport.logout()

    def check_gateway(self) -> None:
        """Check that a Linkis gateway answers at `url`: GET `user/publicKey`, which needs no
        login (docs/linkis-rest.md, "Authentication").

        Raises LinkisTransportError when nothing answers (no `http_status`) or the answer is not
        a Linkis envelope (`http_status` set); a Linkis refusal still shows a gateway."""
        try:
            self._transport.finish(
                "GET", "user/publicKey", self._transport.send("GET", "user/publicKey")
            )
        except LinkisTransportError:
            raise
        except LinkisError:
            pass  # an envelope, even one that refuses, comes from a Linkis gateway

    def check_login(self) -> None:
        """Check that the gateway accepts this client's credentials (or their absence) with one
        small authenticated call; raises LinkisAuthError when it does not."""
        self.jobhistory_list(page_size=1)

    # ---- entrance ---------------------------------------------------------------------------

    def entrance_submit(self, body: dict) -> SubmitResult:
        """POST `entrance/submit` (1.x body). Never retried once the request may have been sent."""
        return parse(SubmitResult.from_json, self._submit("entrance/submit", body))

    def entrance_execute(self, body: dict) -> SubmitResult:
        """POST `entrance/execute` (0.x body). Never retried once the request may have been sent."""
        return parse(SubmitResult.from_json, self._submit("entrance/execute", body))

    def _submit(self, path: str, body: dict) -> dict:
        if not isinstance(body, dict):
            raise LinkisValidationError(
                f"The {path} body must be a dict, not {type(body).__name__}"
            )
        return data_of(self._transport.call("POST", path, body=body, retry=False))

    def status(self, exec_id: str, task_id: int | None = None) -> JobStatus:
        """GET `entrance/{id}/status`; with `task_id` the server falls back to job history."""
        payload = self._transport.call(
            "GET", _job_path(exec_id, "status"), params=_task_param(task_id)
        )
        status = parse(JobStatus.from_json, data_of(payload))
        if status.task_id is None and task_id is not None:
            status = replace(status, task_id=int(task_id))
        return status

    def log(
        self,
        exec_id: str,
        from_line: int = 0,
        size: int = wire.LOG_DEFAULT_SIZE,
        task_id: int | None = None,
    ) -> LogChunk:
        """GET `entrance/{id}/log` from line `from_line` (1-based; 0 = start), `size` lines."""
        params = {"fromLine": from_line, "size": size, **_task_param(task_id)}
        payload = self._transport.call("GET", _job_path(exec_id, "log"), params=params)
        return parse(lambda d: LogChunk.from_json(d, from_line), data_of(payload))

    def progress(self, exec_id: str, task_id: int | None = None) -> Progress:
        """GET `entrance/{id}/progress`."""
        payload = self._transport.call(
            "GET", _job_path(exec_id, "progress"), params=_task_param(task_id)
        )
        return parse(Progress.from_json, data_of(payload))

    def progress_with_resource(self, exec_id: str, task_id: int | None = None) -> Progress:
        """GET `entrance/{id}/progressWithResource` (adds YARN queue use when there is any)."""
        path = _job_path(exec_id, "progressWithResource")
        payload = self._transport.call("GET", path, params=_task_param(task_id))
        return parse(Progress.from_json, data_of(payload))

    def kill(self, exec_id: str, task_id: int | None = None) -> str:
        """Kill a job: GET `entrance/{id}/kill` (POST where GET is refused); the server message."""
        path = _job_path(exec_id, "kill")
        params = _task_param(task_id)
        try:
            payload = self._transport.call("GET", path, params=params)
        except LinkisError as exc:
            if exc.http_status != 405 and not _METHOD_NOT_ALLOWED.search(exc.message):
                raise
            payload = self._transport.call("POST", path, params=params, body={})
        return str(payload.get("message") or "")

    def kill_jobs(self, exec_ids: list[str], task_ids: list[int]) -> list[dict]:
        """POST `entrance/{id}/killJobs`: one envelope per job, in order."""
        if not exec_ids or len(exec_ids) != len(task_ids):
            raise LinkisValidationError(
                f"kill_jobs needs one task id per exec id (got {len(exec_ids)} exec ids and "
                f"{len(task_ids)} task ids)"
            )
        body = {"idList": list(exec_ids), "taskIDList": [int(t) for t in task_ids]}
        payload = self._transport.call("POST", _job_path(exec_ids[0], "killJobs"), body=body)
        return list(data_of(payload).get("messages") or [])

    # ---- job history ------------------------------------------------------------------------

    def jobhistory_get(self, task_id: int) -> TaskInfo:
        """GET `jobhistory/{taskID}/get`."""
        payload = self._transport.call("GET", f"jobhistory/{int(task_id)}/get")
        return parse(lambda d: TaskInfo.from_json(d["task"]), data_of(payload))

    def jobhistory_list(
        self,
        *,
        status: list[str] | None = None,
        page: int = 1,
        page_size: int = 20,
        start_date: int | None = None,
        end_date: int | None = None,
        engine_type: str | None = None,
        creator: str | None = None,
        task_id: int | None = None,
    ) -> TaskPage:
        """GET `jobhistory/list`: the caller's tasks, newest first. Dates are epoch ms."""
        _check_page(page, page_size, limit=None)
        params: dict[str, Any] = {"pageNow": page, "pageSize": page_size}
        optional = {
            "status": ",".join(status) if status else None,
            "startDate": start_date,
            "endDate": end_date,
            "executeApplicationName": engine_type,
            "creator": creator,
            "taskID": task_id,
        }
        params.update({k: v for k, v in optional.items() if v is not None})
        return parse(
            TaskPage.from_json,
            data_of(self._transport.call("GET", "jobhistory/list", params=params)),
        )

    # ---- global variables -------------------------------------------------------------------

    def global_variables(self) -> dict[str, str]:
        """GET `variable/listGlobalVariable`: your global variables, name -> value.

        Linkis fills them into `${name}` in every job of yours that does not set the name itself.
        """
        items = data_of(self._transport.call("GET", "variable/listGlobalVariable"))
        return parse(
            lambda d: {str(v["key"]): str(v["value"]) for v in d.get("globalVariables") or []},
            items,
        )

    def set_global_variables(self, variables: Mapping[str, object]) -> None:
        """POST `variable/saveGlobalVariable`: `variables` become your whole list of global
        variables (names left out are deleted; an empty mapping deletes them all)."""
        items = [
            {"key": _variable_name(name), "value": _variable_value(name, value)}
            for name, value in variables.items()
        ]
        body = {"globalVariables": items}
        data_of(self._transport.call("POST", "variable/saveGlobalVariable", body=body))

    def set_global_variable(self, name: str, value: object) -> None:
        """Add or change one global variable, keeping the others (reads the list, saves it)."""
        variables: dict[str, object] = dict(self.global_variables())
        variables[_variable_name(name)] = value
        self.set_global_variables(variables)

    # ---- filesystem -------------------------------------------------------------------------

    def dir_file_trees(self, path: str) -> DirTree | None:
        """GET `filesystem/getDirFileTrees`; None when the directory does not exist."""
        payload = self._transport.call("GET", "filesystem/getDirFileTrees", params={"path": path})
        tree = data_of(payload).get("dirFileTrees")
        return parse(DirTree.from_json, tree) if tree else None

    def open_file(
        self,
        path: str,
        *,
        page: int = 1,
        page_size: int = wire.OPEN_FILE_DEFAULT_PAGE_SIZE,
        null_value: str = wire.NULL_MARKER,
    ) -> FilePage:
        """GET `filesystem/openFile`: one page of a result set (an empty page past the end).

        With the default `null_value`, a real null arrives as None and the text "NULL" as text.
        """
        _check_page(page, page_size, limit=wire.OPEN_FILE_MAX_PAGE_SIZE)
        params = {"path": path, "page": page, "pageSize": page_size, "nullValue": null_value}
        payload = self._transport.call("GET", "filesystem/openFile", params=params)
        return parse(FilePage.from_json, data_of(payload))

    def open_log(self, path: str) -> LogChunk:
        """GET `filesystem/openLog`: the whole persisted log of a finished job."""
        payload = self._transport.call("GET", "filesystem/openLog", params={"path": path})
        return parse(LogChunk.from_json, data_of(payload))

    def resultset_to_excel(
        self,
        path: str,
        dest: str | os.PathLike,
        *,
        output_type: str = "csv",
        charset: str = "utf-8",
        separator: str = ",",
        null_value: str = "NULL",
        limit: int = 0,
        file_name: str | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> Path:
        """Download a result set as csv or xlsx (`filesystem/resultsetToExcel`) into `dest`.

        The body is streamed to a temporary file next to `dest` and renamed at the end, so a
        failed download leaves nothing behind. `on_progress` gets the bytes written so far.
        """
        return download_result_set(
            self._transport,
            path,
            dest,
            output_type=output_type,
            charset=charset,
            separator=separator,
            null_value=null_value,
            limit=limit,
            file_name=file_name,
            on_progress=on_progress,
        )

    # ---- engines (LinkisManager) ------------------------------------------------------------

    def engines(self) -> list[EngineInfo]:
        """GET `linkisManager/listUserEngines`: the user's engines (EngineConns)."""
        items = data_of(self._transport.call("GET", "linkisManager/listUserEngines")).get("engines")
        return parse(lambda es: [EngineInfo.from_json(e) for e in es], items or [])

    def kill_engine(self, instance: str, application: str = ENGINECONN_APPLICATION) -> str:
        """POST `linkisManager/killEngineConn`: end one of the user's engines (`host:port`, as
        `engines()` lists it); the server message."""
        body = {"applicationName": application, "instance": instance}
        payload = self._transport.call("POST", "linkisManager/killEngineConn", body=body)
        return str(payload.get("message") or "")

    # ---- metadata ---------------------------------------------------------------------------

    def databases(self) -> list[str]:
        """GET `datasource/dbs`: database names."""
        dbs = data_of(self._transport.call("GET", "datasource/dbs")).get("dbs") or []
        return parse(lambda items: [d["dbName"] for d in items], dbs)

    def tables(self, database: str) -> list[TableInfo]:
        """GET `datasource/tables` of one database."""
        payload = self._transport.call("GET", "datasource/tables", params={"database": database})
        items = data_of(payload).get("tables") or []
        return parse(lambda ts: [TableInfo.from_json(t, database) for t in ts], items)

    def columns(self, database: str, table: str) -> list[ColumnInfo]:
        """GET `datasource/columns` of one table (partition keys last)."""
        params = {"database": database, "table": table}
        items = (
            data_of(self._transport.call("GET", "datasource/columns", params=params)).get("columns")
            or []
        )
        return parse(lambda cs: [ColumnInfo.from_json(c) for c in cs], items)


def _base_url(url: str) -> str:
    """The gateway root: trailing slashes and a pasted `/api/rest_j/v1` suffix removed."""
    url = url.rstrip("/")
    if url.endswith(wire.API_PREFIX):
        url = url[: -len(wire.API_PREFIX)]
    return url


def _job_path(exec_id: str, action: str) -> str:
    if not exec_id or not str(exec_id).strip():
        raise LinkisValidationError("An exec id (or task id) is required")
    return f"entrance/{quote(str(exec_id), safe=':@')}/{action}"


def _task_param(task_id: int | None) -> dict:
    return {} if task_id is None else {"taskID": int(task_id)}


def _check_page(page: int, page_size: int, *, limit: int | None) -> None:
    if page < 1:
        raise LinkisValidationError(f"page must be 1 or more, not {page}")
    if page_size < 1 or (limit is not None and page_size > limit):
        bound = f" and at most {limit}" if limit is not None else ""
        raise LinkisValidationError(f"page_size must be at least 1{bound}, not {page_size}")


def _variable_name(name: object) -> str:
    text = str(name).strip() if name is not None else ""
    if not text:
        raise LinkisValidationError(
            "A global variable needs a name", hint="Pass e.g. set_global_variable('region', 'eu')."
        )
    return text


def _variable_value(name: str, value: object) -> str:
    text = "" if value is None else str(value)
    if not text.strip():
        raise LinkisValidationError(
            f"The global variable {name!r} has an empty value, which Linkis refuses",
            hint="Give it a value, or leave the name out of set_global_variables() to delete it.",
        )
    return text
