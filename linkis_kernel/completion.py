"""SQL completion and inspection for the wrapper kernel: keywords, plus database, table and
column names from the Linkis metadata endpoints, fetched once per kernel (`MetadataCache`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from .client import ColumnInfo, LinkisRestClient, TableInfo

SQL_KEYWORDS = (
    "ADD", "ALL", "ALTER", "AND", "ANTI", "AS", "ASC", "BETWEEN", "BIGINT", "BOOLEAN", "BY",
    "CACHE", "CASE", "CAST", "CLUSTER", "COALESCE", "COLUMN", "COLUMNS", "COUNT", "CREATE",
    "CROSS", "CURRENT_DATE", "CURRENT_TIMESTAMP", "DATABASE", "DATABASES", "DATE", "DECIMAL",
    "DELETE", "DESC", "DESCRIBE", "DISTINCT", "DISTRIBUTE", "DOUBLE", "DROP", "ELSE", "END",
    "EXCEPT", "EXISTS", "EXPLAIN", "EXTERNAL", "FALSE", "FILTER", "FIRST", "FLOAT", "FOLLOWING",
    "FOR", "FROM", "FULL", "FUNCTION", "GROUP", "HAVING", "IF", "ILIKE", "IN", "INNER", "INSERT",
    "INT", "INTEGER", "INTERSECT", "INTERVAL", "INTO", "IS", "JOIN", "LAST", "LATERAL", "LEFT",
    "LIKE", "LIMIT", "LOCATION", "MAX", "MIN", "NOT", "NULL", "NULLS", "OFFSET", "ON", "OR",
    "ORDER", "OUTER", "OVER", "OVERWRITE", "PARTITION", "PARTITIONED", "PRECEDING", "QUALIFY",
    "RANGE", "RIGHT", "RLIKE", "ROLLUP", "ROW", "ROWS", "SCHEMA", "SELECT", "SEMI", "SET", "SHOW",
    "SMALLINT", "SORT", "STRING", "SUM", "TABLE", "TABLES", "TBLPROPERTIES", "TEMPORARY", "THEN",
    "TIMESTAMP", "TINYINT", "TRUE", "TRUNCATE", "UNBOUNDED", "UNION", "UPDATE", "USE", "USING",
    "VALUES", "VARCHAR", "VIEW", "WHEN", "WHERE", "WINDOW", "WITH",
)  # fmt: skip

T = TypeVar("T")

_TOKEN_BEFORE = re.compile(r"[\w.]*$")
_WORD_AFTER = re.compile(r"\w*")
_QUALIFIED = re.compile(r"\b([A-Za-z_]\w*)\.([A-Za-z_]\w*)\b")


@dataclass
class SqlScan:
    """What is still open at the end of some SQL text."""

    quote: str | None = None
    depth: int = 0
    block_comment: bool = False
    line_comment: bool = False

    @property
    def open(self) -> bool:
        """An unterminated quote, parenthesis or block comment."""
        return self.quote is not None or self.depth > 0 or self.block_comment


def scan_sql(code: str) -> SqlScan:
    """Track quotes ('', "", ``; backslash and doubled-quote escapes), parentheses and
    comments (--, /* */) through `code`."""
    scan = SqlScan()
    i = 0
    while i < len(code):
        char, pair = code[i], code[i : i + 2]
        if scan.quote:
            if char == "\\" or pair == scan.quote * 2:
                i += 1
            elif char == scan.quote:
                scan.quote = None
        elif scan.block_comment:
            if pair == "*/":
                scan.block_comment = False
                i += 1
        elif scan.line_comment:
            scan.line_comment = char != "\n"
        elif pair == "--":
            scan.line_comment = True
            i += 1
        elif pair == "/*":
            scan.block_comment = True
            i += 1
        elif char in "'\"`":
            scan.quote = char
        elif char == "(":
            scan.depth += 1
        elif char == ")":
            scan.depth -= 1
        i += 1
    return scan


def sql_is_complete(code: str) -> dict[str, str]:
    """An `is_complete_reply` for SQL: complete unless a quote, parenthesis or block comment is
    still open (a missing semicolon never makes a cell incomplete)."""
    scan = scan_sql(code)
    if scan.open:
        return {"status": "incomplete", "indent": ""}
    if scan.depth < 0:
        return {"status": "invalid"}
    return {"status": "complete"}


class MetadataCache:
    """Database, table and column names from Linkis, each list fetched once until `clear()`.

    `connect` returns the client (it may connect on first use). A lookup that fails counts as
    empty, is not cached, and goes to `on_error` (so completion still offers keywords).
    """

    def __init__(
        self,
        connect: Callable[[], LinkisRestClient],
        on_error: Callable[[Exception], None] | None = None,
    ):
        self._connect = connect
        self._on_error = on_error
        self._databases: list[str] | None = None
        self._tables: dict[str, list[TableInfo]] = {}
        self._columns: dict[tuple[str, str], list[ColumnInfo]] = {}

    def clear(self) -> None:
        """Forget everything; the next lookups ask Linkis again."""
        self._databases = None
        self._tables.clear()
        self._columns.clear()

    def databases(self) -> list[str]:
        if self._databases is None:
            self._databases = self._fetch(lambda client: client.databases())
        return self._databases or []

    def tables(self, database: str) -> list[TableInfo]:
        if database not in self._tables:
            found = self._fetch(lambda client: client.tables(database))
            if found is None:
                return []
            self._tables[database] = found
        return self._tables[database]

    def columns(self, database: str, table: str) -> list[ColumnInfo]:
        key = (database, table)
        if key not in self._columns:
            found = self._fetch(lambda client: client.columns(database, table))
            if found is None:
                return []
            self._columns[key] = found
        return self._columns[key]

    def _fetch(self, lookup: Callable[[LinkisRestClient], list[T]]) -> list[T] | None:
        try:
            return lookup(self._connect())
        except Exception as exc:  # any failure to connect or look up: no names, no crash
            if self._on_error is not None:
                self._on_error(exc)
            return None

    def database_named(self, name: str) -> str | None:
        """The database called `name` (any case), or None."""
        return _named(name, self.databases())

    def table_in(self, database: str, name: str) -> TableInfo | None:
        """The table or view `name` (any case) of `database`, or None."""
        tables = {table.name: table for table in self.tables(database)}
        found = _named(name, tables)
        return tables[found] if found else None


def _named(name: str, names: Iterable[str]) -> str | None:
    lowered = name.lower()
    return next((candidate for candidate in names if candidate.lower() == lowered), None)


@dataclass
class Completion:
    """Matches for the text between `start` and `end`, with each match's kind."""

    start: int
    end: int
    matches: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)

    def add(self, names: Iterable[str], kind: str, prefix: str) -> None:
        lowered = prefix.lower()
        for name in names:
            if name.lower().startswith(lowered) and name not in self.matches:
                self.matches.append(name)
                self.kinds.append(kind)

    def reply(self) -> dict:
        """The `complete_reply` content."""
        types = [
            {"text": match, "type": kind, "start": self.start, "end": self.end}
            for match, kind in zip(self.matches, self.kinds, strict=True)
        ]
        return {
            "status": "ok",
            "matches": self.matches,
            "cursor_start": self.start,
            "cursor_end": self.end,
            "metadata": {"_jupyter_types_experimental": types},
        }


