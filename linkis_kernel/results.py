"""Result sets of a finished job, read page by page and turned into typed pandas objects.

Tables become DataFrames whose dtypes follow the column metadata; text, HTML and picture results
stay text. Every result set says how many rows were fetched and whether (and why) that is not
all of them. pandas is imported only when a table is built.
"""

from __future__ import annotations

import functools
import gc
import html
import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .wire import (
    NULL_MARKER,
    OPEN_FILE_DEFAULT_PAGE_SIZE,
    RESULT_HTML,
    RESULT_IO,
    RESULT_PICTURE,
    RESULT_TABLE,
    RESULT_TEXT,
    SQL_DEFAULT_LIMIT,
    SQL_LIMIT_CREATOR,
    SQL_RUN_TYPES,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from .client import Column, FilePage, LinkisRestClient

KIND_BY_TYPE = {
    RESULT_TEXT: "text",
    RESULT_TABLE: "table",
    RESULT_IO: "io",
    RESULT_PICTURE: "picture",
    RESULT_HTML: "html",
}

# Linkis appends `limit 5000` to SQL-family code submitted with creator IDE
# (wds.linkis.sql.default.limit, SQLLimitEntranceInterceptor): (docs/linkis-rest.md, "Submit")
# and (docs/linkis-rest.md, "Labels, engines and run types").
_LIMIT_APPLIED = re.compile(r"\blimit", re.IGNORECASE)
_LIMIT_NOT_APPLIED = "not be limited"

# Raw rows are converted in chunks of about this many rows (one default page), so the page lists
# of the whole result never live at once next to the typed columns, and each page's conversion
# overlaps the fetch of the next one.
_CHUNK_ROWS = OPEN_FILE_DEFAULT_PAGE_SIZE

_INT_DTYPES = {
    "tinyint": "Int8",
    "short": "Int16",
    "smallint": "Int16",
    "int": "Int32",
    "integer": "Int32",
    "bigint": "Int64",
    "long": "Int64",
}
_FLOAT_TYPES = frozenset({"float", "double", "real"})
_DECIMAL_TYPES = frozenset({"decimal", "bigdecimal", "numeric"})
_BOOLEAN_TYPES = frozenset({"boolean", "bool"})
_DATETIME_TYPES = frozenset({"date", "timestamp", "datetime"})
_STRING_TYPES = frozenset({"char", "varchar", "string"})
_ZONE_SUFFIX = re.compile(r"(?:Z|[+-]\d\d(?::?\d\d)?)$")
_BOOLEAN_WORDS = {"true": True, "false": False, "1": True, "0": False, "t": True, "f": False}


@dataclass
class ResultSet:
    """One result set of a job: a table (DataFrame), text, HTML, a picture, or IO records.

    `rows_fetched` counts the rows (or lines) read; `truncated` says the result has more rows
    than were fetched or than the engine returned, and `truncation` names the limit that did it.
    """

    index: int
    path: str
    type: str
    kind: str
    columns: list[Column] | None
    data: Any
    rows_fetched: int
    truncated: bool = False
    truncation: str | None = None

    def footer(self) -> str:
        """One line: what was fetched and, when truncated, which limit cut it."""
        unit = "row" if self.kind == "table" else "line"
        text = f"{self.rows_fetched:,} {unit}{'' if self.rows_fetched == 1 else 's'} fetched"
        if self.truncated:
            text += f"; truncated by {self.truncation}"
        return f"Result {self.index + 1} ({self.kind}): {text}"

    def __repr__(self) -> str:
        if self.kind == "picture":
            body = f"<picture, {len(self.data or ''):,} characters of base64>"
        else:
            body = self.data if isinstance(self.data, str) else repr(self.data)
        return f"{body}\n{self.footer()}"

    def _repr_html_(self) -> str:
        footer = f"<p><small>{html.escape(self.footer())}</small></p>"
        if self.kind == "table":
            return self.data._repr_html_() + footer
        if self.kind == "html":
            return str(self.data) + footer
        if self.kind == "picture":
            return f'<img src="data:image/png;base64,{self.data}"/>' + footer
        return f"<pre>{html.escape(str(self.data))}</pre>" + footer


def engine_cap_reason(
    creator: str | None, run_type: str | None, warn_lines: Sequence[str]
) -> str | None:
    """Why a table of exactly SQL_DEFAULT_LIMIT rows may be cut short, or None if it cannot be.

    The cap applies to SQL-family run types of creator IDE, or wherever a WARN line says a
    limit was added; a WARN line saying the code "will not be limited" rules it out.
    """
    if any(_LIMIT_NOT_APPLIED in line for line in warn_lines):
        return None
    warned = any(_LIMIT_APPLIED.search(line) for line in warn_lines)
    ide_sql = creator == SQL_LIMIT_CREATOR and (run_type or "").lower() in SQL_RUN_TYPES
    if not (warned or ide_sql):
        return None
    return (
        f"the engine's default {SQL_DEFAULT_LIMIT}-row cap for creator {creator}: add your own "
        f"LIMIT to the query, or submit with another creator, to get every row"
    )


def read_result_sets(
    client: LinkisRestClient,
    paths: Sequence[str],
    *,
    limit: int | None = None,
    page_size: int = OPEN_FILE_DEFAULT_PAGE_SIZE,
    decimal: str = "decimal",
    cap_reason: Callable[[], str | None] | None = None,
) -> list[ResultSet]:
    """Read every result file in `paths` (already in result order).

    `limit` caps the rows fetched per result (None or 0: all); `cap_reason` is asked (at most
    once, and only when a table has exactly SQL_DEFAULT_LIMIT rows) whether the engine cap
    explains that.
    """
    sets = [
        read_result_set(client, index, path, limit=limit, page_size=page_size, decimal=decimal)
        for index, path in enumerate(paths)
    ]
    ask_cap_reason = functools.cache(cap_reason) if cap_reason else lambda: None
    for result in sets:
        if (
            result.kind == "table"
            and not result.truncated
            and result.rows_fetched == SQL_DEFAULT_LIMIT
        ):
            reason = ask_cap_reason()
            if reason:
                result.truncated, result.truncation = True, reason
    return sets


def read_result_set(
    client: LinkisRestClient,
    index: int,
    path: str,
    *,
    limit: int | None = None,
    page_size: int = OPEN_FILE_DEFAULT_PAGE_SIZE,
    decimal: str = "decimal",
) -> ResultSet:
    """Read one result file with `openFile` pages until a short page or the fetch limit.

    With a limit, one row past it is requested (never more pages than needed) so that a result
    of exactly `limit` rows is not reported as truncated.
    """
    wanted = limit + 1 if limit else None
    size = min(page_size, wanted) if wanted else page_size
    builder: _TableBuilder | None = None
    lines: list[str] = []
    result_type, columns = RESULT_TEXT, None
    fetched = 0
    with _gc_paused():
        for page in _pages(client, path, size, wanted):
            result_type, rows = page.type, page.rows
            if wanted is not None and fetched + len(rows) > wanted:
                rows = rows[: wanted - fetched]
            fetched += len(rows)
            if page.columns is not None and result_type == RESULT_TABLE:
                columns = page.columns
                builder = builder or _TableBuilder(columns, decimal)
                builder.add(rows)
            else:
                lines.extend("" if row[0] is None else str(row[0]) for row in rows if row)
    truncated = wanted is not None and fetched >= wanted
    kept = min(fetched, limit) if limit else fetched
    kind = KIND_BY_TYPE.get(result_type, "text")
    if builder is not None:
        data: Any = builder.frame().iloc[:kept] if truncated else builder.frame()
    else:
        data = ("" if kind == "picture" else "\n").join(lines[:kept])
    return ResultSet(
        index=index,
        path=path,
        type=result_type,
        kind=kind,
        columns=columns,
        data=data,
        rows_fetched=kept,
        truncated=truncated,
        truncation=f"fetch limit of {limit:,} rows" if truncated else None,
    )


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while pages are decoded and converted.

    Each page makes thousands of short-lived lists; with the collector on, its repeated full
    passes over them cost about as much as the JSON decoding itself.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _pages(
    client: LinkisRestClient, path: str, size: int, wanted: int | None
) -> Iterator[FilePage]:
    """`openFile` pages in order until a short page or `wanted` rows.

    Each next page is requested as soon as the previous one arrived and turned out full, in a
    helper thread, so the caller's conversion overlaps the server's work; the pages requested
    are exactly those a sequential reader would request.
    """
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="linkis-result-pages")

    def fetch(number: int) -> FilePage:
        return client.open_file(path, page=number, page_size=size, null_value=NULL_MARKER)

    try:
        number, fetched = 1, 0
        pending: Future[FilePage] | None = pool.submit(fetch, number)
        while pending is not None:
            page = pending.result()
            fetched += len(page.rows)
            full = len(page.rows) >= size and (wanted is None or fetched < wanted)
            number += 1
            pending = pool.submit(fetch, number) if full else None
            yield page
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def table_frame(
    columns: Sequence[Column], rows: list[list], *, decimal: str = "decimal"
) -> pd.DataFrame:
    """A DataFrame from `openFile` rows (strings, None for null) typed by the column metadata."""
    builder = _TableBuilder(columns, decimal)
    builder.add(rows)
    return builder.frame()


