"""`JobPoller`: reads a job one round at a time and folds each round into a `Snapshot`.

A round reads the status, then progress and the new log lines. The entrance answers for a job
only while it holds it; after that the status comes from job history and the log from the
persisted log file (docs/linkis-rest.md, "Logs").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ..client import (
    ATTACH,
    LinkisAuthError,
    LinkisError,
    LinkisRestClient,
    LinkisTransportError,
    LogChunk,
    NextStep,
    ResourceUsage,
    StageProgress,
    TaskInfo,
)
from ..wire import LOG_LEVELS, LOG_NEGATIVE_SIZE, TERMINAL_STATES
from .clock import Clock
from .snapshot import WAITING_STATES, Snapshot, clamp_progress, empty_log, queue_position


class JobPoller:
    """The polling state of one job: what was read so far and where to read on.

    `info` reads the job-history row (for the persisted log's path once the entrance lets go).
    """

    def __init__(
        self,
        client: LinkisRestClient,
        exec_id: str,
        task_id: int,
        *,
        state: str,
        clock: Clock,
        info: Callable[[], TaskInfo],
    ) -> None:
        self.client = client
        self.exec_id = exec_id
        self.task_id = task_id
        self.clock = clock
        self.state = state
        self.progress = 0.0
        self.last_snapshot: Snapshot | None = None
        self.levels = empty_log()
        self.held = True  # the entrance still answers for this job
        self.started = clock.monotonic()
        self._info = info
        self._last_change = self.started
        self._from_line = 1
        self._queue_position: int | None = None
        self._raw_progress = 0.0
        self._quiet_rounds = 0  # rounds in a row in which nothing moved
        self._stages: tuple[StageProgress, ...] = ()
        self._resources: ResourceUsage | None = None

    def elapsed(self) -> float:
        return self.clock.monotonic() - self.started

    def refresh(self, *, watched: bool, stale_after: float) -> Snapshot:
        """One poll round (see `Job.refresh`); warns when nothing changed for `stale_after` s."""
        if self.last_snapshot is not None and self.last_snapshot.final:
            return replace(self.last_snapshot, new_log=empty_log(), elapsed=self.elapsed())
        state = self.read_state()
        running = state not in TERMINAL_STATES
        moved = state != self.state
        read_progress = read_log = watched or not running
        if watched and running and not moved and self._quiet_rounds:
            # Nothing moved last round: read the progress and the log in turns.
            read_progress = self._quiet_rounds % 2 == 1
            read_log = not read_progress
        if read_progress and running and self.held:
            moved = self._read_progress() or moved
        new_log = self._read_new_log(state) if read_log else empty_log()
        moved = moved or bool(new_log["all"])
        self._quiet_rounds = 0 if moved else self._quiet_rounds + 1
        return self._record(state, new_log, stale_after)

    def read_state(self) -> str:
        """The job's state: from the entrance while it holds the job, else from job history."""
        if self.held:
            try:
                return self.client.status(self.exec_id).state
            except (LinkisTransportError, LinkisAuthError):
                raise
            except LinkisError:
                self.held = False
        return self.client.status(self.exec_id, task_id=self.task_id).state

    def whole_entrance_log(self) -> LogChunk | None:
        """Every line from the entrance, or None once it no longer holds the job."""
        lines = empty_log()
        next_line = self._read_entrance_log(1, lines, to_end=True)
        return LogChunk(**lines, from_line=next_line, raw={}) if self.held else None

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
        new = empty_log()
        if self.held:
            self._from_line = self._read_entrance_log(self._from_line, new, to_end=final)
        if final and not self.held:
            self._add_persisted_tail(new)
        return new

    def _read_entrance_log(
        self, from_line: int, into: dict[str, list[str]], *, to_end: bool
    ) -> int:
        """Append the entrance's lines from `from_line` on to `into`: one page, or every page
        when `to_end`. Returns the next line to read; clears `held` once the entrance lets the
        job go (the lines read until then stay in `into`)."""
        while True:
            try:
                chunk = self.client.log(self.exec_id, from_line=from_line, size=LOG_NEGATIVE_SIZE)
            except (LinkisTransportError, LinkisAuthError):
                raise
            except LinkisError:
                self.held = False
                return from_line
            for level in LOG_LEVELS:
                into[level].extend(getattr(chunk, level))
            consumed = chunk.from_line - from_line
            from_line = max(from_line, chunk.from_line)
            if not to_end or consumed < LOG_NEGATIVE_SIZE:
                return from_line

    def _add_persisted_tail(self, new: dict[str, list[str]]) -> None:
        """Append the persisted log's lines past those already seen (entrance lines + `new`)."""
        info = self._info()
        if not info.log_path:
            return
        chunk = self.client.open_log(info.log_path)
        seen = len(self.levels["all"]) + len(new["all"])
        tail = chunk.all[seen:]
        if not tail:
            return
        new["all"].extend(tail)
        tail_set = set(tail)
        for level in ("error", "warn", "info"):
            new[level].extend(line for line in getattr(chunk, level) if line in tail_set)

    def _record(self, state: str, new_log: dict[str, list[str]], stale_after: float) -> Snapshot:
        """Fold one round into the polling state and return the round's snapshot."""
        now = self.clock.monotonic()
        final = state in TERMINAL_STATES
        progress = clamp_progress(self.progress, self._raw_progress, final)
        position = queue_position(new_log["all"])
        if position is not None:
            self._queue_position = position
        for level in LOG_LEVELS:
            self.levels[level].extend(new_log[level])
        if state != self.state or progress != self.progress or new_log["all"]:
            self._last_change = now
        self.state, self.progress = state, progress
        warning: str | None = None
        steps: tuple[NextStep, ...] = ()
        if not final and now - self._last_change >= stale_after:
            warning = (
                f"Linkis job {self.task_id} ({self.exec_id}) is still {state} with no change "
                f"for {now - self._last_change:.0f} s; press Ctrl-C to kill it, or leave it "
                f"running."
            )
            steps = (NextStep(ATTACH, self.task_id, "to attach to it later"),)
        snapshot = Snapshot(
            exec_id=self.exec_id,
            task_id=self.task_id,
            state=state,
            progress=progress,
            stages=self._stages,
            resources=None if final else self._resources,
            queue_position=self._queue_position if state in WAITING_STATES else None,
            new_log=new_log,
            elapsed=now - self.started,
            final=final,
            warning=warning,
            next_steps=steps,
        )
        self.last_snapshot = snapshot
        return snapshot
