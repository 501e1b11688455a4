"""`Job`: wait for a submitted job, watch it, kill it, read its log and results."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..client import (
    ATTACH,
    PYTHON_COMMANDS,
    Commands,
    LinkisError,
    LinkisJobError,
    LinkisNotFoundError,
    LinkisRestClient,
    LinkisTimeoutError,
    LinkisTransportError,
    NextStep,
    TaskInfo,
    join_parts,
    phrase_steps,
)
from ..wire import (
    CANCELLED,
    FAILED_STATES,
    INITED,
    LOG_LEVELS,
    OPEN_FILE_DEFAULT_PAGE_SIZE,
    TERMINAL_STATES,
)
from .clock import SYSTEM_CLOCK, Clock
from .outputs import DEFAULT_BATCH_ROWS, JobResults, RowProgress
from .poller import JobPoller
from .snapshot import Snapshot, differs, empty_log, moved

if TYPE_CHECKING:
    import pandas as pd

    from ..results import ResultSet

_ERROR_LINES_KEPT = 10
_KILL_POLL_INTERVAL = 0.2
_HISTORY_POLL_INTERVAL = 0.05


class KillReport(str):
    """The one-line outcome of `Job.kill()`, readable as a str (phrased for the Python API).

    Front ends phrase it in their own commands with `describe(commands)`: `error` is the
    LinkisError that stopped the kill, `next_steps` what to do when the kill is unconfirmed.
    """

    text: str
    error: LinkisError | None
    next_steps: tuple[NextStep, ...]

    def __new__(
        cls, text: str, *, error: LinkisError | None = None, next_steps: Sequence[NextStep] = ()
    ) -> KillReport:
        parts = (text, error.describe(PYTHON_COMMANDS) if error else "")
        report = super().__new__(cls, join_parts(*parts, phrase_steps(next_steps, PYTHON_COMMANDS)))
        report.text, report.error, report.next_steps = text, error, tuple(next_steps)
        return report

    def describe(self, commands: Commands) -> str:
        """The report with its error and next steps phrased in `commands`."""
        error = self.error.describe(commands) if self.error else ""
        return join_parts(self.text, error, phrase_steps(self.next_steps, commands))


class Job:
    """A submitted (or attached) Linkis job: wait for it, watch it, kill it, read its results.

    Poll pacing is tunable per job through the attributes below (seconds). `clock` gives the
    time and the sleeps between rounds (a fake one lets tests skip the waiting).
    """

    poll_min = 0.1  # first interval, and after every state change
    poll_min_unwatched = 0.02  # the same for waits nobody watches: one request a round
    poll_lag_ratio = 0.2  # unwatched: poll at least every 20% of the time waited so far
    poll_max = 2.0  # cap while nothing changes
    poll_active_max = 0.5  # cap while only progress or the log moves
    poll_backoff = 1.5
    stale_after = 600.0  # warn when nothing changed for this long
    unreachable_warn_after = 30.0  # warn when polls keep failing for this long ...
    unreachable_give_up_after = 300.0  # ... and give up (the job is left running) after this
    kill_confirm_wait = 5.0  # how long Ctrl-C waits for Linkis to confirm Cancelled
    history_catch_up = 10.0  # how long job history may trail the entrance's final state

    def __init__(
        self,
        client: LinkisRestClient,
        exec_id: str,
        task_id: int,
        *,
        engine: str | None = None,
        run_type: str | None = None,
        code: str | None = None,
        creator: str | None = None,
        state: str = INITED,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.exec_id = exec_id
        self.task_id = int(task_id)
        self.engine = engine
        self.run_type = run_type
        self.code = code
        self.creator = creator
        self.kill_report: KillReport | None = None
        self._final_info: TaskInfo | None = None
        self._poller = JobPoller(
            client, exec_id, self.task_id, state=state, clock=clock, info=self.info
        )
        self._outputs = JobResults(
            lambda: self.client, self.task_id, self._settled_info, self._warn_lines
        )

    @classmethod
    def from_task(
        cls, client: LinkisRestClient, info: TaskInfo, *, clock: Clock = SYSTEM_CLOCK
    ) -> Job:
        """Attach to the job a job-history row describes."""
        engine = next(
            (label.split(":", 1)[1] for label in info.labels if label.startswith("engineType:")),
            info.engine_type,
        )
        job = cls(
            client,
            info.stronger_exec_id or "",
            info.task_id,
            engine=engine,
            run_type=info.run_type,
            code=info.execution_code,
            creator=info.creator,
            state=info.status,
            clock=clock,
        )
        return job

    def __repr__(self) -> str:
        return (
            f"<Job task {self.task_id} {self.state} {self.progress:.0%} "
            f"engine={self.engine} exec_id={self.exec_id}>"
        )

    @property
    def client(self) -> LinkisRestClient:
        """The client this job is read through (replace it to follow the job elsewhere)."""
        return self._poller.client

    @client.setter
    def client(self, value: LinkisRestClient) -> None:
        self._poller.client = value

    @property
    def clock(self) -> Clock:
        """The clock this job's polls, waits and kill confirmation are timed by."""
        return self._poller.clock

    @property
    def state(self) -> str:
        """The last state read (a job-state name such as "Running")."""
        return self._poller.state

    @state.setter
    def state(self, value: str) -> None:
        self._poller.state = value

    @property
    def progress(self) -> float:
        """The progress shown so far, in [0, 1]."""
        return self._poller.progress

    @property
    def last_snapshot(self) -> Snapshot | None:
        return self._poller.last_snapshot

    @property
    def log_lines(self) -> list[str]:
        """Every log line read while polling, in order."""
        return self._poller.levels["all"]

    @property
    def done(self) -> bool:
        """True once the job is known to be in a terminal state."""
        return self.state in TERMINAL_STATES

    # -- polling ---------------------------------------------------------------------------

    def refresh(self, *, watched: bool = True) -> Snapshot:
        """One poll round; returns its snapshot.

        Watched (someone shows the progress): the status, then progress and new log lines; both
        while anything moves, in turns while nothing does. Unwatched: the status alone, and the
        whole remaining log once the job has ended.
        """
        return self._poller.refresh(watched=watched, stale_after=self.stale_after)

    def wait(
        self,
        timeout: float | None = None,
        on_update: Callable[[Snapshot], None] | None = None,
        kill_on_interrupt: bool = True,
        raise_on_failure: bool = True,
    ) -> Job:
        """Poll until the job ends; `on_update` gets every changed snapshot and the final one.

        A `timeout` (seconds) leaves the job running and raises LinkisTimeoutError. Ctrl-C kills
        the job (unless `kill_on_interrupt` is False) and re-raises KeyboardInterrupt with a
        one-line KillReport as `exc.linkis_report` (also `job.kill_report`). A job ending
        Failed, Cancelled or Timeout raises LinkisJobError unless `raise_on_failure` is False.
        """
        clock = self.clock
        deadline = None if timeout is None else clock.monotonic() + timeout
        watched = on_update is not None
        fastest = self.poll_min if watched else min(self.poll_min, self.poll_min_unwatched)
        interval = fastest
        unreachable_since: float | None = None
        try:
            while True:
                previous = self.last_snapshot
                snapshot: Snapshot | None
                try:
                    snapshot = self.refresh(watched=watched)
                    unreachable_since = None
                except LinkisTransportError as err:
                    unreachable_since = unreachable_since or clock.monotonic()
                    snapshot = self._unreachable_snapshot(err, unreachable_since)
                wanted = snapshot is not None and (snapshot.final or differs(previous, snapshot))
                if on_update is not None and snapshot is not None and wanted:
                    on_update(snapshot)
                if self.done:
                    break
                interval = self._next_interval(interval, previous, snapshot, fastest)
                if not watched:  # keeps the lag a small share of the job's duration
                    elapsed = self._poller.elapsed()
                    interval = min(interval, max(fastest, self.poll_lag_ratio * elapsed))
                if deadline is not None:
                    remaining = deadline - clock.monotonic()
                    if remaining <= 0:
                        raise LinkisTimeoutError(
                            task_id=self.task_id,
                            exec_id=self.exec_id,
                            waited_s=timeout or 0.0,
                            state=self.state,
                        )
                    interval = min(interval, remaining)
                clock.sleep(interval)
        except KeyboardInterrupt as interrupt:
            if kill_on_interrupt:
                self.kill_report = self.kill(wait=self.kill_confirm_wait)
                interrupt.linkis_report = self.kill_report  # type: ignore[attr-defined]
            raise
        if raise_on_failure and self.state in FAILED_STATES:
            raise self.failure()
        return self

    def failure(self) -> LinkisJobError:
        """The LinkisJobError for this (ended) job: errCode/errDesc and the last ERROR lines."""
        info = self._settled_info()
        return LinkisJobError(
            task_id=self.task_id,
            exec_id=self.exec_id,
            state=self.state,
            err_code=info.err_code,
            err_desc=info.err_desc,
            error_lines=self._poller.levels["error"][-_ERROR_LINES_KEPT:],
        )

    def _unreachable_snapshot(self, err: LinkisTransportError, since: float) -> Snapshot | None:
        """After a failed poll: give up past the limit, warn past the warning threshold."""
        down = self.clock.monotonic() - since
        if down >= self.unreachable_give_up_after:
            raise LinkisTransportError(
                f"Lost contact with Linkis for {down:.0f} s while waiting for job "
                f"{self.task_id} ({self.exec_id}); the job may still be running",
                next_steps=(NextStep(ATTACH, self.task_id, "to attach to it later"),),
            ) from err
        if down < self.unreachable_warn_after:
            return None
        last = self.last_snapshot or Snapshot(self.exec_id, self.task_id, self.state, self.progress)
        return replace(
            last,
            new_log=empty_log(),
            elapsed=self._poller.elapsed(),
            warning=f"Linkis has not answered for {down:.0f} s ({err.message}); still trying.",
            next_steps=(),
        )

    def _next_interval(
        self, interval: float, previous: Snapshot | None, snapshot: Snapshot | None, fastest: float
    ) -> float:
        """`fastest` after a state change; backing off to `poll_active_max` while progress or the
        log move, and to `poll_max` while nothing does."""
        if snapshot is None:
            return min(interval * self.poll_backoff, self.poll_max)
        if previous is None or previous.state != snapshot.state:
            return fastest
        if moved(previous, snapshot):
            return max(fastest, min(interval * self.poll_backoff, self.poll_active_max))
        return min(interval * self.poll_backoff, self.poll_max)

    # -- kill ------------------------------------------------------------------------------

    def kill(self, wait: float = 5.0) -> KillReport:
        """Kill the job and wait up to `wait` seconds for Cancelled; returns a one-line report."""
        ref = f"Linkis job {self.task_id}"
        try:
            state = self._poller.read_state()
        except LinkisError as err:
            return KillReport(f"Could not reach {ref} to kill it:", error=err)
        if state in TERMINAL_STATES:
            self.state = state
            return KillReport(f"{ref} already finished ({state}); nothing to kill.")
        try:
            self.client.kill(self.exec_id, task_id=self.task_id)
        except LinkisError as err:
            return KillReport(f"Kill of {ref} failed (it is still {state}):", error=err)
        if wait <= 0:
            return KillReport(
                f"Kill requested for {ref} ({self.exec_id}); not waiting for confirmation."
            )
        deadline = self.clock.monotonic() + wait
        while state not in TERMINAL_STATES and self.clock.monotonic() < deadline:
            self.clock.sleep(_KILL_POLL_INTERVAL)
            try:
                state = self._poller.read_state()
            except LinkisTransportError:
                continue
        if state == CANCELLED:
            self.state = state
            return KillReport(f"Killed {ref}: Linkis confirms it Cancelled.")
        if state in TERMINAL_STATES:
            self.state = state
            return KillReport(f"{ref} already finished ({state}) before the kill took effect.")
        return KillReport(
            f"Kill requested for {ref}, but it is still {state} after {wait:g} s: the kill "
            f"failed or is slow.",
            next_steps=(NextStep(ATTACH, self.task_id, "to check on it"),),
        )

    # -- history, log, results -------------------------------------------------------------

    def info(self) -> TaskInfo:
        """The job-history row (state, errCode/errDesc, log path, result location, ...).

        Read once more each call until the row is final; a final row no longer changes, so it
        is kept and the results, the failure and the card share one read."""
        if self._final_info is not None:
            return self._final_info
        info = self.client.jobhistory_get(self.task_id)
        if info.status in TERMINAL_STATES:
            self._final_info = info
        return info

    def log(self, level: str = "all", tail: int | None = None) -> list[str]:
        """The job's whole log at `level`: from the entrance while it holds the job, else the
        persisted log file. `tail` keeps only the last lines."""
        if level not in LOG_LEVELS:
            raise ValueError(f"level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
        chunk = self._poller.whole_entrance_log() if self._poller.held else None
        if chunk is None:
            info = self.info()
            if not info.log_path:
                raise LinkisNotFoundError(f"Linkis job {self.task_id} has no log path yet")
            chunk = self.client.open_log(info.log_path)
        lines: list[str] = getattr(chunk, level)
        return lines if tail is None else lines[max(len(lines) - tail, 0) :]

    def _settled_info(self) -> TaskInfo:
        """The history row. Job history may trail the entrance for a moment after a job ends:
        once the entrance has said so, wait up to `history_catch_up` seconds for it to agree."""
        info = self.info()
        deadline = self.clock.monotonic() + self.history_catch_up
        while (
            info.status not in TERMINAL_STATES and self.done and self.clock.monotonic() < deadline
        ):
            self.clock.sleep(_HISTORY_POLL_INTERVAL)
            info = self.info()
        return info

    def _warn_lines(self) -> list[str]:
        return self._poller.levels["warn"] if self.log_lines else self.log("warn")

    def result_paths(self) -> list[str]:
        """The job's result-set files, in result order (empty when it wrote none)."""
        return self._outputs.paths()

    def results(
        self,
        *,
        limit: int | None = None,
        page_size: int = OPEN_FILE_DEFAULT_PAGE_SIZE,
        decimal: str = "decimal",
    ) -> list[ResultSet]:
        """Every result set, in order; tables as typed DataFrames.

        `limit` caps the rows fetched per result (None or 0: all); `decimal="float"` gives
        float64 instead of Decimal objects for decimal columns. The last answer is kept, so
        asking again with the same arguments returns the same objects without a request.
        """
        return self._outputs.sets(limit=limit, page_size=page_size, decimal=decimal)

    def result(
        self,
        *,
        limit: int | None = None,
        page_size: int = OPEN_FILE_DEFAULT_PAGE_SIZE,
        decimal: str = "decimal",
    ) -> pd.DataFrame:
        """The last table result as a DataFrame."""
        return self._outputs.table(limit=limit, page_size=page_size, decimal=decimal)

    def iter_batches(
        self,
        index: int = -1,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        *,
        page_size: int = OPEN_FILE_DEFAULT_PAGE_SIZE,
        decimal: str = "decimal",
        on_progress: RowProgress | None = None,
    ) -> Iterator[pd.DataFrame]:
        """The table result at `index` (default the last) as DataFrames of `batch_rows` rows,
        typed as `result()` types them, holding one batch and a few pages at a time.

        Batch indexes continue one another, so `pd.concat(job.iter_batches())` equals
        `job.result()`. `on_progress(rows, estimated_total)` follows every page.
        """
        return self._outputs.batches(
            index,
            batch_rows=batch_rows,
            page_size=page_size,
            decimal=decimal,
            on_progress=on_progress,
        )

    def download(
        self,
        path: str | Path,
        *,
        format: str | None = None,
        index: int = -1,
        on_progress: RowProgress | None = None,
        **options: Any,
    ) -> Path:
        """Save one result set (default the last) as csv, xlsx or parquet; the format comes
        from `format`, else from the file name's suffix (csv when it names none).

        csv and xlsx are the server's export (`resultsetToExcel`); `options` go to the
        client's `resultset_to_excel` (charset, separator, null_value, limit, file_name).
        parquet reads every row through `openFile` batch by batch with `result()`'s column
        types (options: batch_rows, page_size, decimal; needs pyarrow). Either way the file
        appears only once complete. `on_progress(done, total)` follows the download: bytes
        (total None) for csv and xlsx, rows (total estimated, or None) for parquet.
        """
        return self._outputs.download(
            path, format=format, index=index, on_progress=on_progress, **options
        )