class _TableBuilder:
    """Collects pages of raw rows and converts them to typed columns a chunk at a time."""

    def __init__(self, columns: Sequence[Column], decimal: str) -> None:
        if decimal not in ("decimal", "float"):
            raise ValueError(f"decimal must be 'decimal' or 'float', got {decimal!r}")
        self.columns = list(columns)
        self.decimal = decimal
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0
        self._chunks: list[list[pd.Series]] = []

    def add(self, rows: list[list]) -> None:
        """Take one page of rows (each a list of one cell per column)."""
        if not rows:
            return
        import numpy as np

        width = len(self.columns)
        if set(map(len, rows)) != {width}:
            raise ValueError(f"a result page has rows that do not have {width} cells")
        cells = itertools.chain.from_iterable(rows)
        block = np.fromiter(cells, dtype=object, count=len(rows) * width)
        self._pending.append(block.reshape(len(rows), width))
        self._pending_rows += len(rows)
        if self._pending_rows >= _CHUNK_ROWS:
            self._convert_pending()

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        self._convert_pending()
        if not self._chunks:
            self._chunks.append(
                [convert_column(_empty_objects(), c.data_type, self.decimal) for c in self.columns]
            )
        series = [
            chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)
            for chunks in zip(*self._chunks, strict=True)
        ]
        self._chunks = [series]
        frame = pd.concat(series, axis=1, ignore_index=True) if series else pd.DataFrame()
        frame.columns = [c.name for c in self.columns]
        return frame

    def _convert_pending(self) -> None:
        if not self._pending:
            return
        import numpy as np

        block = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        self._pending, self._pending_rows = [], 0
        self._chunks.append(
            [
                convert_column(block[:, i], c.data_type, self.decimal)
                for i, c in enumerate(self.columns)
            ]
        )


