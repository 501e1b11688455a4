"""The `%linkis <subcommand>` handlers: connect, status, jobs, attach, kill, log, result,
download, vars, engines, refresh and help.

Each handler takes the arguments `options.parse_line` parsed; `LinkisMagics.run_subcommand`
picks the handler and turns Linkis errors into short error outputs.
"""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..client import LOG, LinkisError
from ..display import LinkisCellError, choose_progress_mode
from ..display.card import format_duration
from ..job import download_format
from ..options import CellOptions, key_values, line_help
from ..wire import STATES, SUCCEED
from .errors import MAGIC_COMMANDS, connection_problem, magic_command

if TYPE_CHECKING:
    import pandas as pd

    from ..client import EngineInfo
    from ..job import Job
    from .magic import LinkisMagics

STATE_BY_NAME = {state.lower(): state for state in STATES}
JOB_COLUMNS = ["task_id", "state", "engine", "run_type", "created", "duration_s", "code"]
VARIABLE_COLUMNS = ["name", "value"]
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
            "vars": self.variables,
            "engines": self.engines,
            "refresh": self.refresh,
            "help": self.help,
        }
        return handlers[command]

    def _job(self, job_id: str) -> Job:
        return self.magics.connection().job(job_id)

    def connect(self, args: argparse.Namespace) -> None:
        """Point the magics at a gateway (asking for a password when nothing else logs in), or
        with no URL back at LINKIS_URL, else the embedded server. Says connected only once the
        gateway answered and took the credentials; otherwise says why and changes nothing."""
        magics = self.magics
        before = (magics.url, magics.user, magics.token_env)
        with magics.hold_trait_notifications():  # a value the settings refuse changes none
            magics.url = args.url
            magics.user = args.user or (magics.user if args.url else None)
            magics.token_env = args.token_env or magics.token_env
        try:
            self._connect_checked()
        except LinkisCellError:
            with magics.hold_trait_notifications():
                magics.url, magics.user, magics.token_env = before
            magics.disconnect()
            raise

    def _connect_checked(self) -> None:
        magics = self.magics
        url = magics.url or os.environ.get("LINKIS_URL")
        user = magics.user or os.environ.get("LINKIS_USER")
        if url:  # before asking for a password, see that a gateway answers there at all
            from ..job import LinkisClient

            with self._problems(url, user, "none"):
                LinkisClient(url, retries=0).check_gateway()
        has_token = bool(magics.token_env and os.environ.get(magics.token_env))
        password = None
        if url and user and not has_token and not os.environ.get("LINKIS_PASSWORD"):
            password = getpass.getpass(f"Linkis password for {user}: ")
        magics.reconnect(password)
        self.status(argparse.Namespace())

    @contextmanager
    def _problems(self, url: str, user: str | None, auth: str) -> Iterator[None]:
        """A Linkis error while connecting, as one "Not connected: ..." sentence."""
        try:
            yield
        except LinkisError as error:
            problem = connection_problem(url, error, user=user, auth=auth)
            raise LinkisCellError(f"Not connected: {problem}") from None

    def status(self, args: argparse.Namespace) -> None:
        """Where we are connected, as whom: checked with the gateway, not just configured."""
        client = self.magics.connection()
        with self._problems(client.url, client.user, client.auth_kind):
            client.check_login()
        where = f"the embedded Linkis at {client.url}" if client.embedded else client.url
        if client.auth_kind == "none":
            print(f"Connected to {where} without credentials (the gateway asks for none).")
        else:
            print(f"Connected to {where} as {client.user} ({client.auth_kind} auth).")

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
        """Kill a job; one this shell follows with --async shows its card before this returns."""
        job = self._job(args.id)
        report = job.kill()
        if report.error is None:  # sent (or needless): the job ends, confirmed or not yet
            self.magics.settle(job.task_id)
        print(report.describe(MAGIC_COMMANDS))

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
        """Save a result to a file: csv or xlsx exported by the server, or parquet read page by
        page (the format from --format, else the file name's suffix), with a progress bar."""
        from ..display.transfer import DownloadProgress

        magics = self.magics
        job = self._job(args.id)
        parquet = download_format(args.path, args.format) == "parquet"
        mode = choose_progress_mode(magics.progress, magics.shell)
        progress = DownloadProgress(
            os.path.basename(args.path), mode, unit="rows" if parquet else "bytes"
        )
        try:
            path = job.download(args.path, format=args.format, on_progress=progress.update)
        except BaseException:
            progress.close(ok=False)
            raise
        progress.close()
        print(f"Saved the result of Linkis job {args.id} to {path}.")

    def variables(self, args: argparse.Namespace) -> pd.DataFrame | None:
        """List your global variables, or set (`NAME=VALUE`) and delete (`NAME=`) some."""
        client = self.magics.connection()
        if not args.assignments:
            import pandas as pd

            found = client.global_variables()
            if not found:
                print("You have no global variables; set one with `%linkis vars NAME=VALUE`.")
                return None
            return pd.DataFrame(list(found.items()), columns=VARIABLE_COLUMNS)
        changes = key_values([args.assignments], "%linkis vars")
        variables = client.global_variables()
        for name, value in changes.items():
            if value:
                variables[name] = value
            else:
                variables.pop(name, None)
        client.set_global_variables(variables)
        set_names = [name for name, value in changes.items() if value]
        deleted = [name for name, value in changes.items() if not value]
        said = [f"set {', '.join(set_names)}"] if set_names else []
        said += [f"deleted {', '.join(deleted)}"] if deleted else []
        print(f"Global variables saved ({'; '.join(said)}).")
        return None

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
