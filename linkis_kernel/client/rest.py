"""`LinkisRestClient`: one method per Linkis REST endpoint, over one keep-alive HTTP session.

Handles auth (token headers, or password login with the session cookie and one transparent
re-login), the envelope (`status != 0` is an error whatever the HTTP code), retries of idempotent
calls, and keeps secrets out of reprs, logs and exception texts.
"""

from __future__ import annotations

import html
import json
import logging
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from urllib3.exceptions import NewConnectionError

from .. import wire
from ..version import __version__
from .auth import encrypt_password
from .embedded import EMBEDDED_NOTE, ensure_server
from .errors import (
    LinkisAuthError,
    LinkisError,
    LinkisNotFoundError,
    LinkisPermissionError,
    LinkisServerError,
    LinkisSubmitUncertainError,
    LinkisTransportError,
    LinkisValidationError,
)
from .models import (
    ColumnInfo,
    DirTree,
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

logger = logging.getLogger("linkis_kernel.client")

T = TypeVar("T")

_RETRY_HTTP_CODES = frozenset({502, 503, 504})
_TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
_BACKOFF_FIRST_S = 0.2
_BACKOFF_CAP_S = 2.0
_EXCERPT_CHARS = 200
_DOWNLOAD_CHUNK = 64 * 1024
_DOWNLOAD_ERROR_PREFIX = "error(错误):".encode()
_REDACTED = "***"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_SUBMIT_PATHS = frozenset({"entrance/submit", "entrance/execute"})

_NOT_FOUND = re.compile(
    r"not exist|no such file|Get job by ID error|corresponding job is empty|job corresponding to "
    r"the ID is empty|job was not found|" + re.escape(wire.MSG_JOB_ENDED_PREFIX),
    re.IGNORECASE,
)
_NO_PERMISSION = re.compile(r"no permission to|permission denied", re.IGNORECASE)
_METHOD_NOT_ALLOWED = re.compile(
    r"method .*not (supported|allowed)|not allowed|unknown request URI", re.IGNORECASE
)
# Linkis error codes that mean "the request itself is invalid" (entrance 2000x, workspace 800xx).
_VALIDATION_CODES = frozenset({20007, 20008, 20009, 20010, 80004, 80034, 80036})
_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.IGNORECASE | re.DOTALL)


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
        self.url = _base_url(url)
        self.embedded = False  # from_env() started or reused the embedded server
        self.user = user
        self.auth_kind = "token" if token else "password" if password else "none"
        self.timeout = timeout
        self.retries = max(0, int(retries))
        self._password = password
        self._token = token
        self._api = self.url + wire.API_PREFIX + "/"
        self._session = requests.Session()
        self._session.verify = verify
        if urlsplit(self.url).hostname in _LOOPBACK_HOSTS:
            self._session.trust_env = False  # a local server is never behind HTTP(S)_PROXY
        self._session.headers["User-Agent"] = f"linkis-kernel/{__version__}"
        if token:
            self._session.headers[wire.TOKEN_CODE_HEADER] = token
            self._session.headers[wire.TOKEN_USER_HEADER] = user
        self._login_lock = threading.Lock()
        self._logged_in = False
        self._login_generation = 0
        self._sent_password: str | None = None

    @classmethod
    def from_env(cls, **overrides: Any) -> LinkisRestClient:
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
        self._session.close()

    # ---- auth -------------------------------------------------------------------------------

    def login(self) -> LoginInfo:
        """Log in now (password: `user/login`; token: `user/token-login`) and return who we are."""
        if self.auth_kind == "none":
            raise LinkisAuthError(
                "No credentials configured, so there is nothing to log in with",
                hint="Set LINKIS_TOKEN (with LINKIS_USER), or LINKIS_USER and LINKIS_PASSWORD.",
            )
        if self.auth_kind == "token":
            payload = self._finish(
                "POST", "user/token-login", self._send("POST", "user/token-login")
            )
            return self._parse(LoginInfo.from_json, _data(payload))
        with self._login_lock:
            return self._password_login()

    def logout(self) -> None:
        """End the password session (`user/logout`); a no-op for token auth."""
        if self.auth_kind != "password" or not self._logged_in:
            return
        with self._login_lock:
            self._logged_in = False
            try:
                self._finish("POST", "user/logout", self._send("POST", "user/logout", body={}))
            except LinkisAuthError:
                pass  # the session had already expired: logged out either way
            finally:
                self._session.cookies.clear()

    def _password_login(self) -> LoginInfo:
        body = {"userName": self.user, "password": self._login_password()}
        response = self._send("POST", "user/login", body=body)
        try:
            payload = self._finish("POST", "user/login", response)
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
        return self._parse(LoginInfo.from_json, _data(payload))

    def _login_password(self) -> str:
        """The password as the gateway wants it: RSA-encrypted when it publishes a key."""
        password = self._password or ""
        try:
            key_info = _data(
                self._finish("GET", "user/publicKey", self._send("GET", "user/publicKey"))
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

    def _with_auth(self, action: Callable[[], T]) -> T:
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

    # ---- entrance ---------------------------------------------------------------------------

    def entrance_submit(self, body: dict) -> SubmitResult:
        """POST `entrance/submit` (1.x body). Never retried once the request may have been sent."""
        return self._parse(SubmitResult.from_json, self._submit("entrance/submit", body))

    def entrance_execute(self, body: dict) -> SubmitResult:
        """POST `entrance/execute` (0.x body). Never retried once the request may have been sent."""
        return self._parse(SubmitResult.from_json, self._submit("entrance/execute", body))

    def _submit(self, path: str, body: dict) -> dict:
        if not isinstance(body, dict):
            raise LinkisValidationError(
                f"The {path} body must be a dict, not {type(body).__name__}"
            )
        return _data(self._call("POST", path, body=body, retry=False))

    def status(self, exec_id: str, task_id: int | None = None) -> JobStatus:
        """GET `entrance/{id}/status`; with `task_id` the server falls back to job history."""
        payload = self._call("GET", _job_path(exec_id, "status"), params=_task_param(task_id))
        status = self._parse(JobStatus.from_json, _data(payload))
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
        payload = self._call("GET", _job_path(exec_id, "log"), params=params)
        return self._parse(lambda d: LogChunk.from_json(d, from_line), _data(payload))

    def progress(self, exec_id: str, task_id: int | None = None) -> Progress:
        """GET `entrance/{id}/progress`."""
        payload = self._call("GET", _job_path(exec_id, "progress"), params=_task_param(task_id))
        return self._parse(Progress.from_json, _data(payload))

    def progress_with_resource(self, exec_id: str, task_id: int | None = None) -> Progress:
        """GET `entrance/{id}/progressWithResource` (adds YARN queue use when there is any)."""
        path = _job_path(exec_id, "progressWithResource")
        payload = self._call("GET", path, params=_task_param(task_id))
        return self._parse(Progress.from_json, _data(payload))

    def kill(self, exec_id: str, task_id: int | None = None) -> str:
        """Kill a job: GET `entrance/{id}/kill` (POST where GET is refused); the server message."""
        path = _job_path(exec_id, "kill")
        params = _task_param(task_id)
        try:
            payload = self._call("GET", path, params=params)
        except LinkisError as exc:
            if exc.http_status != 405 and not _METHOD_NOT_ALLOWED.search(exc.message):
                raise
            payload = self._call("POST", path, params=params, body={})
        return str(payload.get("message") or "")

    def kill_jobs(self, exec_ids: list[str], task_ids: list[int]) -> list[dict]:
        """POST `entrance/{id}/killJobs`: one envelope per job, in order."""
        if not exec_ids or len(exec_ids) != len(task_ids):
            raise LinkisValidationError(
                f"kill_jobs needs one task id per exec id (got {len(exec_ids)} exec ids and "
                f"{len(task_ids)} task ids)"
            )
        body = {"idList": list(exec_ids), "taskIDList": [int(t) for t in task_ids]}
        payload = self._call("POST", _job_path(exec_ids[0], "killJobs"), body=body)
        return list(_data(payload).get("messages") or [])

    # ---- job history ------------------------------------------------------------------------

    def jobhistory_get(self, task_id: int) -> TaskInfo:
        """GET `jobhistory/{taskID}/get`."""
        payload = self._call("GET", f"jobhistory/{int(task_id)}/get")
        return self._parse(lambda d: TaskInfo.from_json(d["task"]), _data(payload))

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
        return self._parse(
            TaskPage.from_json, _data(self._call("GET", "jobhistory/list", params=params))
        )

    # ---- filesystem -------------------------------------------------------------------------

    def dir_file_trees(self, path: str) -> DirTree | None:
        """GET `filesystem/getDirFileTrees`; None when the directory does not exist."""
        payload = self._call("GET", "filesystem/getDirFileTrees", params={"path": path})
        tree = _data(payload).get("dirFileTrees")
        return self._parse(DirTree.from_json, tree) if tree else None

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
        payload = self._call("GET", "filesystem/openFile", params=params)
        return self._parse(FilePage.from_json, _data(payload))

    def open_log(self, path: str) -> LogChunk:
        """GET `filesystem/openLog`: the whole persisted log of a finished job."""
        payload = self._call("GET", "filesystem/openLog", params={"path": path})
        return self._parse(LogChunk.from_json, _data(payload))

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
        if output_type not in ("csv", "xlsx"):
            raise LinkisValidationError(f"output_type must be 'csv' or 'xlsx', not {output_type!r}")
        target = Path(dest)
        if not target.parent.is_dir():
            raise LinkisValidationError(
                f"Cannot write {target}: the folder {target.parent} does not exist",
                hint="Create the folder or pick another destination.",
            )
        params = {
            "path": path,
            "outputFileType": output_type,
            "charset": charset,
            "csvSeparator": separator,
            "nullValue": null_value,
            "limit": limit,
            "outputFileName": file_name or target.stem,
        }

        def download() -> Path:
            response = self._send("GET", "filesystem/resultsetToExcel", params=params, stream=True)
            with response:
                return self._save_download(response, target, on_progress)

        return self._with_auth(download)

    def _save_download(
        self,
        response: requests.Response,
        target: Path,
        on_progress: Callable[[int], None] | None,
    ) -> Path:
        method, what = "GET", "filesystem/resultsetToExcel"
        content_type = response.headers.get("Content-Type", "")
        if response.status_code >= 400 or content_type.startswith("application/json"):
            self._finish(method, what, response)  # raises the envelope's error
            raise self._shape_error(method, response, "a file download", "a JSON message")
        chunks = response.iter_content(chunk_size=_DOWNLOAD_CHUNK)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
        written = 0
        try:
            first = next(chunks, b"")
            if first.startswith(_DOWNLOAD_ERROR_PREFIX):
                first, ended = _read_up_to(first, chunks, _DOWNLOAD_CHUNK)
                if ended:  # a short body that starts like that is the server's error text
                    self._raise_download_error(method, response, first)
            with open(partial, "wb") as out:
                for chunk in _prepend(first, chunks):
                    out.write(chunk)
                    written += len(chunk)
                    if on_progress is not None:
                        on_progress(written)
            os.replace(partial, target)
        except requests.RequestException as exc:
            raise self._transport_error(method, what, exc, uncertain=False) from None
        finally:
            partial.unlink(missing_ok=True)
        return target

    def _raise_download_error(self, method: str, response: requests.Response, body: bytes) -> None:
        message = body[len(_DOWNLOAD_ERROR_PREFIX) :].decode("utf-8", "replace").strip()
        cls = _error_class(wire.STATUS_ERROR, response.status_code, message, None)
        raise cls(
            self._scrub(message) or "download failed",
            status=wire.STATUS_ERROR,
            method=method,
            http_status=response.status_code,
            url=_safe_url(response.url),
        )

    # ---- metadata ---------------------------------------------------------------------------

    def databases(self) -> list[str]:
        """GET `datasource/dbs`: database names."""
        dbs = _data(self._call("GET", "datasource/dbs")).get("dbs") or []
        return self._parse(lambda items: [d["dbName"] for d in items], dbs)

    def tables(self, database: str) -> list[TableInfo]:
        """GET `datasource/tables` of one database."""
        payload = self._call("GET", "datasource/tables", params={"database": database})
        items = _data(payload).get("tables") or []
        return self._parse(lambda ts: [TableInfo.from_json(t, database) for t in ts], items)

    def columns(self, database: str, table: str) -> list[ColumnInfo]:
        """GET `datasource/columns` of one table (partition keys last)."""
        params = {"database": database, "table": table}
        items = _data(self._call("GET", "datasource/columns", params=params)).get("columns") or []
        return self._parse(lambda cs: [ColumnInfo.from_json(c) for c in cs], items)

    # ---- transport --------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        body: dict | None = None,
        retry: bool = True,
    ) -> dict:
        """One authenticated call; returns the envelope (status 0) or raises its error."""
        return self._with_auth(
            lambda: self._finish(method, path, self._send(method, path, params, body, retry))
        )

    def _send(
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
                    raise self._transport_error(
                        method, path, exc, uncertain=uncertain, attempts=attempt + 1
                    ) from None
            else:
                if last or not retry or response.status_code not in _RETRY_HTTP_CODES:
                    return response
                response.close()
            delay = _sleep_backoff(delay)
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def _request_once(
        self, method: str, path: str, params: dict | None, body: dict | None, stream: bool
    ) -> requests.Response:
        url = self._api + path
        started = time.monotonic()
        try:
            response = self._session.request(
                method, url, params=params, json=body, timeout=self.timeout, stream=stream
            )
        except requests.exceptions.SSLError as exc:
            raise LinkisTransportError(
                f"The TLS connection failed ({_tls_reason(exc)})",
                method=method,
                url=_safe_url(url),
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

    def _finish(self, method: str, path: str, response: requests.Response) -> dict:
        """Decode the envelope once; return it when `status` is 0, else raise its error."""
        try:
            payload = json.loads(response.content)
        except ValueError:
            raise self._non_json_error(method, path, response) from None
        except requests.RequestException as exc:
            raise self._transport_error(method, path, exc, uncertain=False) from None
        if not isinstance(payload, dict) or "status" not in payload:
            raise self._shape_error(method, response, "a Linkis envelope", "other JSON")
        if _as_int(payload["status"]) == wire.STATUS_OK:
            return payload
        raise self._envelope_error(method, response, payload)

    def _envelope_error(
        self, method: str, response: requests.Response, payload: dict
    ) -> LinkisError:
        status = _as_int(payload.get("status"))
        message = self._scrub(str(payload.get("message") or "no message"))
        data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
        error_msg = data.get("errorMsg") if isinstance(data.get("errorMsg"), dict) else {}
        code = _as_int(error_msg.get("errCode"))
        stack = data.get("stack")
        cls = _error_class(status, response.status_code, message, code)
        error = cls(
            message,
            status=status,
            method=method,
            http_status=response.status_code,
            url=_safe_url(response.url),
            error_code=code,
            stack=self._scrub(str(stack)) if stack else None,
        )
        if cls is LinkisAuthError:
            error.hint = self._auth_hint()
        return error

    def _auth_hint(self) -> str:
        if self.auth_kind == "token":
            return "Check LINKIS_TOKEN and LINKIS_USER (the token must be known to the gateway)."
        if self.auth_kind == "password":
            return "Check LINKIS_USER and LINKIS_PASSWORD."
        return "Set LINKIS_TOKEN (with LINKIS_USER), or LINKIS_USER and LINKIS_PASSWORD."

    def _non_json_error(
        self, method: str, path: str, response: requests.Response
    ) -> LinkisTransportError:
        excerpt = self._scrub(_excerpt(response.content))
        uncertain = path in _SUBMIT_PATHS and response.status_code >= 500
        cls = LinkisSubmitUncertainError if uncertain else LinkisTransportError
        retried = path not in _SUBMIT_PATHS and response.status_code in _RETRY_HTTP_CODES
        return cls(
            f"The server answered HTTP {response.status_code} with a non-Linkis body: "
            f"{excerpt or '(empty)'}{_gave_up_note(self.retries + 1 if retried else 1)}",
            excerpt=excerpt,
            method=method,
            http_status=response.status_code,
            url=_safe_url(response.url),
        )

    def _shape_error(
        self, method: str, response: requests.Response, expected: str, got: str
    ) -> LinkisTransportError:
        return LinkisTransportError(
            f"Expected {expected} but the server sent {got}",
            method=method,
            http_status=response.status_code,
            url=_safe_url(response.url),
            hint="Check that LINKIS_URL points at a Linkis gateway, not another web service.",
        )

    def _transport_error(
        self, method: str, path: str, exc: Exception, *, uncertain: bool, attempts: int = 1
    ) -> LinkisTransportError:
        if isinstance(exc, requests.Timeout):
            reason = f"no answer within {self.timeout[1]:g} s"
        elif isinstance(exc, requests.exceptions.ChunkedEncodingError):
            reason = "the answer was cut off"
        elif _never_sent(exc):
            reason = "could not connect to the server"
        else:
            reason = "the connection broke"
        cls = LinkisSubmitUncertainError if uncertain else LinkisTransportError
        return cls(
            f"{reason} ({type(exc).__name__}){_gave_up_note(attempts)}",
            method=method,
            url=_safe_url(self._api + path),
        )

    def _parse(self, build: Callable[[Any], T], data: Any) -> T:
        """Build a model; a response of an unexpected shape becomes a LinkisServerError."""
        try:
            return build(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise LinkisServerError(
                f"The server's answer has an unexpected shape ({type(exc).__name__}: {exc})",
                hint="The server may run an unsupported Linkis version; please report this.",
            ) from None

    def _scrub(self, text: str) -> str:
        """Replace every secret this client holds (password, token, cookies) by ***."""
        secrets = [self._password, self._token, self._sent_password]
        secrets.extend(c.value for c in self._session.cookies)
        for secret in secrets:
            if secret:
                text = text.replace(secret, _REDACTED)
        return text


def _base_url(url: str) -> str:
    """The gateway root: trailing slashes and a pasted `/api/rest_j/v1` suffix removed."""
    url = url.rstrip("/")
    if url.endswith(wire.API_PREFIX):
        url = url[: -len(wire.API_PREFIX)]
    return url


def _data(payload: dict) -> dict:
    data = payload.get("data")
    return data if isinstance(data, dict) else {}


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


def _error_class(
    status: Any, http_status: int, message: str, code: int | None
) -> type[LinkisError]:
    if status == wire.STATUS_NOT_LOGGED_IN or http_status == 401:
        return LinkisAuthError
    if _NOT_FOUND.search(message):
        return LinkisNotFoundError
    if status == wire.STATUS_NO_PERMISSION or http_status == 403 or _NO_PERMISSION.search(message):
        return LinkisPermissionError
    if status == wire.STATUS_VALIDATION or http_status == 412 or code in _VALIDATION_CODES:
        return LinkisValidationError
    return LinkisServerError


def _never_sent(exc: Exception) -> bool:
    """True when the request surely never reached the server (connect refused or timed out)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _gave_up_note(attempts: int) -> str:
    """Names the retries behind a failure, so a read that gave up is not taken for a blip."""
    return f"; gave up after {attempts} attempts" if attempts > 1 else ""


def _sleep_backoff(delay: float) -> float:
    """Sleep `delay` plus jitter; return the next delay (doubling, capped)."""
    time.sleep(delay * random.uniform(0.8, 1.2))
    return min(delay * 2, _BACKOFF_CAP_S)


def _ms(started: float) -> float:
    return (time.monotonic() - started) * 1000


def _excerpt(body: bytes) -> str:
    """The start of a non-JSON body as plain text: tags stripped, whitespace collapsed."""
    text = body[: _EXCERPT_CHARS * 20].decode("utf-8", "replace")
    plain = html.unescape(_TAGS.sub(" ", text))
    return " ".join(plain.split())[:_EXCERPT_CHARS]


def _safe_url(url: str) -> str:
    """The URL without its query string (the place secrets would travel) or user info."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _tls_reason(exc: Exception) -> str:
    """The innermost reason of a requests error, e.g. `CERTIFICATE_VERIFY_FAILED`."""
    text = str(exc)
    match = re.search(r"\[SSL: ([A-Z_]+)\]", text)
    return match.group(1) if match else type(exc).__name__


def _as_int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _read_up_to(head: bytes, chunks: Iterator[bytes], limit: int) -> tuple[bytes, bool]:
    """Extend `head` from `chunks` up to `limit` bytes; also say whether the stream ended."""
    parts = [head]
    size = len(head)
    while size < limit:
        chunk = next(chunks, None)
        if chunk is None:
            return b"".join(parts), True
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts), False


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest
