"""The `%linkis <subcommand>` handlers: connect, status, jobs, attach, kill, log, result,
download, engines, refresh and help.

Each handler takes the arguments `options.parse_line` parsed; `LinkisMagics.run_subcommand`
picks the handler and turns Linkis errors into short error outputs.
"""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..client import LOG
from ..display import LinkisCellError
from ..display.card import format_duration
from ..options import CellOptions, line_help
from ..wire import STATES, SUCCEED
from .errors import MAGIC_COMMANDS, magic_command

if TYPE_CHECKING:
    import pandas as pd

    from ..client import EngineInfo
    from ..job import Job
    from .magic import LinkisMagics

STATE_BY_NAME = {state.lower(): state for state in STATES}
JOB_COLUMNS = ["task_id", "state", "engine", "run_type", "created", "duration_s", "code"]
ENGINE_COLUMNS = ["engine", "creator", "status", "started", "idle_for", "memory_mb"]

Handler = Callable[[argparse.Namespace], Any]


class Subcommands:
    """The subcommands of one LinkisMagics: they share its connection, settings and jobs."""

    def __init__(self, magics: LinkisMagics):
        self.magics = magics

    def handler(self, command: str) -> Handler:
        """The handler of a subcommand that `options.parse_line` accepted."""
        handlers: dict[str, Handler] = {
            "connect": self.connect,
            "status": self.status,
            "jobs": self.jobs,
            "attach": self.attach,
            "kill": self.kill,
            "log": self.log,
            "result": self.result,
            "download": self.download,
            "engines": self.engines,
            "refresh": self.refresh,
            "help": self.help,
        }
        return handlers[command]

    def _job(self, job_id: str) -> Job:
        return self.magics.connection().job(job_id)

    def connect(self, args: argparse.Namespace) -> None:
        """Point the magics at a gateway (asking for a password when nothing else logs in)."""
        magics = self.magics
        with magics.hold_trait_notifications():  # a value the settings refuse changes none
            magics.url = args.url or magics.url
            magics.user = args.user or magics.user
            magics.token_env = args.token_env or magics.token_env
        url = magics.url or os.environ.get("LINKIS_URL")
        user = magics.user or os.environ.get("LINKIS_USER")
        has_token = bool(magics.token_env and os.environ.get(magics.token_env))
        password = None
        if url and user and not has_token and not os.environ.get("LINKIS_PASSWORD"):
            password = getpass.getpass(f"Linkis password for {user}: ")
        magics.reconnect(password)
        self.status(args)

    def status(self, args: argparse.Namespace) -> None:
        client = self.magics.connection()
        if client.auth_kind != "none":
            client.login()  # fails here, with the reason, when the credentials are refused
        print(f"Connected to {client.url} as {client.user} ({client.auth_kind} auth).")

    def jobs(self, args: argparse.Namespace) -> pd.DataFrame:
        import pandas as pd

        statuses = [STATE_BY_NAME[name] for name in args.status] if args.status else None
        page = self.magics.connection().jobhistory_list(status=statuses, page_size=max(1, args.n))
        rows = [
            {
                "task_id": task.task_id,
                "state": task.status,
                "engine": task.engine_type,
                "run_type": task.run_type,
                "created": task.created_time,
                "duration_s": None if task.cost_time_ms is None else task.cost_time_ms / 1000,
                "code": (task.execution_code or "").strip().split("\n", 1)[0],
            }
            for task in page.tasks
        ]
        return pd.DataFrame(rows, columns=JOB_COLUMNS)

    def attach(self, args: argparse.Namespace) -> Any:
        magics = self.magics
        job = self._job(args.id)
        magics.pace(job)
        # Ctrl-C kills only a job this shell started; others are just no longer followed.
        owned = any(started.task_id == job.task_id for started in magics.jobs)
        return magics.follow(
            job, CellOptions(), kill_on_interrupt=magics.kill_on_interrupt and owned
        )

    def kill(self, args: argparse.Namespace) -> None:
        print(self._job(args.id).kill().describe(MAGIC_COMMANDS))

    def log(self, args: argparse.Namespace) -> None:
        lines = self._job(args.id).log(level=args.level, tail=args.tail)
        print("\n".join(lines) if lines else f"(no {args.level} lines)")

    def result(self, args: argparse.Namespace) -> Any:
        magics = self.magics
        job = self._job(args.id)
        if job.state != SUCCEED:
            raise LinkisCellError(
                f"Linkis job {job.task_id} is {job.state}, so it has no result to show.",
                f"See why with `{magic_command(LOG, job.task_id)} --level error`.",
            )
        results = job.results(limit=magics.fetch_limit_for(args.limit))
        value = magics.show_results(results, magics.limits_for(args.limit))
        if args.output:
            magics.user_ns[args.output] = value
        return value

    def download(self, args: argparse.Namespace) -> None:
        path = self._job(args.id).download(args.path, format=args.format)
        print(f"Saved the result of Linkis job {args.id} to {path}.")

    def engines(self, args: argparse.Namespace) -> pd.DataFrame | None:
        """The user's engines as a table; `--kill ID` / `--all` end them."""
        import pandas as pd

        client = self.magics.connection()
        listed = client.engines()
        if args.kill or args.all:
            chosen = listed if args.all else [_engine_named(listed, args.kill)]
            for engine in chosen:
                client.kill_engine(engine.instance)
            names = ", ".join(engine.instance for engine in chosen) or "none were running"
            print(f"Ended {len(chosen)} engine(s): {names}. The next job starts a new one.")
            return None
        rows = [
            {
                "engine": engine.instance,
                "creator": engine.creator,
                "status": engine.status,
                "started": engine.started,
                "idle_for": None if engine.idle_seconds is None
                else format_duration(engine.idle_seconds),
                "memory_mb": None if engine.memory_bytes is None
                else round(engine.memory_bytes / 2**20, 1),
            }
            for engine in listed
        ]  # fmt: skip
        return pd.DataFrame(rows, columns=ENGINE_COLUMNS)

    def refresh(self, args: argparse.Namespace) -> None:
        for hook in self.magics.refresh_hooks:
            hook()
        print("Forgot the cached Linkis metadata; completion asks Linkis again.")

    def help(self, args: argparse.Namespace) -> None:
        print(line_help())


def _engine_named(engines: list[EngineInfo], name: str) -> EngineInfo:
    """The engine `name` stands for: its `host:port`, or just the port."""
    for engine in engines:
        if name in (engine.instance, engine.instance.rsplit(":", 1)[-1]):
            return engine
    known = ", ".join(e.instance for e in engines) or "you have none"
    raise LinkisCellError(
        f"No engine of yours is called {name!r} (engines: {known}).",
        "List them with `%linkis engines`.",
    )