class SqlCompleter:
    """Completes and inspects SQL names against a `MetadataCache`.

    `db.` completes that database's tables, `db.table.` and `table.` its columns, a bare word
    keywords, databases, the tables of databases the cell names and the columns of tables it
    names. A bare table name is looked up in the databases the cell names, then in up to
    `search_limit` others.
    """

    def __init__(self, cache: MetadataCache, search_limit: int = 20):
        self.cache = cache
        self.search_limit = search_limit

    def complete(self, code: str, cursor_pos: int) -> Completion:
        before = code[:cursor_pos]
        token = _TOKEN_BEFORE.search(before).group()  # type: ignore[union-attr]
        *qualifiers, prefix = token.split(".")
        completion = Completion(start=cursor_pos - len(prefix), end=cursor_pos)
        scan = scan_sql(before)
        if scan.quote or scan.block_comment or scan.line_comment:
            return completion
        if not qualifiers:
            self._complete_word(completion, code, prefix)
        elif len(qualifiers) == 1:
            self._complete_qualified(completion, code, qualifiers[0], prefix)
        elif len(qualifiers) == 2:
            table = self._table(qualifiers[1], code, database=qualifiers[0])
            if table is not None:
                self._add_columns(completion, table, prefix)
        return completion

    def _add_columns(self, completion: Completion, table: TableInfo, prefix: str) -> None:
        columns = self.cache.columns(table.database, table.name)
        completion.add((column.name for column in columns), "column", prefix)

    def _complete_word(self, completion: Completion, code: str, prefix: str) -> None:
        keywords = SQL_KEYWORDS if not prefix.islower() else [k.lower() for k in SQL_KEYWORDS]
        completion.add(keywords, "keyword", prefix)
        completion.add(self.cache.databases(), "database", prefix)
        for database in self._databases_in(code):
            tables = self.cache.tables(database)
            completion.add((table.name for table in tables), "table", prefix)
        for table in self._tables_in(code):
            self._add_columns(completion, table, prefix)

    def _complete_qualified(
        self, completion: Completion, code: str, qualifier: str, prefix: str
    ) -> None:
        database = self.cache.database_named(qualifier)
        if database is not None:
            tables = self.cache.tables(database)
            completion.add((table.name for table in tables), "table", prefix)
            return
        table = self._table(qualifier, code)
        if table is not None:
            self._add_columns(completion, table, prefix)

    def _databases_in(self, code: str) -> list[str]:
        """Databases the code names as `db.something`, in order."""
        found = (self.cache.database_named(match[0]) for match in _QUALIFIED.findall(code))
        return list(dict.fromkeys(name for name in found if name))

    def _tables_in(self, code: str) -> list[TableInfo]:
        """Tables the code names as `db.table`, in order."""
        tables = []
        for database, name in _QUALIFIED.findall(code):
            table = self._table(name, code, database=database)
            if table is not None and table not in tables:
                tables.append(table)
        return tables

    def _table(self, name: str, code: str, database: str | None = None) -> TableInfo | None:
        """`database.name`, or a bare `name` from the databases the code names, then others."""
        if database is not None:
            known = self.cache.database_named(database)
            return self.cache.table_in(known, name) if known else None
        named = self._databases_in(code)
        others = [db for db in self.cache.databases() if db not in named]
        for candidate in named + others[: self.search_limit]:
            table = self.cache.table_in(candidate, name)
            if table is not None:
                return table
        return None

    def inspect(self, code: str, cursor_pos: int) -> dict[str, str] | None:
        """A text/plain and text/markdown description of the database, table or column under
        the cursor, or None when it names none of them."""
        before = _TOKEN_BEFORE.search(code[:cursor_pos]).group()  # type: ignore[union-attr]
        after = _WORD_AFTER.match(code, cursor_pos).group()  # type: ignore[union-attr]
        parts = [part for part in (before + after).split(".") if part]
        if not parts or len(parts) > 3:
            return None
        if len(parts) == 1 and self.cache.database_named(parts[0]):
            return self._describe_database(self.cache.database_named(parts[0]) or "")
        if len(parts) == 3:
            table = self._table(parts[1], code, database=parts[0])
            return self._describe_column(table, parts[2]) if table else None
        if len(parts) == 2:
            table = self._table(parts[1], code, database=parts[0])
            if table is not None:
                return self._describe_table(table)
            table = self._table(parts[0], code)
            return self._describe_column(table, parts[1]) if table else None
        table = self._table(parts[0], code)
        return self._describe_table(table) if table else None

    def _describe_database(self, database: str) -> dict[str, str]:
        tables = self.cache.tables(database)
        title = f"{database} (database, {len(tables)} tables)"
        plain = [title] + [
            f"  {table.name}{' (view)' if table.is_view else ''}" for table in tables
        ]
        markdown = [f"**{database}** (database, {len(tables)} tables)", ""] + [
            f"- `{table.name}`{' (view)' if table.is_view else ''}" for table in tables
        ]
        return {"text/plain": "\n".join(plain), "text/markdown": "\n".join(markdown)}

    def _describe_table(self, table: TableInfo) -> dict[str, str]:
        columns = self.cache.columns(table.database, table.name)
        kind = "view" if table.is_view else "table"
        name = f"{table.database}.{table.name}"
        width = max((len(column.name) for column in columns), default=0)
        type_width = max((len(column.type) for column in columns), default=0)
        plain = [f"{name} ({kind}, {len(columns)} columns)"]
        markdown = [
            f"**{name}** ({kind}, {len(columns)} columns)",
            "",
            "| column | type | comment |",
            "|---|---|---|",
        ]
        for column in columns:
            comment = _column_comment(column)
            plain.append(
                f"  {column.name:<{width}}  {column.type:<{type_width}}  {comment}".rstrip()
            )
            markdown.append(f"| {column.name} | {column.type} | {comment.replace('|', '/')} |")
        return {"text/plain": "\n".join(plain), "text/markdown": "\n".join(markdown)}

    def _describe_column(self, table: TableInfo, name: str) -> dict[str, str] | None:
        columns = {column.name: column for column in self.cache.columns(table.database, table.name)}
        found = _named(name, columns)
        if found is None:
            return None
        column = columns[found]
        where = f"{table.database}.{table.name}.{column.name}"
        comment = _column_comment(column)
        plain = f"{where}: {column.type}" + (f"  ({comment})" if comment else "")
        markdown = f"**{where}**: `{column.type}`" + (f" ({comment})" if comment else "")
        return {"text/plain": plain, "text/markdown": markdown}


def _column_comment(column: ColumnInfo) -> str:
    notes = [column.comment or "", "partition key" if column.partitioned else ""]
    return "; ".join(note for note in notes if note)