def _empty_objects() -> np.ndarray:
    import numpy as np

    return np.empty(0, dtype=object)


def base_type(data_type: str) -> str:
    """The Linkis type name without parameters: `decimal(10,2)` -> `decimal`."""
    return data_type.split("(", 1)[0].strip().lower()


def convert_column(values: np.ndarray, data_type: str, decimal: str = "decimal") -> pd.Series:
    """Type one column of cells (strings, None for null) as its Linkis data type says.

    Values that do not parse as the declared type are kept as the strings given.
    """
    import pandas as pd

    kind = base_type(data_type)
    try:
        if kind in _INT_DTYPES:
            return pd.Series(_integers(values, _INT_DTYPES[kind]), copy=False)
        if kind in _FLOAT_TYPES or (kind in _DECIMAL_TYPES and decimal == "float"):
            return pd.Series(_floats(values), copy=False)
        if kind in _DECIMAL_TYPES:
            return pd.Series(_decimals(values), dtype=object, copy=False)
        if kind in _BOOLEAN_TYPES:
            return _booleans(values)
        if kind in _DATETIME_TYPES:
            return _datetimes(values)
        if kind in _STRING_TYPES:
            return pd.Series(pd.array(values, dtype="string"), copy=False)
    except (ValueError, TypeError, OverflowError, ArithmeticError):
        pass
    return pd.Series(values, dtype=object, copy=True)


def _integers(values: np.ndarray, dtype: str) -> Any:
    import numpy as np
    import pandas as pd

    mask = pd.isna(values)
    filled = values.copy()
    filled[mask] = "0"
    array = pd.arrays.IntegerArray(filled.astype(np.int64), mask)
    return array if dtype == "Int64" else array.astype(dtype)


def _floats(values: np.ndarray) -> np.ndarray:
    import numpy as np
    import pandas as pd

    filled = values.copy()
    filled[pd.isna(values)] = np.nan
    return filled.astype(np.float64)


def _decimals(values: np.ndarray) -> np.ndarray:
    import numpy as np
    import pandas as pd

    mask = pd.isna(values)
    has_nulls = mask.any()
    if has_nulls:
        values = values.copy()
        values[mask] = "0"
    out = np.frompyfunc(Decimal, 1, 1)(values)
    if has_nulls:
        out[mask] = None
    return out


def _booleans(values: np.ndarray) -> pd.Series:
    import pandas as pd

    mask = pd.isna(values)
    true, false = values == "true", values == "false"
    if (true | false | mask).all():
        return pd.Series(pd.arrays.BooleanArray(true, mask), copy=False)
    words = pd.Series(values, dtype=object, copy=False)
    mapped = words.str.lower().map(_BOOLEAN_WORDS)
    if mapped.isna().sum() != mask.sum():
        raise ValueError("not a boolean")
    return mapped.astype("boolean")


def _datetimes(values: np.ndarray) -> pd.Series:
    """ISO dates and timestamps: numpy parses plain ones fast; pandas keeps a zone offset
    (which numpy would silently convert away), judged by the first value."""
    import pandas as pd

    first = next((value for value in values if value is not None), None)
    if first is None or not (len(first) > len("yyyy-mm-dd") and _ZONE_SUFFIX.search(first)):
        try:
            return pd.Series(values.astype("datetime64[us]"), copy=False)
        except ValueError:
            pass
    return pd.Series(pd.to_datetime(values, format="ISO8601"), copy=False)
