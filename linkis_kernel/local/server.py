"""`linkis-kernel serve`: run the embedded Linkis-compatible server.

The server runs with umask 077: every file in the data directory is 0600 and every folder 0700
(files and folders at its top are set so at start, whoever created them). Its files:

* `credentials.json` (0600): the default user (the OS user), its password and token, and the
  key that signs device cookies (devices.py); generated on first start and kept, so they are
  stable across restarts (a file without the key gets one added).
* `users.json` (optional, written by hand; set to 0600 at start): extra users, a JSON array of
  `{"name": ..., "password": ..., "token": ...}` (`token` optional). Used e.g. to test that users
  cannot see each other's jobs.
* `connection.json` (0600, while the server runs): `{"url", "user", "password", "token", "pid"}`
  for clients; removed on a clean shutdown.
* `server.log`: the server's log (never holds passwords, tokens or session tickets).
* `engines.sqlite`: every engine (EngineConn) started, for `linkisManager/ecinfo/ecrHistoryList`;
  `engines.pids`: the process ids of the live ones and of running shell jobs, so a restart
  after a crash ends them.
* `users/<user>/`: a user's own DuckDB database and `files/`, the folder their SQL may use and
  the only one their sandboxed jobs may write (userdb.py, sandbox.py).
* `spark/demo/`: the demo tables as Parquet, written when the first real Spark engine starts.

Engines: `--engine-idle-timeout` (default 30m) ends idle Python engines,
`--max-engines-per-user` (default 10) caps the engines of one user, and `--engine-kill-grace`
(default 5 s, 20 s for Spark engines) is how long a killed job may take to stop before its
engine is ended. `--sandbox auto` (default) runs Python, PySpark and Shell jobs in a process
sandbox (bwrap, sandbox.py) when the server has more than one user; `always` also with one
user; `never` only with one user. `--engine-memory` caps the memory of every engine process
(each user's SQL engine, Python and PySpark engines, shell jobs); by default a quarter of the
machine's memory when the server has more than one user, no cap with one. `--disk-quota` caps
the disk space of each user's files, results and logs (quota.py): `auto` (default) 5 GB, at
most a quarter of the data dir's disk, when the server has more than one user, none with one.
`--max-processes-per-user` (default 4096) caps the processes and threads of each user's
sandboxed jobs together, where the server can create cgroups (cgroups.py), and `--user-memory`
their memory together (shared memory and files in their private /tmp included), where the
cgroups' memory controller can be used too: `auto` (default) what `--engine-memory` gives each
engine process, `none` no limit, or a size; their groups are removed when it stops.

Environment: `LINKIS_LOCAL_SESSION_TIMEOUT` sets the idle timeout of login sessions in seconds
(default 3600); `LINKIS_LOCAL_BWRAP` the bwrap program of the sandbox (default: bwrap on PATH);
`LINKIS_KERNEL_SPARK` (auto, pyspark, duckdb) which Spark engine spark runs (sparkdata.py),
`LINKIS_KERNEL_SPARK_UI=1` turns the Spark UI on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import logging
import logging.handlers
import os
import signal
import socket
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from ..wire import CONNECTION_FILE, default_data_dir, read_connection, server_answers
from ..wire import SERVER_LOG_FILE as LOG_FILE
from .app import MAX_BODY_BYTES, make_app
from .auth import DEFAULT_SESSION_TIMEOUT, AuthStore, User, new_secret
from .engineconns import EngineSettings
from .launcher import write_private_json
from .quota import format_size, parse_size
from .sandbox import AUTO, MAX_PROCESSES, NEVER, Sandboxing
from .sparkdata import SparkModeError, spark_mode

log = logging.getLogger("linkis_kernel.local")

CREDENTIALS_FILE = "credentials.json"
DEVICE_KEY_FIELD = "device_key"
USERS_FILE = "users.json"
SESSION_TIMEOUT_ENV = "LINKIS_LOCAL_SESSION_TIMEOUT"
SHUTDOWN_GRACE = 2.0  # seconds open connections get to finish on shutdown
LOG_MAX_BYTES = 5 * 1024 * 1024
MIN_ENGINE_MEMORY = 256 << 20
MIN_PROCESSES_PER_USER = 16  # bwrap, a job and the few processes any job needs
LOG_BACKUPS = 2
# A user's SQL database and files plus months of results and logs (an IDE result holds at most
# 5,000 rows) fit in 5 GB; an owner who wants more for everyone says so with --disk-quota.
DEFAULT_DISK_QUOTA = 5 << 30


class StartupError(Exception):
    """A problem that keeps the server from starting; its text says what to do."""


def serve_main(args: argparse.Namespace) -> int:
    """Run the server until SIGINT/SIGTERM; returns the process exit status."""
    try:
        return _serve(args)
    except StartupError as err:
        print(f"linkis-kernel serve: {err}", file=sys.stderr, flush=True)
        return 1


def _serve(args: argparse.Namespace) -> int:
    # Everything the server and its engines create is its user's alone: files 0600, folders 0700.
    os.umask(0o077)
    data_dir = Path(args.data_dir).expanduser().resolve() if args.data_dir else default_data_dir()
    _prepare_data_dir(data_dir)
    _setup_logging(data_dir)
    if args.workers < 1:
        raise StartupError(f"--workers must be at least 1, got {args.workers}.")
    engines = _engine_settings(args)
    _refuse_second_server(data_dir)
    default_user, password, token, device_key = _default_credentials(data_dir)
    users = [User.create(default_user, password, token, is_admin=True), *_extra_users(data_dir)]
    memory = _engine_memory(getattr(args, "engine_memory", AUTO), len(users))
    user_memory = _user_memory(str(getattr(args, "user_memory", AUTO)), memory)
    sandboxing = _sandboxing(args, len(users), default_user, data_dir, user_memory)
    try:
        engines = replace(engines, sandboxing=sandboxing, memory=memory)
        disk_quota = _disk_quota(args, len(users), data_dir)
        credentials = {"password": password, "token": token}
        return _run(args, data_dir, engines, users, credentials, device_key, disk_quota)
    finally:
        sandboxing.close()  # after the service ended every engine process


def _run(
    args: argparse.Namespace,
    data_dir: Path,
    engines: EngineSettings,
    users: list[User],
    credentials: dict[str, str],
    device_key: str,
    disk_quota: int,
) -> int:
    """Serve on the address `args` give until a signal comes, then end every job and engine."""
    sockets = _bind(args.host, args.port)
    port = sockets[0].getsockname()[1]
    url = f"http://{_url_host(args.host)}:{port}"
    auth = AuthStore(
        users,
        session_timeout=_session_timeout(),
        where=(args.host, port),
        device_key=device_key.encode(),
    )

    from .service import LocalLinkis

    service = LocalLinkis(
        data_dir,
        workers=args.workers,
        instance=f"{args.host}:{port}",
        engines=engines,
        disk_quota=disk_quota,
    )
    try:
        service.start()
    except Exception as err:
        log.exception("could not start the services")
        raise StartupError(
            f"cannot open the server's data in {data_dir} ({type(err).__name__}: {err}); "
            "is another linkis-kernel serve using it? Stop it or pass another --data-dir."
        ) from None
    conn: dict[str, Any] = {"url": url, "user": users[0].name, **credentials, "pid": os.getpid()}
    try:
        asyncio.run(_run_until_signal(make_app(service, auth), sockets, data_dir, conn))
    finally:
        (data_dir / CONNECTION_FILE).unlink(missing_ok=True)
        service.close()
        log.info("server stopped")
    return 0


async def _run_until_signal(
    app: Any, sockets: list[socket.socket], data_dir: Path, conn: dict[str, Any]
) -> None:
    server = HTTPServer(app, max_body_size=4 * MAX_BODY_BYTES)
    server.add_sockets(sockets)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):  # before anyone learns the server is up
        loop.add_signal_handler(signum, stop.set)
    write_private_json(data_dir / CONNECTION_FILE, conn)
    line = f"Linkis-compatible server at {conn['url']} (data dir {data_dir}, user {conn['user']})"
    print(line, flush=True)
    log.info("%s, pid %d", line, conn["pid"])
    await stop.wait()
    log.info("shutting down")
    server.stop()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(server.close_all_connections(), SHUTDOWN_GRACE)


_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float | None:
    """Seconds in `90`, `90s`, `30m` or `2h`; None when the text is not such a duration."""
    text = text.strip().lower()
    factor = _DURATION_UNITS.get(text[-1:]) if text else None
    number = text[:-1] if factor is not None else text
    try:
        value = float(number) * (factor or 1.0)
    except ValueError:
        return None
    return value if value > 0 else None


def _engine_settings(args: argparse.Namespace) -> EngineSettings:
    idle = parse_duration(str(args.engine_idle_timeout))
    if idle is None:
        raise StartupError(
            f"--engine-idle-timeout must be a positive time such as 90s, 30m or 2h, got "
            f"{args.engine_idle_timeout!r}."
        )
    if args.max_engines_per_user < 1:
        raise StartupError(
            f"--max-engines-per-user must be at least 1, got {args.max_engines_per_user}."
        )
    grace = getattr(args, "engine_kill_grace", None)
    if grace is not None and not grace > 0:
        raise StartupError(
            f"--engine-kill-grace must be a positive number of seconds, got {grace}."
        )
    try:
        spark = spark_mode()
    except SparkModeError as err:
        raise StartupError(str(err)) from None
    return EngineSettings(
        idle_timeout=idle, max_per_user=args.max_engines_per_user, kill_grace=grace, spark=spark
    )


def _engine_memory(text: str, users: int) -> int | None:
    """`--engine-memory`: the bytes each engine process may use, None for no cap; `auto` is a
    quarter of the machine's memory with several users, no cap with one."""
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    auto = None if users == 1 else max(physical // 4, MIN_ENGINE_MEMORY)
    return _memory_option("--engine-memory", text, auto, "512MB or 4GB, or auto")


def _user_memory(text: str, engine_memory: int | None) -> int | None:
    """`--user-memory`: the bytes a user's processes may use together, where cgroups allow;
    None for no limit. `auto` is what each engine process may use (`engine_memory`)."""
    return _memory_option(
        "--user-memory", text, engine_memory,
        "2GB or 8GB, or auto (what --engine-memory gives each engine process)",
    )  # fmt: skip


def _memory_option(option: str, text: str, auto: int | None, examples: str) -> int | None:
    """The bytes a memory option gives: `none` None, `auto` `auto`, else a size of at least
    MIN_ENGINE_MEMORY (StartupError otherwise)."""
    choice = text.strip().lower()
    if choice == "none":
        return None
    if choice == AUTO:
        return auto
    size = parse_size(choice)
    if size is None or size < MIN_ENGINE_MEMORY:
        raise StartupError(
            f"{option} must be a size of at least 256MB such as {examples}, or none, got {text!r}."
        )
    return size


def _sandboxing(
    args: argparse.Namespace, users: int, owner: str, data_dir: Path, user_memory: int | None
) -> Sandboxing:
    """`--sandbox`: whether Python, PySpark and Shell jobs run in the process sandbox;
    `--max-processes-per-user` and `--user-memory` (resolved: `user_memory`): the caps of each
    user's processes and their memory there, where cgroups allow."""
    mode = getattr(args, "sandbox", AUTO)
    if mode == NEVER and users > 1:
        raise StartupError(
            f"--sandbox never is only allowed with one user, and this server has {users} "
            f"(users.json): use --sandbox auto, or remove {data_dir / USERS_FILE}."
        )
    cap = getattr(args, "max_processes_per_user", None)
    cap = MAX_PROCESSES if cap is None else cap
    if cap < MIN_PROCESSES_PER_USER:
        raise StartupError(
            f"--max-processes-per-user must be at least {MIN_PROCESSES_PER_USER}, got {cap}."
        )
    rule = Sandboxing.decide(mode, users, owner, data_dir).with_user_cgroups(cap, user_memory)
    for note in (rule.startup_note(), rule.process_cap_note()):
        if note is not None:
            log.log(*note)
    return rule


def _disk_quota(args: argparse.Namespace, users: int, data_dir: Path) -> int:
    """`--disk-quota`: the bytes each user may take in the data dir (0: no quota)."""
    text = str(getattr(args, "disk_quota", AUTO))
    if text.strip().lower() == AUTO:
        quota = _default_disk_quota(data_dir) if users > 1 else 0
    else:
        size = parse_size(text)
        if size is None:
            raise StartupError(
                "--disk-quota must be a size such as 500MB or 2GB (0 or none for no quota, "
                f"auto for the default), got {text!r}."
            )
        quota = size
    log.info("disk quota: %s", f"{format_size(quota)} per user" if quota else "none")
    return quota


def _default_disk_quota(data_dir: Path) -> int:
    """5 GB per user, but at most a quarter of the disk that holds the data dir."""
    disk = os.statvfs(data_dir)
    return min(DEFAULT_DISK_QUOTA, disk.f_blocks * disk.f_frsize // 4)


def _prepare_data_dir(data_dir: Path) -> None:
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        data_dir.chmod(0o700)
        _tighten_modes(data_dir)
        probe = data_dir / f".probe.{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise StartupError(
            f"cannot use {data_dir} as the data dir ({err.strerror}); "
            "pass --data-dir with a directory you can write to."
        ) from None


def _tighten_modes(data_dir: Path) -> None:
    """Files 0600 and folders 0700 at the top of the data dir: users.json written by hand, a
    server.log its launcher created, and what an older version left more open."""
    for entry in data_dir.iterdir():
        if entry.is_symlink():
            continue
        with contextlib.suppress(OSError):  # not ours: leave it to its owner
            entry.chmod(0o700 if entry.is_dir() else 0o600)


def _setup_logging(data_dir: Path) -> None:
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    log_path = data_dir / LOG_FILE
    if not _stderr_is(log_path):  # a detached server's stderr already goes to server.log
        handlers.append(
            logging.handlers.RotatingFileHandler(
                log_path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
            )
        )
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)


