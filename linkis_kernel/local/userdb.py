"""Each user's own DuckDB database, confined to their own area (README, "SQL isolation").

A user's SQL runs in their own SQL engine process (sqlengine.py) on
`<data dir>/users/<user>/sql.duckdb` with the shared demo database attached read-only as `demo`,
and may read and write files only under `<data dir>/users/<user>/files/`. A database is opened
on first use with one cursor per worker made ready for jobs (DuckDB's progress settings belong to
a cursor and cannot be set once the configuration is locked); then its configuration is locked,
so SQL cannot widen it. DuckDB may use half of the memory the engine process may use: the rest
is for the values a query's rows hold on their way to the result files.

DuckDB reuses the space of dropped tables but gives back only free space at the end of its file
(at a checkpoint), so a database whose file is still at least half free space (and
`COMPACT_MIN_FREE` or more) after a checkpoint is rewritten without it before the next job that
starts while none of the user's runs; the rewrite replaces the file only when it holds the same
objects (their definitions) and rows.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from . import catalog, demo
from .errors import ServiceError
from .paths import Layout

OWN_CATALOG = "sql"  # a user's database is attached under its file's stem
_CURSOR_SETUP = ("SET enable_progress_bar = true", "SET enable_progress_bar_print = false")
_TEMPORARY_OBJECTS = (
    "SELECT 'TABLE', table_name FROM duckdb_tables() WHERE temporary"
    " UNION ALL SELECT 'VIEW', view_name FROM duckdb_views() WHERE temporary AND NOT internal"
)
COMPACT_MIN_FREE = 16 << 20
# What a rewrite must keep: every object of the database, and each table's rows.
_INVENTORY = (
    "SELECT 'table', schema_name, table_name, sql || coalesce(comment, '') FROM duckdb_tables()"
    " WHERE database_name = $db"
    " UNION ALL SELECT 'view', schema_name, view_name, sql || coalesce(comment, '')"
    " FROM duckdb_views() WHERE database_name = $db AND NOT internal"
    " UNION ALL SELECT 'column comment', schema_name, table_name || '.' || column_name, comment"
    " FROM duckdb_columns() WHERE database_name = $db AND comment IS NOT NULL"
    " UNION ALL SELECT 'sequence', schema_name, sequence_name, '' FROM duckdb_sequences()"
    " WHERE database_name = $db"
    " UNION ALL SELECT 'index', schema_name, index_name, '' FROM duckdb_indexes()"
    " WHERE database_name = $db"
    " UNION ALL SELECT function_type, schema_name, function_name, '' FROM duckdb_functions()"
    " WHERE database_name = $db AND NOT internal"
    " UNION ALL SELECT 'type', schema_name, type_name, '' FROM duckdb_types()"
    " WHERE database_name = $db AND NOT internal"
    " UNION ALL SELECT 'constraint', schema_name, table_name, constraint_text"
    " FROM duckdb_constraints() WHERE database_name = $db"
)
MSG_NOT_OPEN = "The SQL databases are not open: the server is starting or shutting down"


def quoted(text: str) -> str:
    """`text` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def quoted_name(name: str) -> str:
    """`name` as a SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def create_demo_file(path: Path) -> None:
    """Write the demo tables into a new database file at `path` (replacing what is there)."""
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect()
    try:
        conn.execute(f"ATTACH {quoted(str(path))} AS {demo.SCHEMA}")
        conn.execute("BEGIN TRANSACTION")
        conn.execute(demo.TABLES_SQL)
        conn.execute("COMMIT")
        conn.execute(f"DETACH {demo.SCHEMA}")
    finally:
        conn.close()


def ensure_demo_file(path: Path) -> None:
    """Create the demo database the first time (or after a start cut short)."""
    if not (catalog.is_marked(path) and path.is_file()):
        create_demo_file(path)
        catalog.mark_created(path)


def duckdb_config(
    area: Path, memory: int | None
) -> dict[str, str | bool | int | float | list[str]]:
    """How a user's database is opened: DuckDB gets half of the `memory` its process may use
    (None: DuckDB's default), and installs and loads no extension by itself."""
    config: dict[str, str | bool | int | float | list[str]] = {
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
        # DuckDB's own folders (extensions, secrets) resolve here, outside files/: no access
        "home_directory": str(area),
    }
    if memory is not None:
        config["memory_limit"] = f"{memory // 2 >> 20}MiB"  # DuckDB's MB are 1000 * 1000
    return config


def database_file(area: Path) -> Path:
    """The DuckDB file of the user whose area is `area`."""
    return area / f"{OWN_CATALOG}.duckdb"


@dataclass(frozen=True)
class SqlSession:
    """A cursor to run one job's SQL on, the only folder its files may be in, and the bytes its
    process may use (None: no cap)."""

    cursor: duckdb.DuckDBPyConnection
    files_dir: Path
    memory: int | None


class UserDatabase:
    """One user's open database: a locked connection and its cursors ready for jobs."""

    def __init__(self, area: Path, demo_file: Path, cursors: int, memory: int | None):
        self.file = database_file(area)
        self.files_dir = area / "files"
        self.demo_file = demo_file
        self.memory = memory
        self.files_dir.mkdir(parents=True, exist_ok=True)
        fresh = not self.file.exists()
        self.connection = duckdb.connect(str(self.file), config=duckdb_config(area, memory))
        self._idle: queue.SimpleQueue[duckdb.DuckDBPyConnection] = queue.SimpleQueue()
        try:
            self.connection.execute(f"ATTACH {quoted(str(demo_file))} AS {demo.SCHEMA} (READ_ONLY)")
            for _ in range(cursors):
                cursor = self.connection.cursor()
                for setting in _CURSOR_SETUP:
                    cursor.execute(setting)
                self._idle.put(cursor)
            self._lock_down()
        except BaseException:
            self.connection.close()
            raise
        if fresh:
            catalog.mark_created(self.file)
        self.busy = 0  # jobs running on it; counted by UserDatabases under its lock

    def _lock_down(self) -> None:
        """Only files/ may be read or written, and no setting may change afterwards; the order
        matters (each step is a setting)."""
        folder = quoted(str(self.files_dir) + "/")
        self.connection.execute(f"SET allowed_directories = [{folder}]")
        self.connection.execute("SET enable_external_access = false")
        self.connection.execute("SET lock_configuration = true")

    def needs_reopen(self, compactable: bool) -> bool:
        """Whether SQL detached a part of it, or its file is worth rewriting and `compactable`
        (checkpointed first: a dropped table's space shows as free only then)."""
        if not self.intact():
            return True
        if not compactable or self.file.stat().st_size < COMPACT_MIN_FREE:
            return False
        try:
            with self.cursor() as cursor:
                cursor.execute("CHECKPOINT")
                return is_wasteful(cursor, OWN_CATALOG)
        except duckdb.Error:  # a rewrite is worth trying only when the file can be read
            return False

    def intact(self) -> bool:
        """Whether the user's own and the demo database are still attached (SQL can detach
        them; only a reopen brings them back)."""
        with self.cursor() as cursor:
            attached = cursor.execute("SELECT database_name, path FROM duckdb_databases()")
            rows = set(attached.fetchall())
        return {(OWN_CATALOG, str(self.file)), (demo.SCHEMA, str(self.demo_file))} <= rows

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A new cursor on the user's database (no progress tracking), closed afterwards."""
        cursor = self.connection.cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    @contextmanager
    def job_cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor made ready for jobs, back to the state a new one has."""
        cursor = self._idle.get()
        try:
            _start_afresh(cursor)
            yield cursor
        finally:
            self._idle.put(cursor)

    def close(self) -> None:
        self.connection.close()  # closes its cursors too


def _start_afresh(cursor: duckdb.DuckDBPyConnection) -> None:
    """Undo what an earlier job left in the cursor's session: USE, temporary objects,
    variables."""
    cursor.execute(f"USE {OWN_CATALOG}.main")
    for kind, name in cursor.execute(_TEMPORARY_OBJECTS).fetchall():
        cursor.execute(f"DROP {kind} IF EXISTS temp.main.{quoted_name(name)}")
    for (name,) in cursor.execute("SELECT name FROM duckdb_variables()").fetchall():
        cursor.execute(f"RESET VARIABLE {quoted_name(name)}")


def is_wasteful(connection: duckdb.DuckDBPyConnection, catalog: str) -> bool:
    """Whether database `catalog` has COMPACT_MIN_FREE or more free, and half of its file."""
    free, total = connection.execute(
        "SELECT free_blocks * block_size, total_blocks * block_size"
        " FROM pragma_database_size() WHERE database_name = ?",
        [catalog],
    ).fetchone() or (0, 0)
    return free >= COMPACT_MIN_FREE and 2 * free >= total


def compact(file: Path, demo_file: Path, scratch: Path, memory: int | None) -> str | None:
    """Rewrite database `file` without its free space, through `scratch` (a new file on the same
    disk), if it is wasteful; DuckDB may use half of `memory`, as in UserDatabase. None when the
    file is fine now; else why the rewrite was not made (also said on stderr, the server's log):
    an error, a rewrite that differs from the file in its objects' definitions or its tables'
    row counts, or an earlier rewrite of the unchanged file that failed or was killed (a marker
    beside `scratch` remembers it). The file is then left as it was."""
    if not file.exists():
        return None
    failed, stamp = scratch.with_name(scratch.name + ".failed"), _stamp(file)
    if failed.exists() and failed.read_text() == stamp:
        return "an earlier rewrite of it failed or did not finish, and it has not changed since"
    problem: str | None = None
    try:
        with duckdb.connect(str(file), config=duckdb_config(file.parent, memory)) as old:
            if not is_wasteful(old, file.stem):
                return None
            for leftover in (scratch, _wal(scratch)):  # what a killed rewrite left
                leftover.unlink(missing_ok=True)
            failed.write_text(stamp)  # until the rewrite is done
            # the user's views may read demo tables: they are created anew in the rewrite
            old.execute(f"ATTACH {quoted(str(demo_file))} AS {demo.SCHEMA} (READ_ONLY)")
            old.execute(f"ATTACH {quoted(str(scratch))} AS compacted")
            old.execute(f"COPY FROM DATABASE {file.stem} TO compacted")
            same = _contents(old, file.stem) == _contents(old, "compacted")
            old.execute("DETACH compacted")
        if not same:
            problem = "its rewrite differs from it"
        elif _wal(file).exists():  # it would be replayed on the rewrite
            problem = "it has a write-ahead log"
        else:
            scratch.chmod(file.stat().st_mode & 0o777)
            os.replace(scratch, file)
            failed.unlink()
    except (duckdb.Error, OSError) as exc:
        problem = str(exc)
    finally:
        for leftover in (scratch, _wal(scratch)):
            with contextlib.suppress(OSError):
                leftover.unlink(missing_ok=True)
    if problem is not None:
        with contextlib.suppress(OSError):
            failed.write_text(_stamp(file))  # the file as this attempt left it
        print(f"{file.name} was not compacted: {problem}", file=sys.stderr)
    return problem


def _stamp(file: Path) -> str:
    """The size and modification time of `file`, to tell whether it changed."""
    status = file.stat()
    return f"{status.st_size} {status.st_mtime_ns}"


def _wal(file: Path) -> Path:
    return file.with_name(file.name + ".wal")


def _contents(connection: duckdb.DuckDBPyConnection, catalog: str) -> list[tuple | None]:
    """Every object of database `catalog`, and the row count of each of its tables."""
    objects = sorted(connection.execute(_INVENTORY, {"db": catalog}).fetchall())
    rows = [
        connection.execute(
            f"SELECT count(*) FROM {quoted_name(catalog)}.{quoted_name(schema)}.{quoted_name(name)}"
        ).fetchone()
        for kind, schema, name, _ in objects
        if kind == "table"
    ]
    return [*objects, *rows]


def keep_read_only(file: Path) -> duckdb.DuckDBPyConnection:
    """A connection holding `file` attached read-only for as long as it is open.

    A user's locked database may still open the files it had attached when it was locked, so a
    user who detaches the shared demo database could attach it again read-write; DuckDB refuses
    that (and a COPY over it) while another database of the process holds it attached, and
    another process cannot open it read-write while one holds it (a file lock).
    """
    keeper = duckdb.connect()
    try:
        keeper.execute(f"ATTACH {quoted(str(file))} AS {demo.SCHEMA} (READ_ONLY)")
    except BaseException:
        keeper.close()
        raise
    return keeper


class UserDatabases:
    """The users' databases of one SQL engine process: each opened on first use, all closed on
    close; each may use half of `memory` bytes (None: DuckDB's default)."""

    def __init__(self, layout: Layout, cursors: int, memory: int | None = None):
        self.layout = layout
        self._cursors = cursors
        self._memory = memory
        self._open: dict[str, UserDatabase] = {}
        self._lock = threading.Lock()
        self._running = False
        self._demo_keeper: duckdb.DuckDBPyConnection | None = None
        # Users whose database could not be compacted: not tried again while this process
        # lives, so a failing rewrite does not cost every job start a copy of the database
        # (the marker compact() leaves on disk cannot tell: the database's file changes).
        self._not_compactable: set[str] = set()

    def start(self) -> None:
        """Hold the demo database (created by the server, ensure_demo_file) read-only."""
        self._demo_keeper = keep_read_only(self.layout.demo_file)
        self._running = True

    def _ready(self, user: str) -> UserDatabase:
        """`user`'s open database (call with the lock held); reopened, when no job runs on it,
        if SQL detached a part of it or its file is worth rewriting."""
        if not self._running:
            raise ServiceError(MSG_NOT_OPEN)
        database = self._open.get(user)
        compactable = user not in self._not_compactable
        if database is not None and database.busy == 0 and database.needs_reopen(compactable):
            database.close()
            database = None
        if database is None:
            area = self.layout.user_area(user)
            try:
                file, scratch = database_file(area), self.layout.compact_file(user)
                problem = compactable and compact(
                    file, self.layout.demo_file, scratch, self._memory
                )
                if problem:
                    self._not_compactable.add(user)
                database = UserDatabase(area, self.layout.demo_file, self._cursors, self._memory)
            except duckdb.Error as exc:
                raise ServiceError(
                    self.layout.hidden(f"Your SQL database {file} cannot be opened: {exc}")
                ) from None
            self._open[user] = database
        return database

    @contextmanager
    def _using(self, user: str) -> Iterator[UserDatabase]:
        with self._lock:
            database = self._ready(user)
            database.busy += 1
        try:
            yield database
        finally:
            with self._lock:
                database.busy -= 1

    @contextmanager
    def job_session(self, user: str) -> Iterator[SqlSession]:
        """A cursor on `user`'s database for one job, with progress tracking."""
        with self._using(user) as database, database.job_cursor() as cursor:
            yield SqlSession(cursor, database.files_dir, database.memory)

    @contextmanager
    def metadata_cursor(self, user: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on `user`'s database for reading its catalog."""
        with self._using(user) as database, database.cursor() as cursor:
            yield cursor

    def close(self) -> None:
        with self._lock:
            self._running = False
            for database in self._open.values():
                database.close()
            self._open.clear()
            if self._demo_keeper is not None:
                self._demo_keeper.close()
                self._demo_keeper = None
