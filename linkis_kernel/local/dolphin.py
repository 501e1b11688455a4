"""Linkis `.dolphin` result-set files: writer, paged reader, row iterator.

(docs/linkis-rest.md, "The .dolphin format")

Next to each result file the writer leaves a hidden sparse index (`._N.dolphin.idx`): the byte
offset of every `INDEX_STRIDE`-th row as 8-byte little-endian integers, so a page deep in a large
result is read by seeking, not by scanning from the start.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..wire import NULL_MARKER, RESULT_TABLE

MAGIC = b"dolphin"
INDEX_STRIDE = 1024
_NUM = 10  # every integer in the format is 10 ASCII digits
_NULL_METADATA = b"NULL"
_OFFSET = struct.Struct("<q")
# What one page read (filesystem/openFile) may hold, so that a page of wide rows cannot take
# the server's memory; its JSON answer can be a few times as large.
MAX_PAGE_BYTES = 32 << 20
_MAX_ROWS = 10**15  # beyond any result file; larger page numbers are simply past the end


class DolphinFormatError(ValueError):
    """The file is not a well-formed result set."""


class PageTooLarge(ValueError):
    """The rows asked for hold more bytes than may be read at once."""


@dataclass(frozen=True)
class Column:
    """One column of a TABLE result set, as stored in its metadata record."""

    name: str
    data_type: str
    comment: str | None = None


def index_path(path: Path) -> Path:
    """The hidden sparse row index that belongs to a result file."""
    return path.with_name(f".{path.name}.idx")


def _num(value: int) -> bytes:
    return b"%010d" % value


def _table_payload(cells: list[str | None]) -> bytes:
    encoded = [(NULL_MARKER if c is None else c).encode() for c in cells]
    index = b"".join(b"%d," % len(e) for e in encoded)
    return _num(len(index)) + index + b"".join(encoded)


class ResultWriter:
    """Writes one result set: header, metadata record, then one record per row."""

    def __init__(self, path: Path, type_code: str, columns: list[Column] | None = None):
        self.path = path
        self.type_code = type_code
        self.rows = 0
        self._offsets: list[int] = []
        self._file = open(path, "wb")  # noqa: SIM115 (closed in close())
        os.chmod(path, 0o600)
        self._file.write(MAGIC + _num(int(type_code)))
        if type_code == RESULT_TABLE:
            cells: list[str | None] = []
            for col in columns or []:
                cells += [col.name, col.data_type, "NULL" if col.comment is None else col.comment]
            self._record(_table_payload(cells))
        else:
            self._record(_NULL_METADATA)
        self._file.flush()  # readers of a result still being written see its header

    def _record(self, payload: bytes) -> None:
        self._file.write(_num(len(payload)) + payload)

    def write_row(self, cells: list[str | None]) -> None:
        """Append a table row (None is a null cell)."""
        self._mark_row()
        self._record(_table_payload(cells))

    def write_line(self, line: str) -> None:
        """Append a line to a text-like result set."""
        self._mark_row()
        self._record(line.encode())

    def _mark_row(self) -> None:
        if self.rows % INDEX_STRIDE == 0:
            self._offsets.append(self._file.tell())
        self.rows += 1

    def close(self) -> None:
        """Finish the file and write its row index."""
        if self._file.closed:
            return
        self._file.close()
        idx = index_path(self.path)
        idx.write_bytes(b"".join(_OFFSET.pack(o) for o in self._offsets))
        os.chmod(idx, 0o600)

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise DolphinFormatError(f"{f.name}: truncated record")
    return data


def _read_record(f: BinaryIO, most: int | None = None) -> bytes | None:
    """The next record's payload; None at the end, including a last record still being written.
    PageTooLarge, before reading it, if it holds more than `most` bytes."""
    head = f.read(_NUM)
    if not head.isdigit():
        if head:
            raise DolphinFormatError(f"{f.name}: bad record length {head!r}")
        return None
    if len(head) != _NUM:
        return None
    size = int(head)
    if most is not None and size > most:
        raise PageTooLarge(f"the rows asked for hold more than {most} bytes")
    payload = f.read(size)
    return payload if len(payload) == size else None


def _skip_record(f: BinaryIO) -> bool:
    head = f.read(_NUM)
    if not head:
        return False
    if len(head) != _NUM or not head.isdigit():
        raise DolphinFormatError(f"{f.name}: bad record length {head!r}")
    f.seek(int(head), os.SEEK_CUR)
    return True


def _decode_table(payload: bytes) -> list[str | None]:
    index_len = int(payload[:_NUM])
    index = payload[_NUM : _NUM + index_len].decode().split(",")[:-1]
    pos = _NUM + index_len
    cells: list[str | None] = []
    for size in index:
        text = payload[pos : pos + int(size)].decode()
        pos += int(size)
        cells.append(None if text == NULL_MARKER else text)
    return cells


def _comment(text: str | None) -> str | None:
    """Comments written as null come back as the text `NULL`; treat both as no comment."""
    return None if text in (None, "NULL") else text


def _read_head(f: BinaryIO) -> tuple[str, list[Column] | None]:
    magic = f.read(len(MAGIC))
    if magic != MAGIC:
        raise DolphinFormatError(f"{f.name}: not a .dolphin result set")
    type_digits = _read_exact(f, _NUM)
    if not type_digits.isdigit():
        raise DolphinFormatError(f"{f.name}: bad type code {type_digits!r}")
    type_code = str(int(type_digits))
    meta = _read_record(f)
    if meta is None:
        raise DolphinFormatError(f"{f.name}: missing metadata record")
    if type_code != RESULT_TABLE:
        return type_code, None
    cells = _decode_table(meta)
    columns = [
        Column(cells[i] or "", cells[i + 1] or "string", _comment(cells[i + 2]))
        for i in range(0, len(cells) - 2, 3)
    ]
    return type_code, columns


def _decode_row(type_code: str, payload: bytes) -> list[str | None]:
    if type_code == RESULT_TABLE:
        return _decode_table(payload)
    return [payload.decode()]


def read_header(path: Path) -> tuple[str, list[Column] | None]:
    """(type code, columns) of a result set; columns is None for non-table sets."""
    with open(path, "rb") as f:
        return _read_head(f)


def iter_rows(path: Path) -> Iterator[list[str | None]]:
    """Every row of a result set in order, streamed; None marks a null cell.

    Text-like sets yield one single-cell row per line.
    """
    with open(path, "rb") as f:
        type_code, _ = _read_head(f)
        while (payload := _read_record(f)) is not None:
            yield _decode_row(type_code, payload)


def _seek_row(f: BinaryIO, path: Path, row: int) -> bool:
    """Position `f` (just after the metadata) at record `row`; False when past the end."""
    if row > _MAX_ROWS:
        return False
    idx = index_path(path)
    block = row // INDEX_STRIDE
    skip = row
    try:
        with open(idx, "rb") as fi:
            fi.seek(block * _OFFSET.size)
            raw = fi.read(_OFFSET.size)
    except OSError:
        raw = b""
    if len(raw) == _OFFSET.size:
        f.seek(_OFFSET.unpack(raw)[0])
        skip = row - block * INDEX_STRIDE
    elif idx.exists() and block > 0:
        return False  # the index is complete: fewer blocks than asked for
    return all(_skip_record(f) for _ in range(skip))


def read_page(
    path: Path, page: int, page_size: int, max_bytes: int = MAX_PAGE_BYTES
) -> tuple[str, list[Column] | None, list[list[str | None]]]:
    """Rows [(page-1)*page_size, page*page_size) of a result set, reading only what it needs;
    PageTooLarge if they hold more than `max_bytes` bytes."""
    with open(path, "rb") as f:
        type_code, columns = _read_head(f)
        rows: list[list[str | None]] = []
        if not _seek_row(f, path, (page - 1) * page_size):
            return type_code, columns, rows
        left = max_bytes
        while len(rows) < page_size and (payload := _read_record(f, left)) is not None:
            left -= len(payload)
            rows.append(_decode_row(type_code, payload))
        return type_code, columns, rows