def _stderr_is(path: Path) -> bool:
    try:
        err, target = os.fstat(sys.stderr.fileno()), path.stat()
    except (OSError, ValueError, AttributeError):
        return False
    return (err.st_dev, err.st_ino) == (target.st_dev, target.st_ino)


def _refuse_second_server(data_dir: Path) -> None:
    conn = read_connection(data_dir)
    if conn is not None and conn["pid"] != os.getpid() and server_answers(conn["url"]):
        raise StartupError(
            f"a server for {data_dir} already runs at {conn['url']} (pid {conn['pid']}); "
            "use it, stop it first, or pass another --data-dir."
        )


def _default_credentials(data_dir: Path) -> tuple[str, str, str, str]:
    """The OS user's password and token, and the device cookie key, generated once and kept in
    the data dir."""
    path = data_dir / CREDENTIALS_FILE
    stored = _stored_credentials(path)
    if stored is None:
        stored = {"user": getpass.getuser(), "password": new_secret(), "token": new_secret()}
    device_key = stored.get(DEVICE_KEY_FIELD)
    if not device_key or not isinstance(device_key, str):  # a file of an older version
        stored[DEVICE_KEY_FIELD] = new_secret()
        write_private_json(path, stored)
    return stored["user"], stored["password"], stored["token"], stored[DEVICE_KEY_FIELD]


