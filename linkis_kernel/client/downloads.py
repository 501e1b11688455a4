"""Result-set downloads (`filesystem/resultsetToExcel`): streamed to a file, all or nothing.

The server answers a file body, or a JSON envelope, or a short text starting `error(错误):`
with HTTP 200 (docs/linkis-rest.md, "Result files"); the last two become LinkisErrors.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from .. import wire
from . import envelope
from .errors import LinkisValidationError
from .transport import Transport

_PATH = "filesystem/resultsetToExcel"
_CHUNK = 64 * 1024
_ERROR_PREFIX = "error(错误):".encode()


def download_result_set(
    transport: Transport,
    path: str,
    dest: str | os.PathLike,
    *,
    output_type: str,
    charset: str,
    separator: str,
    null_value: str,
    limit: int,
    file_name: str | None,
    on_progress: Callable[[int], None] | None,
) -> Path:
    """Download the result set at `path` into `dest` (see `LinkisRestClient.resultset_to_excel`)."""
    if output_type not in ("csv", "xlsx"):
        raise LinkisValidationError(f"output_type must be 'csv' or 'xlsx', not {output_type!r}")
    target = check_target(dest)
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
        response = transport.send("GET", _PATH, params=params, stream=True)
        with response:
            return _save(transport, response, target, on_progress)

    return transport.with_auth(download)


def _save(
    transport: Transport,
    response: requests.Response,
    target: Path,
    on_progress: Callable[[int], None] | None,
) -> Path:
    """Stream the body to a temporary file beside `target`, then rename it into place."""
    method = "GET"
    content_type = response.headers.get("Content-Type", "")
    if response.status_code >= 400 or content_type.startswith("application/json"):
        transport.finish(method, _PATH, response)  # raises the envelope's error
        raise envelope.shape_error(method, response, "a file download", "a JSON message")
    chunks = response.iter_content(chunk_size=_CHUNK)
    written = 0
    try:
        first = next(chunks, b"")
        if first.startswith(_ERROR_PREFIX):
            first, ended = _read_up_to(first, chunks, _CHUNK)
            if ended:  # a short body that starts like that is the server's error text
                _raise_download_error(transport, response, first)
        with written_in_place(target) as partial, open(partial, "wb") as out:
            for chunk in _prepend(first, chunks):
                out.write(chunk)
                written += len(chunk)
                if on_progress is not None:
                    on_progress(written)
    except requests.RequestException as exc:
        raise transport.transport_error(method, _PATH, exc, uncertain=False) from None
    return target


def check_target(dest: str | os.PathLike) -> Path:
    """`dest` as a Path, after checking its folder exists."""
    target = Path(dest)
    if not target.parent.is_dir():
        raise LinkisValidationError(
            f"Cannot write {target}: the folder {target.parent} does not exist",
            hint="Create the folder or pick another destination.",
        )
    return target


@contextmanager
def written_in_place(target: Path) -> Iterator[Path]:
    """A temporary path beside `target` to write to; renamed to `target` when the block ends
    without an error, removed in any case, so a failed download leaves no partial file."""
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        yield partial
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _raise_download_error(transport: Transport, response: requests.Response, body: bytes) -> None:
    message = body[len(_ERROR_PREFIX) :].decode("utf-8", "replace").strip()
    cls = envelope.error_class(wire.STATUS_ERROR, response.status_code, message, None)
    raise cls(
        transport.scrub(message) or "download failed",
        status=wire.STATUS_ERROR,
        method="GET",
        http_status=response.status_code,
        url=envelope.safe_url(response.url),
    )


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
