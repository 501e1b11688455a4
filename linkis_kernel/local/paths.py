"""Where the embedded server keeps things under its data dir, and confining client paths."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..wire import STATUS_NO_PERMISSION
from .errors import ServiceError

FILE_SCHEME = "file://"
# Top-level folders holding per-user trees: <area>/<yyyy-MM-dd>/<creator>/<user>/...
USER_AREAS = ("result", "log")
_OWNER_DEPTH = 4
# User names that can be a folder name as they are; others get a folder named by their hash.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@-]{0,63}")


def schema_path(path: Path) -> str:
    """`file:///abs/path`, as Linkis' FsPath.getSchemaPath writes local paths."""
    return FILE_SCHEME + str(path)


def local_path(schema: str) -> Path:
    """The local Path of a `file://` path that this server wrote (a log or result location)."""
    return Path(schema.removeprefix(FILE_SCHEME))


@dataclass(frozen=True)
class Layout:
    """The files and folders under one data dir."""

    root: Path

    @property
    def legacy_duckdb_file(self) -> Path:
        """The one database all users shared before each got their own; left as it was."""
        return self.root / "duckdb" / "linkis.duckdb"

    @property
    def demo_file(self) -> Path:
        """The shared demo schema, attached read-only to every user's SQL database."""
        return self.root / "sql" / "demo.duckdb"

    def hidden(self, text: str) -> str:
        """`text` with the data dir (as given and as resolved) named `<data dir>`: error texts
        never name the server's paths."""
        for folder in {str(self.root), os.path.realpath(self.root)}:
            text = text.replace(folder, "<data dir>")
        return text

    def user_area(self, user: str) -> Path:
        """`user`'s own folder: their DuckDB database and the `files/` their SQL may use."""
        return self.root / "users" / _folder_name(user)

    def compact_file(self, user: str) -> Path:
        """Where `user`'s database is rewritten without its free space: beside the demo, on the
        same disk as their area but outside it (and so outside their disk quota)."""
        return self.root / "sql" / f"{_folder_name(user)}.compacting.duckdb"

    @property
    def spark_dir(self) -> Path:
        """Data every user's Spark engine reads (the demo tables as Parquet): shared, read-only
        in the process sandbox."""
        return self.root / "spark"

    @property
    def history_file(self) -> Path:
        return self.root / "history.sqlite"

    @property
    def global_variables_file(self) -> Path:
        return self.root / "variables.sqlite"

    @property
    def scratch_dir(self) -> Path:
        return self.root / "tmp"

    def user_files(self, user: str) -> Path:
        """`user`'s own files: what their SQL may read and write, and their sandboxed jobs'
        writable HOME, so a file one job writes is there for the next, SQL or not."""
        return self.user_area(user) / "files"

    def log_file(self, day: str, creator: str, user: str, task_id: int) -> Path:
        return self.root / "log" / day / creator / user / f"{task_id}.log"

    def result_dir(self, day: str, creator: str, user: str, task_id: int) -> Path:
        return self.root / "result" / day / creator / user / str(task_id)

    def user_path(self, user: str, raw: str | None) -> Path:
        """The local Path a client path names, if it lies in `user`'s own area.

        Accepts `file:///abs/...` or `/abs/...`. Raises 80004 for an empty path and
        status 3 for anything outside the user's folders (other users, `..`, symlinks out).
        """
        if not raw:
            raise ServiceError("The path:null is empty(路径:null 为空)!", code=80004)
        text = raw[len(FILE_SCHEME) :] if raw.startswith(FILE_SCHEME) else raw
        if "\x00" in text:
            raise _outside(raw, "it contains a NUL character")
        if "://" in text or not text.startswith("/"):
            raise _outside(raw, "only absolute local paths (file:///...) exist on this server")
        if ".." in Path(text).parts:
            raise _outside(raw, "'..' is not allowed in paths")
        real = Path(os.path.realpath(text))
        root = Path(os.path.realpath(self.root))
        if not real.is_relative_to(root):
            raise _outside(raw, "it is not in the server's result or log folders")
        parts = real.relative_to(root).parts
        if len(parts) < _OWNER_DEPTH or parts[0] not in USER_AREAS:
            raise _outside(raw, "only the result and log files job history gives you can be read")
        owner = parts[_OWNER_DEPTH - 1]
        if owner != user:
            raise ServiceError(
                f"Path {raw} is not one of your files; you can only read your own files",
                status=STATUS_NO_PERMISSION,
            )
        return real


def _folder_name(user: str) -> str:
    if _PLAIN_NAME.fullmatch(user) and user.strip("."):
        return user
    return "u-" + hashlib.sha256(user.encode("utf-8")).hexdigest()[:16]


def _outside(raw: str, why: str) -> ServiceError:
    return ServiceError(f"Path {raw} is outside your area: {why}", status=STATUS_NO_PERMISSION)