def _stored_credentials(path: Path) -> dict[str, str] | None:
    """credentials.json's fields, or None when there is no such file yet."""
    try:
        stored = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        stored = None
    fields = ("user", "password", "token")
    if not isinstance(stored, dict) or not all(isinstance(stored.get(f), str) for f in fields):
        raise StartupError(
            f"{path} is unreadable or damaged; delete it to get a new password and token."
        )
    return stored


def _extra_users(data_dir: Path) -> list[User]:
    path = data_dir / USERS_FILE
    if not path.exists():
        return []
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise StartupError(f"{path} is not valid JSON ({err}); fix or remove it.") from None
    if not isinstance(entries, list):
        raise StartupError(f"{path} must hold a JSON array of {{name, password, token}} objects.")
    users = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("password"):
            raise StartupError(f"{path}: entry {number} needs a non-empty name and password.")
        users.append(User.create(str(entry["name"]), str(entry["password"]), entry.get("token")))
    return users


def _session_timeout() -> float:
    text = os.environ.get(SESSION_TIMEOUT_ENV)
    if not text:
        return DEFAULT_SESSION_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise StartupError(f"{SESSION_TIMEOUT_ENV} must be a positive number of seconds.")
    return value


def _bind(host: str, port: int) -> list[socket.socket]:
    try:
        return bind_sockets(port, address=host)
    except OSError as err:
        raise StartupError(
            f"cannot listen on {host}:{port} ({err.strerror}); "
            "pick another --port (0 takes any free one)."
        ) from None


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0", "::"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
