"""Each user's global variables, kept in SQLite in the data dir (docs/linkis-rest.md,
"Global variables").

A user's global variables fill `${name}` in every job of that user where the job itself does
not give the name (`Entrance` merges them under `params.variable`). Saving replaces the whole
list, as Linkis' `variable/saveGlobalVariable` does.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from .errors import OPERATION_FAILED, ServiceError

# Linkis' columns: linkis_ps_variable_key.key varchar(50), ..._key_user.value varchar(200).
MAX_KEY_CHARS = 50
MAX_VALUE_CHARS = 200
MSG_EMPTY = f"{OPERATION_FAILED}VariableException: Key or value cannot be empty"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS global_variables (
    key_id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_name TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    UNIQUE (user_name, key)
);
"""


class GlobalVariables:
    """Thread-safe per-user global variables in one SQLite file (mode 0600)."""

    def __init__(self, path: Path):
        self._lock = threading.Lock()
        path.touch(mode=0o600, exist_ok=True)
        os.chmod(path, 0o600)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def as_dict(self, user: str) -> dict[str, str]:
        """`user`'s variables, name -> value, in the order they were first saved."""
        return {row["key"]: row["value"] for row in self._rows(user)}

    def listing(self, user: str) -> dict:
        """variable/listGlobalVariable: {"globalVariables": [{keyID, key, valueID, value}]}."""
        items = [
            {
                "keyID": row["key_id"],
                "key": row["key"],
                "valueID": row["key_id"],
                "value": row["value"],
            }
            for row in self._rows(user)
        ]
        return {"globalVariables": items}

    def save(self, user: str, body: dict) -> dict:
        """variable/saveGlobalVariable: `body["globalVariables"]` becomes `user`'s whole list.

        Names already stored keep their keyID; names not in the list are deleted.
        """
        wanted = _parse_items(body.get("globalVariables"))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for key, value in wanted.items():
                    self._db.execute(
                        "INSERT INTO global_variables (user_name, key, value) VALUES (?, ?, ?)"
                        " ON CONFLICT (user_name, key) DO UPDATE SET value = excluded.value",
                        (user, key, value),
                    )
                marks = ",".join("?" * len(wanted))
                self._db.execute(
                    f"DELETE FROM global_variables WHERE user_name = ? AND key NOT IN ({marks})",
                    (user, *wanted),
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return {}

    def _rows(self, user: str) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(
                "SELECT key_id, key, value FROM global_variables WHERE user_name = ?"
                " ORDER BY key_id",
                (user,),
            ).fetchall()


def _parse_items(items: object) -> dict[str, str]:
    """The request's list as name -> value (a repeated name: the last one counts)."""
    if not isinstance(items, list):
        raise ServiceError(
            'globalVariables must be an array of {"key": ..., "value": ...} objects '
            "(an empty array deletes every global variable)"
        )
    wanted: dict[str, str] = {}
    for item in items:
        if not isinstance(item, dict):
            raise ServiceError(
                "each item of globalVariables must be an object with key and value, "
                f"got {item!r:.60}"
            )
        key, value = _text(item.get("key")), _text(item.get("value"))
        if not key.strip() or not value.strip():
            raise ServiceError(MSG_EMPTY)
        if len(key) > MAX_KEY_CHARS or len(value) > MAX_VALUE_CHARS:
            raise ServiceError(
                f"the global variable {key[:MAX_KEY_CHARS]!r} is too long: names hold at most "
                f"{MAX_KEY_CHARS} characters and values at most {MAX_VALUE_CHARS}"
            )
        wanted[key] = value
    return wanted


def _text(value: object) -> str:
    """A key or value as Linkis' Gson reads it into a String field (numbers become text)."""
    if value is None or isinstance(value, (dict, list)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
