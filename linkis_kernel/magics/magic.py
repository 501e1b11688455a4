"""`LinkisMagics`: `%%linkis` (run a cell on Linkis), its settings, and the dispatch of
`%linkis <subcommand>` to the handlers in `subcommands`.

`LinkisMagics.run_cell(options, code)` is the whole "run one cell on Linkis" flow as a plain
method, so the wrapper kernel calls it directly. Settings are traitlets (`%config LinkisMagics.*`,
ipython_config.py); a cell option beats `%config`, which beats the environment, which beats the
defaults.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import display
from traitlets import Bool, Dict, Enum, Float, Integer, TraitError, Unicode, observe, validate
from traitlets.config import Configurable

from ..client import ATTACH, EMBEDDED_NOTE, KILL, LinkisError, LinkisJobError
from ..display import (
    PROGRESS_MODES,
    JobCard,
    Limits,
    LinkisCellError,
    RunDisplay,
    choose_progress_mode,
    result_header,
    result_view,
)
from ..display.card import CARD_LOG_LINES, JobInterrupted, engine_line, summarize_results
from ..job import KillReport, interrupt_held
from ..options import (
    CellOptions,
    cell_magic_arguments,
    fill_variables,
    is_shell,
    is_sql,
    parse_cell_options,
    parse_line,
    undefined_variables,
    undefined_warning,
)
from ..wire import DEFAULT_CREATOR, FAILED_STATES
from .errors import MAGIC_COMMANDS, describe, engine_errors, magic_command, short_errors
from .settings import RULES, checked
from .subcommands import Subcommands

if TYPE_CHECKING:
    import pandas as pd

    from ..job import Job, LinkisClient
    from ..results import ResultSet

F = TypeVar("F", bound=Callable[..., Any])
# How long the requests behind an ended job's card (history row, error log) may take.
SETTLE_REQUESTS_S = 10.0

DEFAULT_ENGINE = "spark"
SHUTDOWN_KILL_WAIT = 2.0


def _line_cell_magic(method: F) -> F:
    """IPython's `line_cell_magic` used bare, which returns the method it marks (IPython types
    it as maybe returning a decorator, for its `@line_cell_magic("name")` form)."""
    return cast(F, line_cell_magic(method))


@magics_class
class LinkisMagics(Magics, Configurable):
    """Run cells on Apache Linkis and manage its jobs from IPython."""

    url = Unicode(
        None,
        allow_none=True,
        help="Linkis gateway URL, http(s)://... (default LINKIS_URL, else embedded)",
    ).tag(config=True)
    user = Unicode(None, allow_none=True, help="Linkis user (default LINKIS_USER)").tag(config=True)
    token_env = Unicode(
        "LINKIS_TOKEN", help="environment variable that holds the Linkis token"
    ).tag(config=True)
    engine = Unicode(
        None, allow_none=True, help="default engine (default LINKIS_ENGINE, else spark)"
    ).tag(config=True)
    run_type = Unicode(
        None, allow_none=True, help="default run type (default: the engine's own)"
    ).tag(config=True)
    creator = Unicode(
        None, allow_none=True, help="creator label (default LINKIS_CREATOR, else IDE)"
    ).tag(config=True)
    engine_versions = Dict(
        help="versions for bare engine names, e.g. {'spark': '2.4.3'} (over the defaults)"
    ).tag(config=True)
    progress = Enum(PROGRESS_MODES, "auto", help="progress display: auto|widget|text|none").tag(
        config=True
    )
    fetch_limit = Integer(
        100_000, allow_none=True, help="rows fetched per result, 0 or more (None or 0: all)"
    ).tag(config=True)
    display_limit = Integer(
        50,
        allow_none=True,
        help="rows shown in a result table, 0 or more (None or 0: all; the DataFrame keeps all)",
    ).tag(config=True)
    poll_interval = Float(
        0.1, help="first poll interval, seconds (at least 0.05, at most poll_max_interval)"
    ).tag(config=True)
    poll_max_interval = Float(
        2.0, help="longest poll interval while nothing changes, seconds (at least poll_interval)"
    ).tag(config=True)
    kill_on_interrupt = Bool(True, help="kill the job when the cell is interrupted").tag(
        config=True
    )
    kill_on_shutdown = Bool(True, help="kill still-running jobs when the shell ends").tag(
        config=True
    )
    stale_after = Float(
        600.0, help="warn when a job shows no change for this many seconds (more than 0)"
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any):
        super().__init__(shell=shell, **kwargs)
        self.jobs: list[Job] = []
        # Called by `%linkis refresh`: whoever caches Linkis metadata (the kernel's completer).
        self.refresh_hooks: list[Callable[[], None]] = []
        self._client: LinkisClient | None = None
        self._password: str | None = None
        self._lock = threading.Lock()
        # task id -> the thread that follows an --async job and turns its panel into a card
        self._followers: dict[int, threading.Thread] = {}
        self.subcommands = Subcommands(self)

    @property
    def user_ns(self) -> dict[str, Any]:
        """The namespace of the shell these magics belong to."""
        if self.shell is None:
            raise RuntimeError("LinkisMagics run only inside an IPython shell")
        return self.shell.user_ns

    # -- settings and connection -----------------------------------------------------------

    @validate(*RULES)
    def _check_setting(self, proposal: Any) -> Any:
        return checked(self, proposal["trait"].name, proposal["value"])

    @observe("url", "user", "token_env")
    def _forget_client(self, change: dict[str, Any]) -> None:
        self.disconnect()

    def disconnect(self) -> None:
        """Forget the client and any password `%linkis connect` asked for."""
        with self._lock:
            self._client = None
            self._password = None

    def resolved(self, name: str, option: str | None = None) -> str | None:
        """A setting: the cell option, else `%config`, else the environment, else the default."""
        environment = {"engine": "LINKIS_ENGINE", "creator": "LINKIS_CREATOR"}
        defaults = {"engine": DEFAULT_ENGINE, "creator": DEFAULT_CREATOR}
        if option:
            return option
        configured = getattr(self, name)
        if configured:
            return configured
        variable = environment.get(name)
        return (os.environ.get(variable) if variable else None) or defaults.get(name)

    def connection(self) -> LinkisClient:
        """The client, connecting on first use (the embedded server when no URL is set)."""
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            self._client.engine_versions.update(self.engine_versions)
            return self._client

    def reconnect(self, password: str | None = None) -> None:
        """Connect afresh on next use; a `password` (as `%linkis connect` asks for one)
        replaces the one remembered."""
        with self._lock:
            self._client = None
            if password is not None:
                self._password = password

    def _connect(self) -> LinkisClient:
        from ..job import LinkisClient

        url = self.url or os.environ.get("LINKIS_URL")
        overrides: dict[str, Any] = {"url": url, "user": self.user, "password": self._password}
        if self.token_env and os.environ.get(self.token_env):
            overrides["token"] = os.environ[self.token_env]
        with short_errors():
            client = LinkisClient.from_env(**overrides)
        assert isinstance(client, LinkisClient)  # from_env builds the class it is called on
        if client.embedded:
            print(EMBEDDED_NOTE.format(url=client.url))
        return client

    # -- the magic -------------------------------------------------------------------------

    @cell_magic_arguments
    @_line_cell_magic
    def linkis(self, line: str, cell: str | None = None) -> Any:
        """Run the cell on Linkis and return its last table as a DataFrame.

        `${name}` in the code is a Linkis variable: filled from --var (as given), else from the
        Python variable of that name (a SQL literal for SQL code: strings quoted, numbers as
        they are), else left to Linkis (e.g. ${run_date}). `{name}` is not touched.
        As a line magic: `%linkis help` lists the subcommands (connect, status, jobs, attach,
        kill, log, result, download, vars, refresh).
        """
        if cell is None:
            return self.run_subcommand(line)
        return self.run_cell(parse_cell_options(self.linkis, line), cell)

    def run_cell(self, options: CellOptions, code: str) -> Any:
        """Submit `code` with `options`, show its progress, return the result (or the Job with
        `--async`). A failed job raises LinkisJobError; Ctrl-C kills the job and re-raises."""
        if not code.strip():
            raise UsageError("%%linkis: the cell has no code to run below its first line")
        engine = self.resolved("engine", options.engine) or DEFAULT_ENGINE
        # A configured run type belongs to the configured engine, not to one the cell names.
        run_type = options.run_type or (None if options.engine else self.run_type)
        creator = self.resolved("creator", options.creator) or DEFAULT_CREATOR
        variables = fill_variables(
            code, options.variables, self.user_ns, sql=is_sql(run_type, engine)
        )
        undefined = [] if is_shell(run_type, engine) else undefined_variables(code, variables)
        if undefined:
            print(undefined_warning(undefined), file=sys.stderr)
        client = self.connection()
        with interrupt_held() as interrupted:
            with short_errors(), engine_errors():
                job = client.submit(
                    code,
                    engine=engine,
                    run_type=run_type,
                    creator=creator,
                    variables=variables or None,
                    runtime=options.runtime or None,
                    startup=options.startup or None,
                )
            self._track(job)
        if options.run_async and not interrupted.is_set():
            view = self._view(job, options)
            if view is not None:
                view.start()
            self._follow_in_background(job, view)
            if options.output:  # bound: no repr of the just-submitted job under the panel
                self.user_ns[options.output] = job
                return None
            return job
        value = self.follow(job, options, interrupted=interrupted.is_set())
        if options.output:
            self.user_ns[options.output] = value
        return value

    def _track(self, job: Job) -> None:
        self.pace(job)
        self.jobs.append(job)

    def pace(self, job: Job) -> None:
        """Poll and warn about `job` as the settings say."""
        job.poll_min = self.poll_interval
        job.poll_max = self.poll_max_interval
        job.stale_after = self.stale_after

    def _view(self, job: Job, options: CellOptions) -> RunDisplay | None:
        """The run's display, not started yet (None with --quiet)."""
        if options.quiet:
            return None
        mode = choose_progress_mode(options.progress or self.progress, self.shell)
        return RunDisplay(job.engine or "", mode, commands=MAGIC_COMMANDS)

    def follow(
        self,
        job: Job,
        options: CellOptions,
        *,
        kill_on_interrupt: bool | None = None,
        interrupted: bool = False,
    ) -> Any:
        """Wait for the job with its progress shown, then show its card and results.

        Ctrl-C (at any point, also before the wait starts, or already while the job was being
        submitted: `interrupted`) kills the job when `kill_on_interrupt` (default: the
        setting), shows what happened and re-raises."""
        kill = self.kill_on_interrupt if kill_on_interrupt is None else kill_on_interrupt
        view: RunDisplay | None = None
        try:
            if interrupted:
                raise KeyboardInterrupt
            view = self._view(job, options)
            if view is not None:
                view.start()
            with short_errors():
                job.wait(on_update=view.update if view else None, kill_on_interrupt=kill)
                results = job.results(limit=self.fetch_limit_for(options.limit))
        except KeyboardInterrupt as interrupt:
            note = self._interrupt_note(job, interrupt, kill)
            self._end_view(view, job)  # the note shows once, as the cell's error output
            raise JobInterrupted(note) from None
        except (LinkisJobError, LinkisCellError):
            self._end_view(view, job)
            raise
        self._end_view(view, job, results, limit=options.limit)
        return self.show_results(results, self.limits_for(options.limit))

    @staticmethod
    def _interrupt_note(job: Job, interrupt: KeyboardInterrupt, kill: bool) -> str:
        """One line on what Ctrl-C did to the job."""
        report = getattr(interrupt, "linkis_report", None)
        if isinstance(report, KillReport):
            return report.describe(MAGIC_COMMANDS)
        if job.done:
            return f"Interrupted while reading the results: `%linkis result {job.task_id}`."
        if kill:
            return job.kill(wait=job.kill_confirm_wait).describe(MAGIC_COMMANDS)
        return (
            f"Interrupted; the job keeps running: `{magic_command(ATTACH, job.task_id)}` or "
            f"`{magic_command(KILL, job.task_id)}`."
        )

    def _follow_in_background(self, job: Job, view: RunDisplay | None) -> None:
        def follow() -> None:
            note: str | None = None
            log_tail: tuple[str, ...] = ()
            try:
                job.wait(on_update=view.update if view else None, raise_on_failure=False)
                if job.state in FAILED_STATES:  # no error output here: the card says why
                    failure = job.failure()
                    note = failure.err_desc or failure.state
                    if failure.err_code is not None:
                        note = f"errCode {failure.err_code}: {note}"
                    log_tail = tuple(failure.error_lines[-CARD_LOG_LINES:])
            except LinkisError as exc:
                note = f"Stopped following: {describe(exc)}"
            self._end_view(view, job, note=note, log_tail=log_tail)
            self._followers.pop(job.task_id, None)

        follower = threading.Thread(target=follow, name=f"linkis-job-{job.task_id}", daemon=True)
        self._followers[job.task_id] = follower
        follower.start()

    def settle(self, task_id: int) -> None:
        """Wait for the panel of an --async job that is ending (killed) to show its card, for at
        most a poll round and the few requests the card needs."""
        follower = self._followers.pop(task_id, None)
        if follower is not None:
            follower.join(timeout=self.poll_max_interval + SETTLE_REQUESTS_S)

    def fetch_limit_for(self, limit: int | None) -> int | None:
        """The rows to fetch per result: `--limit`, else the setting (None: all)."""
        chosen = self.fetch_limit if limit is None else limit
        return chosen or None

    def limits_for(self, limit: int | None) -> Limits:
        """The limits a result goes through, each named by where it was set."""
        source = "--limit" if limit is not None else "LinkisMagics.fetch_limit"
        return Limits(
            self.display_limit or None,
            self.fetch_limit_for(limit),
            fetch_limit_source=source,
            display_limit_source="LinkisMagics.display_limit",
        )

    def _end_view(
        self,
        view: RunDisplay | None,
        job: Job,
        results: Sequence[ResultSet] = (),
        *,
        limit: int | None = None,
        note: str | None = None,
        log_tail: tuple[str, ...] = (),
    ) -> None:
        if view is None:
            return
        snapshot = job.last_snapshot
        try:
            engine = engine_line(job.info().raw)
        except LinkisError:
            engine = None
        card = JobCard(
            engine=job.engine or "",
            exec_id=job.exec_id,
            task_id=job.task_id,
            state=job.state,
            elapsed=snapshot.elapsed if snapshot else 0.0,
            run_type=job.run_type,
            results=summarize_results(results, self.limits_for(limit)),
            note=note,
            log_tail=log_tail,
            commands=MAGIC_COMMANDS,
            engine_line=engine,
        )
        view.finish(card)

    @staticmethod
    def show_results(results: Sequence[ResultSet], limits: Limits) -> pd.DataFrame | None:
        """Display every result set but the last table, each under `result i of n`; return the
        last table (a DataFrame that displays with its footer) or None."""
        tables = [position for position, result in enumerate(results) if result.kind == "table"]
        last_table = tables[-1] if tables else None
        count = len(results)
        value = None
        for position, result in enumerate(results):
            header = result_header(position, count) if count > 1 else None
            view = result_view(result, limits, header)
            if position == last_table:
                value = view
            else:
                display(view)
        return value

    # -- subcommands and shutdown ----------------------------------------------------------

    def run_subcommand(self, line: str) -> Any:
        """`%linkis <subcommand> ...`."""
        args = parse_line(line)
        handler = self.subcommands.handler(args.command)
        with short_errors(TraitError):  # e.g. `%linkis connect` with a URL that is not one
            return handler(args)

    def running_jobs(self) -> list[Job]:
        """Jobs this shell started that were not seen to end."""
        return [job for job in self.jobs if not job.done]

    def shutdown(self) -> list[str]:
        """Kill this shell's still-running jobs (when `kill_on_shutdown`); one report per job."""
        if not self.kill_on_shutdown:
            return []
        return [
            job.kill(wait=SHUTDOWN_KILL_WAIT).describe(MAGIC_COMMANDS)
            for job in self.running_jobs()
        ]
