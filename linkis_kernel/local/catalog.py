"""Hive-metastore-shaped metadata (docs/linkis-rest.md, "Metadata") read from DuckDB's catalog."""

from __future__ import annotations

from pathlib import Path

import duckdb

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


def databases(conn: duckdb.DuckDBPyConnection) -> list[dict]:
    """Every user schema of the database, by name: [{"dbName": ...}]."""
    cursor = conn.cursor()
    try:
        rows = cursor.execute(
            "SELECT DISTINCT schema_name FROM duckdb_schemas()"
            " WHERE database_name = current_database() AND schema_name NOT IN (?, ?)"
            " ORDER BY schema_name",
            list(_SYSTEM_SCHEMAS),
        ).fetchall()
    finally:
        cursor.close()
    return [{"dbName": name} for (name,) in rows]


def tables(
    conn: duckdb.DuckDBPyConnection, database: str | None, owner: str, created: int
) -> list[dict]:
    """Tables and views of one schema, sorted by name; [] for an unknown or missing schema."""
    if not database:
        return []
    cursor = conn.cursor()
    try:
        rows = cursor.execute(
            "SELECT table_name, false FROM duckdb_tables()"
            " WHERE database_name = current_database() AND schema_name = ?"
            " UNION ALL SELECT view_name, true FROM duckdb_views()"
            " WHERE database_name = current_database() AND schema_name = ? AND NOT internal"
            " ORDER BY 1",
            [database, database],
        ).fetchall()
    finally:
        cursor.close()
    return [
        {
            "tableName": name,
            "isView": bool(is_view),
            "databaseName": database,
            "createdBy": owner,
            "createdAt": created,
            "lastAccessAt": 0,
        }
        for name, is_view in rows
    ]


def columns(conn: duckdb.DuckDBPyConnection, database: str | None, table: str | None) -> list[dict]:
    """Columns of one table or view in order; [] when either is unknown or missing."""
    if not database or not table:
        return []
    cursor = conn.cursor()
    try:
        rows = cursor.execute(
            "SELECT column_name, data_type, comment FROM duckdb_columns()"
            " WHERE database_name = current_database() AND schema_name = ? AND table_name = ?"
            " ORDER BY column_index",
            [database, table],
        ).fetchall()
    finally:
        cursor.close()
    return [
        {
            "columnName": name,
            "columnType": str(data_type).lower(),
            "columnComment": comment or None,
            "partitioned": False,
        }
        for name, data_type, comment in rows
    ]
