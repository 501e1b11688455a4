"""The job handle: submit -> poll -> stream -> finish, one state machine for every front end.

The `%%linkis` magic, the wrapper kernel, `linkis-kernel run` and the Python API all drive a
`Job`: `wait()` polls status, progress and log together with an adaptive interval, survives
the entrance forgetting the job and short network failures, kills the job on Ctrl-C, and hands
`Snapshot`s to whoever displays them. Results are read by `results.py`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .client import (
    ATTACH,
    LinkisAuthError,
    LinkisError,
    LinkisJobError,
    LinkisNotFoundError,
    LinkisRestClient,
    LinkisTimeoutError,
    LinkisTransportError,
    LogChunk,
    NextStep,
    ResourceUsage,
    StageProgress,
    TaskInfo,
)
from .wire import (
    CANCELLED,
    DEFAULT_CREATOR,
    DEFAULT_ENGINE_VERSIONS,
    FAILED_STATES,
    INITED,
    LOG_LEVELS,
    LOG_NEGATIVE_SIZE,
    OPEN_FILE_DEFAULT_PAGE_SIZE,
    QUEUE_POSITION_PATTERN,
    SCHEDULED,
    TERMINAL_STATES,
    WAIT_FOR_RETRY,
)

if TYPE_CHECKING:
    import pandas as pd

    from .results import ResultSet

__all__ = ["Job", "LinkisClient", "ResourceUsage", "Snapshot", "StageProgress"]

# The run type a bare engine gets when none is given.
DEFAULT_RUN_TYPES = {
    "spark": "sql",
    "hive": "hql",
    "jdbc": "sql",
    "presto": "sql",
    "trino": "sql",
    "duckdb": "sql",
    "python": "python",
    "shell": "shell",
}
DEFAULT_SOURCE = {"scriptPath": "linkis-kernel"}
WAITING_STATES = frozenset({INITED, WAIT_FOR_RETRY, SCHEDULED})
_QUEUE_POSITION = re.compile(QUEUE_POSITION_PATTERN)
_ERROR_LINES_KEPT = 10
_MAX_RUNNING_PROGRESS = 0.99
_EXEC_ID_SEARCH_PAGES = 10
_EXEC_ID_SEARCH_PAGE_SIZE = 100


def expand_engine(engine: str, versions: Mapping[str, str]) -> str:
    """`spark` -> `spark-3.2.1` (the configured default version); `spark-2.4.3` stays as given."""
    engine = engine.strip()
    if "-" in engine:
        return engine
    if engine not in versions:
        raise ValueError(
            f"No default version is known for engine {engine!r}: pass it with its version, "
            f"e.g. engine='{engine}-1', or add it to client.engine_versions."
        )
    return f"{engine}-{versions[engine]}"


def default_run_type(engine_label: str) -> str:
    """The usual run type of an engine (`spark-3.2.1` -> `sql`, `hive` -> `hql`)."""
    engine_type = engine_label.split("-", 1)[0]
    if engine_type not in DEFAULT_RUN_TYPES:
        raise ValueError(
            f"No default run type is known for engine {engine_type!r}: pass run_type=, "
            f"e.g. run_type='sql'."
        )
    return DEFAULT_RUN_TYPES[engine_type]


def build_submit_body(
    code: str,
    *,
    engine_label: str,
    run_type: str,
    user_creator: str | None,
    variables: Mapping[str, Any] | None = None,
    runtime: Mapping[str, Any] | None = None,
    startup: Mapping[str, Any] | None = None,
    source: Mapping[str, Any] | None = None,
    labels: Mapping[str, Any] | None = None,
) -> dict:
    """The `entrance/submit` body (CONTRACT §5.1); extra `labels` override the computed ones.

    Without a user (no credentials) `userCreator` is left out and Linkis picks the login user.
    """
    computed = {"engineType": engine_label, "userCreator": user_creator, "codeType": run_type}
    return {
        "executionContent": {"code": code, "runType": run_type},
        "params": {
            "variable": dict(variables or {}),
            "configuration": {"startup": dict(startup or {}), "runtime": dict(runtime or {})},
        },
        "labels": {**{k: v for k, v in computed.items() if v}, **(labels or {})},
        "source": dict(DEFAULT_SOURCE if source is None else source),
    }


def clamp_progress(shown: float, reported: float, final: bool) -> float:
    """The progress to show next: never below what was shown, below 1.0 until the job is final
    (Linkis reports 0.99 or even rolls back while a job runs)."""
    if final:
        return 1.0
    return min(max(shown, reported, 0.0), _MAX_RUNNING_PROGRESS)


def queue_position(lines: list[str]) -> int | None:
    """Jobs ahead in the queue, from the last queue-position line among `lines`, if any."""
    for line in reversed(lines):
        match = _QUEUE_POSITION.search(line)
        if match:
            return int(match.group(1))
    return None


def _empty_log() -> dict[str, list[str]]:
    return {level: [] for level in LOG_LEVELS}


@dataclass(frozen=True)
class Snapshot:
    """What a job looked like after one poll round; the display layer renders these.

    `progress` is clamped to [0, 1], never decreases within a job and is 1.0 only when `final`.
    `queue_position` (jobs ahead) is known only while the job waits. `new_log` holds this
    round's new lines by level ("error", "warn", "info", "all").
    """

    exec_id: str
    task_id: int
    state: str
    progress: float
    stages: tuple[StageProgress, ...] = ()
    resources: ResourceUsage | None = None
    queue_position: int | None = None
    new_log: dict[str, list[str]] = field(default_factory=_empty_log)
    elapsed: float = 0.0
    final: bool = False
    warning: str | None = None


class Job:
    """A submitted (or attached) Linkis job: wait for it, watch it, kill it, read its results.

    Poll pacing is tunable per job through the attributes below (seconds).
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
    ) -> None:
        self.client = client
        self.exec_id = exec_id
        self.task_id = int(task_id)
        self.engine = engine
        self.run_type = run_type
        self.code = code
        self.creator = creator
        self.state = state
        self.progress = 0.0
        self.last_snapshot: Snapshot | None = None
        self.kill_report: str | None = None
        self._levels = _empty_log()
        self.log_lines: list[str] = self._levels["all"]
        self._started = time.monotonic()
        self._last_change = self._started
        self._from_line = 1
        self._held = True  # the entrance still answers for this job
        self._queue_position: int | None = None
        self._raw_progress = 0.0
        self._quiet_rounds = 0  # rounds in a row in which nothing moved
        self._stages: tuple[StageProgress, ...] = ()
        self._resources: ResourceUsage | None = None
        self._info: TaskInfo | None = None
        self._results: tuple[tuple, list[ResultSet]] | None = None

    @classmethod
    def from_task(cls, client: LinkisRestClient, info: TaskInfo) -> Job:
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
        )
        job._info = info
        return job

    def __repr__(self) -> str:
        return (
            f"<Job task {self.task_id} {self.state} {self.progress:.0%} "
            f"engine={self.engine} exec_id={self.exec_id}>"
        )

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
        if self.last_snapshot is not None and self.last_snapshot.final:
            return replace(self.last_snapshot, new_log=_empty_log(), elapsed=self._elapsed())
        state = self._read_state()
        running = state not in TERMINAL_STATES
        moved = state != self.state
        read_progress = read_log = watched or not running
        if watched and running and not moved and self._quiet_rounds:
            # Nothing moved last round: read the progress and the log in turns.
            read_progress = self._quiet_rounds % 2 == 1
            read_log = not read_progress
        if read_progress and running and self._held:
            moved = self._read_progress() or moved
        new_log = self._read_new_log(state) if read_log else _empty_log()
        moved = moved or bool(new_log["all"])
        self._quiet_rounds = 0 if moved else self._quiet_rounds + 1
        return self._record(state, new_log)

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
        one-line report as `exc.linkis_report` (also `job.kill_report`). A job ending Failed,
        Cancelled or Timeout raises LinkisJobError unless `raise_on_failure` is False.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        watched = on_update is not None
        fastest = self.poll_min if watched else min(self.poll_min, self.poll_min_unwatched)
        interval = fastest
        unreachable_since: float | None = None
        try:
            while True:
                previous = self.last_snapshot
                try:
                    snapshot = self.refresh(watched=watched)
                    unreachable_since = None
                except LinkisTransportError as err:
                    unreachable_since = unreachable_since or time.monotonic()
                    snapshot = self._unreachable_snapshot(err, unreachable_since)
                wanted = snapshot is not None and (snapshot.final or _differs(previous, snapshot))
                if on_update is not None and wanted:
                    on_update(snapshot)
                if self.done:
                    break
                interval = self._next_interval(interval, previous, snapshot, fastest)
                if not watched:  # keeps the lag a small share of the job's duration
                    interval = min(interval, max(fastest, self.poll_lag_ratio * self._elapsed()))
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise LinkisTimeoutError(
                            task_id=self.task_id,
                            exec_id=self.exec_id,
                            waited_s=timeout,
                            state=self.state,
                        )
                    interval = min(interval, remaining)
                time.sleep(interval)
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
            error_lines=self._levels["error"][-_ERROR_LINES_KEPT:],
        )

    def _elapsed(self) -> float:
        return time.monotonic() - self._started

    def _read_state(self) -> str:
        """The job's state: from the entrance while it holds the job, else from job history."""
        if self._held:
            try:
                return self.client.status(self.exec_id).state
            except (LinkisTransportError, LinkisAuthError):
                raise
            except LinkisError:
                self._held = False
        return self.client.status(self.exec_id, task_id=self.task_id).state

    def _read_progress(self) -> bool:
        """Read progress, stages and resources; True when progress or a stage moved."""
        try:
            reply = self.client.progress_with_resource(self.exec_id)
        except (LinkisTransportError, LinkisAuthError):
            raise
        except LinkisError:
            return False  # the job left the entrance between the two calls; status will say so
        stages = tuple(reply.stages)
        moved = reply.progress != self._raw_progress or stages != self._stages
        self._raw_progress = reply.progress
        self._stages = stages
        self._resources = reply.resources
        return moved

    def _read_new_log(self, state: str) -> dict[str, list[str]]:
        """Lines not seen yet: incrementally from the entrance, else from the persisted log.

        Once the job is final every remaining line is read before returning.
        """
        final = state in TERMINAL_STATES
        new = _empty_log()
        if self._held:
            self._from_line = self._read_entrance_log(self._from_line, new, to_end=final)
        if final and not self._held:
            self._add_persisted_tail(new)
        return new

    def _read_entrance_log(
        self, from_line: int, into: dict[str, list[str]], *, to_end: bool
    ) -> int:
        """Append the entrance's lines from `from_line` on to `into`: one page, or every page
        when `to_end`. Returns the next line to read; clears `_held` once the entrance lets the
        job go (the lines read until then stay in `into`)."""
        while True:
            try:
                chunk = self.client.log(self.exec_id, from_line=from_line, size=LOG_NEGATIVE_SIZE)
            except (LinkisTransportError, LinkisAuthError):
                raise
            except LinkisError:
                self._held = False
                return from_line
            for level in LOG_LEVELS:
                into[level].extend(getattr(chunk, level))
            consumed = chunk.from_line - from_line
            from_line = max(from_line, chunk.from_line)
            if not to_end or consumed < LOG_NEGATIVE_SIZE:
                return from_line

    def _add_persisted_tail(self, new: dict[str, list[str]]) -> None:
        """Append the persisted log's lines past those already seen (entrance lines + `new`)."""
        info = self.info()
        if not info.log_path:
            return
        chunk = self.client.open_log(info.log_path)
        seen = len(self.log_lines) + len(new["all"])
        tail = chunk.all[seen:]
        if not tail:
            return
        new["all"].extend(tail)
        tail_set = set(tail)
        for level in ("error", "warn", "info"):
            new[level].extend(line for line in getattr(chunk, level) if line in tail_set)

    def _record(self, state: str, new_log: dict[str, list[str]]) -> Snapshot:
        """Fold one round into the job's state and return the round's snapshot."""
        now = time.monotonic()
        final = state in TERMINAL_STATES
        progress = clamp_progress(self.progress, self._raw_progress, final)
        position = queue_position(new_log["all"])
        if position is not None:
            self._queue_position = position
        for level in LOG_LEVELS:
            self._levels[level].extend(new_log[level])
        if state != self.state or progress != self.progress or new_log["all"]:
            self._last_change = now
        self.state, self.progress = state, progress
        warning = None
        if not final and now - self._last_change >= self.stale_after:
            warning = (
                f"Linkis job {self.task_id} ({self.exec_id}) is still {state} with no change "
                f"for {now - self._last_change:.0f} s; press Ctrl-C to kill it, or leave it "
                f"and `%linkis attach {self.task_id}` later."
            )
        snapshot = Snapshot(
            exec_id=self.exec_id,
            task_id=self.task_id,
            state=state,
            progress=progress,
            stages=self._stages,
            resources=None if final else self._resources,
            queue_position=self._queue_position if state in WAITING_STATES else None,
            new_log=new_log,
            elapsed=now - self._started,
            final=final,
            warning=warning,
        )
        self.last_snapshot = snapshot
        return snapshot

    def _unreachable_snapshot(self, err: LinkisTransportError, since: float) -> Snapshot | None:
        """After a failed poll: give up past the limit, warn past the warning threshold."""
        down = time.monotonic() - since
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
            new_log=_empty_log(),
            elapsed=self._elapsed(),
            warning=f"Linkis has not answered for {down:.0f} s ({err.message}); still trying.",
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
        if _moved(previous, snapshot):
            return max(fastest, min(interval * self.poll_backoff, self.poll_active_max))
        return min(interval * self.poll_backoff, self.poll_max)

    # -- kill ------------------------------------------------------------------------------

    def kill(self, wait: float = 5.0) -> str:
        """Kill the job and wait up to `wait` seconds for Cancelled; returns a one-line report."""
        ref = f"Linkis job {self.task_id}"
        try:
            state = self._read_state()
        except LinkisError as err:
            return f"Could not reach {ref} to kill it: {err}"
        if state in TERMINAL_STATES:
            self.state = state
            return f"{ref} already finished ({state}); nothing to kill."
        try:
            self.client.kill(self.exec_id, task_id=self.task_id)
        except LinkisError as err:
            return f"Kill of {ref} failed: {err} It is still {state}."
        if wait <= 0:
            return f"Kill requested for {ref} ({self.exec_id}); not waiting for confirmation."
        deadline = time.monotonic() + wait
        while state not in TERMINAL_STATES and time.monotonic() < deadline:
            time.sleep(0.2)
            try:
                state = self._read_state()
            except LinkisTransportError:
                continue
        if state == CANCELLED:
            self.state = state
            return f"Killed {ref}: Linkis confirms it Cancelled."
        if state in TERMINAL_STATES:
            self.state = state
            return f"{ref} already finished ({state}) before the kill took effect."
        return (
            f"Kill requested for {ref}, but it is still {state} after {wait:g} s: the kill "
            f"failed or is slow; check with `%linkis attach {self.task_id}`."
        )

    # -- history, log, results -------------------------------------------------------------

    def info(self) -> TaskInfo:
        """The job-history row (state, errCode/errDesc, log path, result location, ...)."""
        self._info = self.client.jobhistory_get(self.task_id)
        return self._info

    def log(self, level: str = "all", tail: int | None = None) -> list[str]:
        """The job's whole log at `level`: from the entrance while it holds the job, else the
        persisted log file. `tail` keeps only the last lines."""
        if level not in LOG_LEVELS:
            raise ValueError(f"level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
        chunk = self._full_entrance_log() if self._held else None
        if chunk is None:
            info = self.info()
            if not info.log_path:
                raise LinkisNotFoundError(f"Linkis job {self.task_id} has no log path yet")
            chunk = self.client.open_log(info.log_path)
        lines = getattr(chunk, level)
        return lines if tail is None else lines[max(len(lines) - tail, 0) :]

    def _full_entrance_log(self) -> LogChunk | None:
        """Every line from the entrance, or None once it no longer holds the job."""
        lines = _empty_log()
        next_line = self._read_entrance_log(1, lines, to_end=True)
        return LogChunk(**lines, from_line=next_line, raw={}) if self._held else None

    def _settled_info(self) -> TaskInfo:
        """The history row. Job history may trail the entrance for a moment after a job ends:
        once the entrance has said so, wait up to `history_catch_up` seconds for it to agree."""
        info = self.info()
        deadline = time.monotonic() + self.history_catch_up
        while info.status not in TERMINAL_STATES and self.done and time.monotonic() < deadline:
            time.sleep(0.05)
            info = self.info()
        return info

    def _ended_info(self) -> TaskInfo:
        """The history row, after making sure the job has ended (results need that)."""
        info = self._settled_info()
        if info.status not in TERMINAL_STATES:
            raise LinkisError(
                f"Linkis job {self.task_id} is still {info.status}: wait for it with "
                f"job.wait() before reading its results"
            )
        return info

    def result_paths(self) -> list[str]:
        """The job's result-set files, in result order (empty when it wrote none)."""
        info = self._ended_info()
        if not info.result_location:
            return []
        tree = self.client.dir_file_trees(info.result_location)
        return tree.result_paths() if tree is not None else []

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
        from .results import engine_cap_reason, read_result_sets

        key = (limit or None, page_size, decimal)
        if self._results is not None and self._results[0] == key:
            return self._results[1]
        paths = self.result_paths()
        info = self._info

        def cap_reason() -> str | None:
            warn_lines = self._levels["warn"] if self.log_lines else self.log("warn")
            creator = info.creator if info else self.creator
            run_type = info.run_type if info else self.run_type
            return engine_cap_reason(creator, run_type, warn_lines)

        sets = read_result_sets(
            self.client,
            paths,
            limit=limit,
            page_size=page_size,
            decimal=decimal,
            cap_reason=cap_reason,
        )
        self._results = (key, sets)
        return sets

    def result(
        self,
        *,
        limit: int | None = None,
        page_size: int = OPEN_FILE_DEFAULT_PAGE_SIZE,
        decimal: str = "decimal",
    ) -> pd.DataFrame:
        """The last table result as a DataFrame."""
        sets = self.results(limit=limit, page_size=page_size, decimal=decimal)
        tables = [s for s in sets if s.kind == "table"]
        if not tables:
            kinds = ", ".join(s.kind for s in sets) or "nothing"
            raise LinkisError(
                f"Linkis job {self.task_id} produced no table result (it produced: {kinds}); "
                f"see job.results() for every result set"
            )
        return tables[-1].data

    def download(
        self, path: str | Path, *, format: str = "csv", index: int = -1, **options
    ) -> Path:
        """Save one result set (default the last) as csv or xlsx via `resultsetToExcel`.

        `options` go to the client's `resultset_to_excel` (charset, separator, null_value,
        limit, file_name, on_progress).
        """
        paths = self.result_paths()
        if not paths:
            raise LinkisNotFoundError(f"Linkis job {self.task_id} wrote no result set to download")
        try:
            remote = paths[index]
        except IndexError:
            raise LinkisError(
                f"Linkis job {self.task_id} has {len(paths)} result set(s); index {index} is "
                f"out of range"
            ) from None
        return self.client.resultset_to_excel(remote, path, output_type=format, **options)


def _moved(previous: Snapshot, snapshot: Snapshot) -> bool:
    """Whether the job itself made headway: new log lines, progress, stages or queue position."""
    return any(snapshot.new_log.values()) or (
        previous.progress,
        previous.stages,
        previous.queue_position,
    ) != (snapshot.progress, snapshot.stages, snapshot.queue_position)


def _differs(previous: Snapshot | None, snapshot: Snapshot) -> bool:
    """Whether a round brought anything worth showing (headway, state, resources, warning)."""
    if previous is None or _moved(previous, snapshot):
        return True
    return (previous.state, previous.resources, previous.warning) != (
        snapshot.state,
        snapshot.resources,
        snapshot.warning,
    )


class LinkisClient(LinkisRestClient):
    """The Linkis client users import: the REST client plus `submit()` and `job()`.

    `engine_versions` maps a bare engine type to the version it expands to (defaults as in
    Linkis 1.7.0); change it per client, e.g. `client.engine_versions["spark"] = "2.4.3"`.
    """

    def __init__(self, *args: Any, engine_versions: Mapping[str, str] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.engine_versions: dict[str, str] = {
            **DEFAULT_ENGINE_VERSIONS,
            **(engine_versions or {}),
        }

    def submit(
        self,
        code: str,
        *,
        engine: str = "spark",
        run_type: str | None = None,
        creator: str = DEFAULT_CREATOR,
        variables: dict | None = None,
        runtime: dict | None = None,
        startup: dict | None = None,
        source: dict | None = None,
        labels: dict | None = None,
    ) -> Job:
        """Submit `code` to Linkis and return its Job (call `.wait()` on it)."""
        engine_label = expand_engine(engine, self.engine_versions)
        run_type = run_type or default_run_type(engine_label)
        body = build_submit_body(
            code,
            engine_label=engine_label,
            run_type=run_type,
            user_creator=f"{self.user}-{creator}" if self.user else None,
            variables=variables,
            runtime=runtime,
            startup=startup,
            source=source,
            labels=labels,
        )
        submitted = self.entrance_submit(body)
        return Job(
            self,
            submitted.exec_id,
            submitted.task_id,
            engine=engine_label,
            run_type=run_type,
            code=code,
            creator=creator,
        )

    def job(self, job_id: int | str) -> Job:
        """Attach to an existing job by task id (int or digits) or by exec id."""
        text = str(job_id).strip()
        if isinstance(job_id, int) or text.isdigit():
            return Job.from_task(self, self.jobhistory_get(int(text)))
        return Job.from_task(self, self._task_for_exec_id(text))

    def _task_for_exec_id(self, exec_id: str) -> TaskInfo:
        """Find an exec id's history row (the entrance has no exec id -> task id lookup)."""
        for page in range(1, _EXEC_ID_SEARCH_PAGES + 1):
            found = self.jobhistory_list(page=page, page_size=_EXEC_ID_SEARCH_PAGE_SIZE)
            for task in found.tasks:
                if exec_id in (task.stronger_exec_id, task.exec_id):
                    return task
            if page * _EXEC_ID_SEARCH_PAGE_SIZE >= found.total or not found.tasks:
                break
        raise LinkisNotFoundError(
            f"No job with exec id {exec_id!r} among your latest "
            f"{_EXEC_ID_SEARCH_PAGES * _EXEC_ID_SEARCH_PAGE_SIZE} jobs; attach by task id "
            f"instead: client.job(<task id>)"
        )
