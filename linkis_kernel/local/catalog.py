"""Hive-metastore-shaped metadata (docs/linkis-rest.md, "Metadata") read from DuckDB's catalog:
what one user's connection sees, i.e. their own schemas and the attached demo database."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import duckdb

from . import demo

_SYSTEM_SCHEMAS = ("information_schema", "pg_catalog")


def _marker(duckdb_file: Path) -> Path:
    return duckdb_file.with_name(".created")


def mark_created(duckdb_file: Path) -> None:
    """Remember when the database was created (DuckDB keeps no creation times)."""
    _marker(duckdb_file).touch()


def is_marked(duckdb_file: Path) -> bool:
    """Whether the database was created and seeded completely by this server."""
    return _marker(duckdb_file).exists()


def created_at(duckdb_file: Path) -> int:
    """Epoch seconds of the database's creation, 0 when unknown."""
    try:
        return int(_marker(duckdb_file).stat().st_mtime)
    except OSError:
        return 0


class Provenance(NamedTuple):
    """Who created a database's tables (`createdBy`) and when (`createdAt`, epoch seconds)."""

    created_by: str
    created_at: int


def _own_schemas(cursor: duckdb.DuckDBPyConnection) -> list[str]:
    rows = cursor.execute(
        "SELECT DISTINCT schema_name FROM duckdb_schemas()"
        " WHERE database_name = current_database() AND schema_name NOT IN (?, ?)",
        list(_SYSTEM_SCHEMAS),
    ).fetchall()
    return [name for (name,) in rows]


def _has_demo(cursor: duckdb.DuckDBPyConnection) -> bool:
    found = cursor.execute(
        "SELECT count(*) FROM duckdb_databases() WHERE database_name = ?", [demo.SCHEMA]
    ).fetchone()
    return bool(found and found[0])


def _place(cursor: duckdb.DuckDBPyConnection, database: str) -> tuple[str, str] | None:
    """(catalog, schema) holding what `database` names, as SQL resolves `database.table`: the
    user's own schema first, else the attached demo database; None when neither exists."""
    if database in _own_schemas(cursor):
        current = cursor.execute("SELECT current_database()").fetchone()
        return (str(current[0]) if current else "", database)
    if database == demo.SCHEMA and _has_demo(cursor):
        return (demo.SCHEMA, "main")
    return None


def databases(cursor: duckdb.DuckDBPyConnection) -> list[dict]:
    """The user's own schemas and the shared demo one, by name: [{"dbName": ...}]."""
    names = set(_own_schemas(cursor))
    if _has_demo(cursor):
        names.add(demo.SCHEMA)
    return [{"dbName": name} for name in sorted(names)]


def tables(
    cursor: duckdb.DuckDBPyConnection, database: str | None, own: Provenance, shared: Provenance
) -> list[dict]:
    """Tables and views of one of the user's schemas or of the demo one, sorted by name; []
    for an unknown or missing schema. `own`/`shared` say who created the user's and the demo
    tables."""
    place = _place(cursor, database) if database else None
    if place is None:
        return []
    rows = cursor.execute(
        "SELECT table_name, false FROM duckdb_tables()"
        " WHERE database_name = ? AND schema_name = ?"
        " UNION ALL SELECT view_name, true FROM duckdb_views()"
        " WHERE database_name = ? AND schema_name = ? AND NOT internal"
        " ORDER BY 1",
        [*place, *place],
    ).fetchall()
    origin = shared if place[0] == demo.SCHEMA else own
    return [
        {
            "tableName": name,
            "isView": bool(is_view),
            "databaseName": database,
            "createdBy": origin.created_by,
            "createdAt": origin.created_at,
            "lastAccessAt": 0,
        }
        for name, is_view in rows
    ]


def columns(
    cursor: duckdb.DuckDBPyConnection, database: str | None, table: str | None
) -> list[dict]:
    """Columns of one table or view in order; [] when either is unknown or missing."""
    place = _place(cursor, database) if database and table else None
    if place is None:
        return []
    rows = cursor.execute(
        "SELECT column_name, data_type, comment FROM duckdb_columns()"
        " WHERE database_name = ? AND schema_name = ? AND table_name = ?"
        " ORDER BY column_index",
        [*place, table],
    ).fetchall()
    return [
        {
            "columnName": name,
            "columnType": str(data_type).lower(),
            "columnComment": comment or None,
            "partitioned": False,
        }
        for name, data_type, comment in rows
    ]
