"""Constants of the Linkis REST contract, shared by the client and the embedded server.

Only names and values that travel over the wire live here, and the `connection.json` rendezvous
through which clients find the embedded server; neither side's internals do.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

API_PREFIX = "/api/rest_j/v1"

SESSION_COOKIE = "linkis_user_session_ticket_id_v1"
DEVICE_COOKIE = "linkis_device"  # the embedded server's; a client keeps it across logouts
TOKEN_CODE_HEADER = "Token-Code"
TOKEN_USER_HEADER = "Token-User"

# Envelope status -> HTTP code (Message.messageToHttpStatus).
STATUS_NOT_LOGGED_IN = -1
STATUS_OK = 0
STATUS_ERROR = 1
STATUS_VALIDATION = 2
STATUS_NO_PERMISSION = 3
STATUS_WARNING = 4
HTTP_CODE_FOR_STATUS = {
    STATUS_NOT_LOGGED_IN: 401,
    STATUS_OK: 200,
    STATUS_ERROR: 400,
    STATUS_VALIDATION: 412,
    STATUS_NO_PERMISSION: 403,
    STATUS_WARNING: 206,
}

# Job states, in the order transitions may take (SchedulerEventState).
INITED = "Inited"
WAIT_FOR_RETRY = "WaitForRetry"
SCHEDULED = "Scheduled"
RUNNING = "Running"
SUCCEED = "Succeed"
FAILED = "Failed"
CANCELLED = "Cancelled"
TIMEOUT = "Timeout"
STATES = (INITED, WAIT_FOR_RETRY, SCHEDULED, RUNNING, SUCCEED, FAILED, CANCELLED, TIMEOUT)
TERMINAL_STATES = frozenset({SUCCEED, FAILED, CANCELLED, TIMEOUT})
FAILED_STATES = frozenset({FAILED, CANCELLED, TIMEOUT})

# The `log` array of entrance/{id}/log and filesystem/openLog.
LOG_LEVELS = ("error", "warn", "info", "all")

# Result-set type codes (ResultSetFactory) and the null marker in .dolphin files.
RESULT_TEXT = "1"
RESULT_TABLE = "2"
RESULT_IO = "3"
RESULT_PICTURE = "4"
RESULT_HTML = "5"
NULL_MARKER = "LINKIS_NULL"

OPEN_FILE_DEFAULT_PAGE_SIZE = 5000
OPEN_FILE_MAX_PAGE_SIZE = 100000
LOG_DEFAULT_SIZE = 100
LOG_NEGATIVE_SIZE = 10000

DEFAULT_CREATOR = "IDE"

# Run types whose language is SQL (CodeAndRunTypeUtils): `${var}` quoting and the SQL limit apply.
SQL_RUN_TYPES = frozenset({"sql", "hql", "jdbc", "hive", "psql", "fql", "tsql", "nebula", "ngql"})
# Run types whose language is shell (CodeAndRunTypeUtils).
SHELL_RUN_TYPES = frozenset({"sh", "shell"})
# The entrance's SQL-limit interceptor caps row-returning SQL from this creator at this many rows.
SQL_LIMIT_CREATOR = "IDE"
SQL_DEFAULT_LIMIT = 5000
ENTRANCE_APPLICATION = "linkis-cg-entrance"
EXEC_ID_PREFIX = "exec_id"

# Variables Linkis fills by itself (VariableUtils, docs/linkis-rest.md "Variables"): the user
# names and the run_date family, each date also in a `_std` form with dashes.
_DATE_VARIABLES = (
    "run_date", "run_today", "run_mon", "run_month_begin", "run_month_end", "run_quarter_begin",
    "run_quarter_end", "run_half_year_begin", "run_half_year_end", "run_year_begin",
    "run_year_end", "run_month_now_begin", "run_month_now_end", "run_today_h", "run_today_hour",
)  # fmt: skip
BUILTIN_VARIABLES = frozenset(
    {
        "user",
        "execute_user",
        "submit_user",
        *_DATE_VARIABLES,
        *(f"{n}_std" for n in _DATE_VARIABLES),
    }
)

# Engine versions a bare engine type expands to (Linkis 1.7.0 LabelCommonConfig).
DEFAULT_ENGINE_VERSIONS = {
    "spark": "3.2.1",
    "hive": "3.1.3",
    "python": "python2",
    "shell": "1",
    "jdbc": "4",
    "presto": "0.234",
    "trino": "371",
    "flink": "1.16.2",
    "repl": "1",
    "pipeline": "1",
    "io_file": "1.0",
    "duckdb": "1",
}

# Linkis messages that clients recognise by text.
MSG_ALREADY_LOGGED_IN = "already logged in, please log out before signing in"
# The entrance's answer to `log` once it no longer holds the job: read filesystem/openLog instead.
MSG_JOB_ENDED_PREFIX = "The job you just executed has ended"

# A queued job's position, as the entrance writes it into the job log (the REST contract has no
# field for it); `{ahead}` is the number of jobs ahead in the queue.
QUEUE_POSITION_LOG = (
    "Your job is Scheduled. Please wait it to run. {ahead} job(s) ahead of you in the queue."
)
QUEUE_POSITION_PATTERN = r"(\d+) job\(s\) ahead of you in the queue"

# How clients find the embedded server: its data directory holds `connection.json` (written by
# the server, read by clients) and the server's own log.
DATA_DIR_NAME = "linkis-kernel"
CONNECTION_FILE = "connection.json"
CONNECTION_KEYS = ("url", "user", "password", "token", "pid")
SERVER_LOG_FILE = "server.log"


def default_data_dir() -> Path:
    """Where the embedded server keeps its data: `<jupyter data dir>/linkis-kernel`."""
    from jupyter_core.paths import jupyter_data_dir  # only needed to find the embedded server

    return Path(jupyter_data_dir()) / DATA_DIR_NAME


def read_connection(data_dir: Path) -> dict[str, Any] | None:
    """The data directory's `connection.json`, or None when absent or unreadable."""
    try:
        conn = json.loads((data_dir / CONNECTION_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(conn, dict) or any(key not in conn for key in CONNECTION_KEYS):
        return None
    return conn


def server_answers(url: str, timeout: float = 2.0) -> bool:
    """Whether a Linkis-compatible server answers at `url` (it needs no login for publicKey)."""
    import requests  # only needed to find the embedded server

    try:
        response = requests.get(f"{url}{API_PREFIX}/user/publicKey", timeout=timeout)
        return response.json().get("status") == 0
    except (requests.RequestException, ValueError, AttributeError):
        return False
