"""The files of `filesystem/resultsetToExcel`: a result set as CSV or xlsx.

(docs/linkis-rest.md, "Result files".) CSV comes row batch by row batch straight from the
`.dolphin` file (`csv_chunks`); xlsx is built with xlsxwriter in constant-memory mode into a
temporary file (`build_xlsx`). Nothing here knows HTTP: the endpoint streams what these give.
"""

from __future__ import annotations

import codecs
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Protocol

from .. import wire
from .dolphin import iter_rows
from .errors import ServiceError

DOWNLOAD_ROW_LIMIT = 5000  # wds.linkis.workspace.resultset.download.maxsize.csv / .excel
ROW_BATCH = 1000
FILE_TYPES = ("csv", "xlsx")
CONTENT_TYPES = {
    "csv": "text/plain",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_INTEGER_TYPES = frozenset({"tinyint", "short", "int", "long", "bigint"})
_FLOAT_TYPES = frozenset({"float", "double", "decimal", "bigdecimal"})
_NEWLINES = re.compile(r"\r\n|\r|\n")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


class Params(Protocol):
    """The query parameters of a request, parsed (the HTTP handler is one)."""

    def str_param(self, name: str, default: str | None = None) -> str | None: ...

    def int_param(self, name: str, default: int | None = None) -> int | None: ...

    def bool_param(self, name: str, default: bool) -> bool: ...


@dataclass(frozen=True)
class ExportOptions:
    """The request parameters of resultsetToExcel, validated, with the Linkis defaults."""

    file_type: str
    charset: str
    separator: str
    quote_retouch: bool
    file_name: str
    sheet_name: str
    null_value: str
    limit: int
    keep_newline: bool

    @classmethod
    def from_params(cls, h: Params) -> ExportOptions:
        file_type = h.str_param("outputFileType", "csv") or "csv"
        if file_type not in FILE_TYPES:
            raise ServiceError(f"Unsupported outputFileType {file_type!r}; use csv or xlsx.")
        charset = h.str_param("charset", "utf-8") or "utf-8"
        try:
            codecs.lookup(charset)
        except LookupError:
            raise ServiceError(f"Unknown charset {charset!r}; use e.g. utf-8 or gbk.") from None
        separator = h.str_param("csvSeparator") or h.str_param("csvSeperator") or ","
        null_value = h.str_param("nullValue", "NULL")
        limit = h.int_param("limit", 0) or 0
        if limit < 0:
            raise ServiceError(f"Parameter limit must be 0 (server limit) or more, got {limit}.")
        return cls(
            file_type=file_type,
            charset=charset,
            separator="\t" if separator == "t" else separator,
            quote_retouch=h.bool_param("quoteRetouchEnable", False),
            file_name=_CONTROL_CHARS.sub("", h.str_param("outputFileName") or "")
            or "downloadResultset",
            sheet_name=h.str_param("sheetName") or "result",
            null_value="" if null_value == "BLANK" else (null_value or ""),
            # `limit` may only lower the cap (Linkis lets it raise it: a way around the cap).
            limit=min(limit, DOWNLOAD_ROW_LIMIT) if limit else DOWNLOAD_ROW_LIMIT,
            keep_newline=h.bool_param("keepNewline", False),
        )

    def cell(self, value: str | None, *, quote: bool = True) -> str:
        """A cell's text as Linkis writes it: null marker, newlines, CSV quoting if asked."""
        if value is None:
            value = self.null_value
        if not self.keep_newline:
            value = _NEWLINES.sub(" ", value)
        if quote and self.quote_retouch and value.strip():
            value = '"' + value.replace('"', "") + '"'
        return value


def check_downloadable(type_code: str, options: ExportOptions) -> None:
    """Refuse an xlsx download of a result set that is not a table, as Linkis does."""
    if options.file_type == "xlsx" and type_code != wire.RESULT_TABLE:
        raise ServiceError(
            "Non-table result sets cannot be downloaded as excel"
            "(非table类型的结果集不能下载为excel)",
            code=80024,
        )


def attachment_headers(options: ExportOptions) -> dict[str, str]:
    """The HTTP headers of the downloaded file."""
    # Linkis sends the UTF-8 bytes of the name labelled as ISO-8859-1.
    name = f"{options.file_name}.{options.file_type}".encode().decode("latin-1")
    return {
        "Content-Disposition": f"attachment;filename={name}",
        "Content-Type": f"{CONTENT_TYPES[options.file_type]}; charset={options.charset}",
    }


def csv_chunks(path: Path, names: list[str] | None, options: ExportOptions) -> Iterator[bytes]:
    """The CSV text of a result set, encoded: the header line, then one chunk per row batch.

    `names` is None for a text-like result set, which is dumped line by line.
    """
    rows = iter_rows(path)
    try:
        if names is not None:
            header = options.separator.join(options.cell(name) for name in names) + "\n"
            yield header.encode(options.charset, "replace")
        limited = islice(rows, options.limit)
        while batch := list(islice(limited, ROW_BATCH)):
            text = "".join(_csv_line(row, names is not None, options) for row in batch)
            yield text.encode(options.charset, "replace")
    finally:
        _close(rows)


def _close(rows: Iterator[list[str | None]]) -> None:
    """Close a row generator early, so that its file is closed now rather than at GC."""
    close = getattr(rows, "close", None)
    if close is not None:
        close()


def _csv_line(row: list[str | None], is_table: bool, options: ExportOptions) -> str:
    if not is_table:  # text-like result sets are dumped line by line
        return "".join(value or "" for value in row) + "\n"
    return options.separator.join(options.cell(value) for value in row) + "\n"


def build_xlsx(
    path: Path, names: list[str] | None, types: list[str], options: ExportOptions
) -> Path:
    """The result set as an xlsx workbook in a temporary file, which the caller removes."""
    import xlsxwriter
    from xlsxwriter.exceptions import XlsxWriterException

    fd, name = tempfile.mkstemp(prefix="linkis-export-", suffix=".xlsx")
    os.close(fd)
    target = Path(name)
    try:
        workbook = xlsxwriter.Workbook(str(target), {"constant_memory": True})
        try:
            sheet = workbook.add_worksheet(options.sheet_name)
        except XlsxWriterException as err:
            raise ServiceError(f"Invalid sheetName {options.sheet_name!r}: {err}") from None
        for col, column_name in enumerate(names or []):
            sheet.write_string(0, col, column_name)
        rows = iter_rows(path)
        try:
            for index, row in enumerate(islice(rows, options.limit), start=1):
                for col, value in enumerate(row):
                    _write_cell(sheet, index, col, value, types, options)
        finally:
            _close(rows)
        workbook.close()
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target


def _write_cell(
    sheet: Any, row: int, col: int, value: str | None, types: list[str], options: ExportOptions
) -> None:
    kind = types[col] if col < len(types) else "string"
    if value is not None and (kind in _INTEGER_TYPES or kind in _FLOAT_TYPES):
        try:
            number = int(value) if kind in _INTEGER_TYPES else float(value)
        except ValueError:
            pass
        else:
            sheet.write_number(row, col, number)
            return
    # write_string: a value starting with "=" stays text, never becomes a formula.
    sheet.write_string(row, col, options.cell(value, quote=False))
