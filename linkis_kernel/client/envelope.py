"""The Linkis envelope: decode an answer, turn `status != 0` into the matching error class.

Every answer is `{"method", "status", "message", "data"}` (docs/linkis-rest.md, "Envelope");
`status` decides success whatever the HTTP code (docs/linkis-rest.md, "Errors and HTTP codes").
Server texts are scrubbed of the client's secrets before they reach an exception.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests

from .. import wire
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

T = TypeVar("T")
Scrub = Callable[[str], str]

REDACTED = "***"
RETRY_HTTP_CODES = frozenset({502, 503, 504})
SUBMIT_PATHS = frozenset({"entrance/submit", "entrance/execute"})
_EXCERPT_CHARS = 200

_NOT_FOUND = re.compile(
    r"not exist|no such file|Get job by ID error|corresponding job is empty|job corresponding to "
    r"the ID is empty|job was not found|" + re.escape(wire.MSG_JOB_ENDED_PREFIX),
    re.IGNORECASE,
)
_NO_PERMISSION = re.compile(r"no permission to|permission denied", re.IGNORECASE)
# Linkis error codes that mean "the request itself is invalid" (entrance 2000x, workspace 800xx).
_VALIDATION_CODES = frozenset({20007, 20008, 20009, 20010, 80004, 80034, 80036})
_TAGS = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.IGNORECASE | re.DOTALL)


def decode(
    method: str,
    path: str,
    response: requests.Response,
    *,
    scrub: Scrub,
    auth_hint: str,
    attempts: int,
) -> dict:
    """The envelope of `response` when its `status` is 0; else raise its error.

    `attempts` is how many times a retried read was sent (for a non-JSON body's message).
    Reading the body may raise `requests` errors: the caller maps those.
    """
    try:
        payload = json.loads(response.content)
    except ValueError:
        raise non_json_error(method, path, response, scrub=scrub, attempts=attempts) from None
    if not isinstance(payload, dict) or "status" not in payload:
        raise shape_error(method, response, "a Linkis envelope", "other JSON")
    if as_int(payload["status"]) == wire.STATUS_OK:
        return payload
    raise envelope_error(method, response, payload, scrub=scrub, auth_hint=auth_hint)


def envelope_error(
    method: str, response: requests.Response, payload: dict, *, scrub: Scrub, auth_hint: str
) -> LinkisError:
    """The error an envelope with `status != 0` stands for, its texts scrubbed."""
    status = as_int(payload.get("status"))
    message = scrub(str(payload.get("message") or "no message"))
    data = data_of(payload)
    error_msg = data.get("errorMsg")
    code = as_int(error_msg.get("errCode")) if isinstance(error_msg, dict) else None
    stack = data.get("stack")
    cls = error_class(status, response.status_code, message, code)
    error = cls(
        message,
        status=status,
        method=method,
        http_status=response.status_code,
        url=safe_url(response.url),
        error_code=code,
        stack=scrub(str(stack)) if stack else None,
    )
    if cls is LinkisAuthError:
        error.hint = auth_hint
    return error


def error_class(status: Any, http_status: int, message: str, code: int | None) -> type[LinkisError]:
    """Envelope status, HTTP code, message and Linkis error code -> the exception class."""
    if status == wire.STATUS_NOT_LOGGED_IN or http_status == 401:
        return LinkisAuthError
    if _NOT_FOUND.search(message):
        return LinkisNotFoundError
    if status == wire.STATUS_NO_PERMISSION or http_status == 403 or _NO_PERMISSION.search(message):
        return LinkisPermissionError
    if status == wire.STATUS_VALIDATION or http_status == 412 or code in _VALIDATION_CODES:
        return LinkisValidationError
    return LinkisServerError


def non_json_error(
    method: str, path: str, response: requests.Response, *, scrub: Scrub, attempts: int
) -> LinkisTransportError:
    """A body that is no Linkis JSON (a proxy's error page, say), with a scrubbed excerpt.

    `attempts` is how many times a retried read was sent; a submit is never retried.
    """
    text = scrub(excerpt(response.content))
    uncertain = path in SUBMIT_PATHS and response.status_code >= 500
    cls = LinkisSubmitUncertainError if uncertain else LinkisTransportError
    retried = path not in SUBMIT_PATHS and response.status_code in RETRY_HTTP_CODES
    return cls(
        f"The server answered HTTP {response.status_code} with a non-Linkis body: "
        f"{text or '(empty)'}{gave_up_note(attempts if retried else 1)}",
        excerpt=text,
        method=method,
        http_status=response.status_code,
        url=safe_url(response.url),
    )


def shape_error(
    method: str, response: requests.Response, expected: str, got: str
) -> LinkisTransportError:
    return LinkisTransportError(
        f"Expected {expected} but the server sent {got}",
        method=method,
        http_status=response.status_code,
        url=safe_url(response.url),
        hint="Check that LINKIS_URL points at a Linkis gateway, not another web service.",
    )


def parse(build: Callable[[Any], T], data: Any) -> T:
    """Build a model; a response of an unexpected shape becomes a LinkisServerError."""
    try:
        return build(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise LinkisServerError(
            f"The server's answer has an unexpected shape ({type(exc).__name__}: {exc})",
            hint="The server may run an unsupported Linkis version; please report this.",
        ) from None


def data_of(payload: dict) -> dict:
    """The envelope's `data` object ({} when it has none)."""
    data = payload.get("data")
    return data if isinstance(data, dict) else {}


def scrub_secrets(text: str, secrets: list[str | None]) -> str:
    """Replace every one of `secrets` in `text` by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def gave_up_note(attempts: int) -> str:
    """Names the retries behind a failure, so a read that gave up is not taken for a blip."""
    return f"; gave up after {attempts} attempts" if attempts > 1 else ""


def excerpt(body: bytes) -> str:
    """The start of a non-JSON body as plain text: tags stripped, whitespace collapsed."""
    text = body[: _EXCERPT_CHARS * 20].decode("utf-8", "replace")
    plain = html.unescape(_TAGS.sub(" ", text))
    return " ".join(plain.split())[:_EXCERPT_CHARS]


def safe_url(url: str) -> str:
    """The URL without its query string (the place secrets would travel) or user info."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def as_int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None
