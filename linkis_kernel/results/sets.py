"""Result sets of a finished job, read page by page and turned into typed pandas objects.

Tables become DataFrames whose dtypes follow the column metadata (`convert.py`); text, HTML and
picture results stay text. Every result set says how many rows were fetched and whether (and
why) that is not all of them.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..wire import (
    RESULT_HTML,
    RESULT_IO,
    RESULT_PICTURE,
    RESULT_TABLE,
    RESULT_TEXT,
    SQL_DEFAULT_LIMIT,
    SQL_LIMIT_CREATOR,
    SQL_RUN_TYPES,
)
from .convert import TableBuilder, check_decimal_mode
from .pages import RESULT_PAGE_SIZE, gc_paused, iter_pages

if TYPE_CHECKING:
    from ..client import Column, LinkisRestClient

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
    page_size: int = RESULT_PAGE_SIZE,
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
    page_size: int = RESULT_PAGE_SIZE,
    decimal: str = "decimal",
) -> ResultSet:
    """Read one result file with `openFile` pages until a short page or the fetch limit.

    With a limit, one row past it is requested (never more pages than needed) so that a result
    of exactly `limit` rows is not reported as truncated.
    """
    check_decimal_mode(decimal)
    wanted = limit + 1 if limit else None
    size = min(page_size, wanted) if wanted else page_size
    builder: TableBuilder | None = None
    lines: list[str] = []
    result_type, columns = RESULT_TEXT, None
    fetched = 0
    with gc_paused():
        for page in iter_pages(client, path, size, wanted):
            result_type, rows = page.type, page.rows
            if wanted is not None and fetched + len(rows) > wanted:
                rows = rows[: wanted - fetched]
            fetched += len(rows)
            if page.columns is not None and result_type == RESULT_TABLE:
                columns = page.columns
                builder = builder or TableBuilder(columns, decimal)
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
