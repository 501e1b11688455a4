"""Linkis cell text for Python values, as every engine of the embedded server writes them.

Standard library only: the Spark engine (which imports nothing from linkis_kernel) loads this
file by path, the DuckDB engines import it.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any


def timestamp_text(value: datetime) -> str:
    """`2024-01-31 12:00:00[.ffffff]`, without a time zone, as Linkis shows timestamps."""
    text = value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{value.microsecond:06d}" if value.microsecond else text


def cell_text(value: Any) -> str:
    """A non-null value as Linkis cell text: booleans as true/false, floats exactly, nested
    values (lists, maps, structs, Spark Rows) as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return timestamp_text(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, list | tuple | dict):
        return json.dumps(_jsonable(value), ensure_ascii=False, default=cell_text)
    return str(value)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "asDict"):  # a Spark Row (a tuple) is a struct: a JSON object
        value = value.asDict()
    if isinstance(value, dict):
        return {cell_text(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return cell_text(value)
