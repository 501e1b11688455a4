"""`Snapshot`: what a job looked like after one poll round, and the rules that shape it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..client import NextStep, ResourceUsage, StageProgress
from ..wire import INITED, LOG_LEVELS, QUEUE_POSITION_PATTERN, SCHEDULED, WAIT_FOR_RETRY

WAITING_STATES = frozenset({INITED, WAIT_FOR_RETRY, SCHEDULED})
_QUEUE_POSITION = re.compile(QUEUE_POSITION_PATTERN)
_MAX_RUNNING_PROGRESS = 0.99


def empty_log() -> dict[str, list[str]]:
    """No lines at any level: {"error": [], "warn": [], "info": [], "all": []}."""
    return {level: [] for level in LOG_LEVELS}


@dataclass(frozen=True)
class Snapshot:
    """What a job looked like after one poll round; the display layer renders these.

    `progress` is clamped to [0, 1], never decreases within a job and is 1.0 only when `final`.
    `queue_position` (jobs ahead) is known only while the job waits. `new_log` holds this
    round's new lines by level ("error", "warn", "info", "all"). `warning` is a plain sentence;
    `next_steps` what the user can do about it, which each front end phrases in its own
    commands (`phrase_steps(snapshot.next_steps, commands)`).
    """

    exec_id: str
    task_id: int
    state: str
    progress: float
    stages: tuple[StageProgress, ...] = ()
    resources: ResourceUsage | None = None
    queue_position: int | None = None
    new_log: dict[str, list[str]] = field(default_factory=empty_log)
    elapsed: float = 0.0
    final: bool = False
    warning: str | None = None
    next_steps: tuple[NextStep, ...] = ()


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


def moved(previous: Snapshot, snapshot: Snapshot) -> bool:
    """Whether the job itself made headway: new log lines, progress, stages or queue position."""
    return any(snapshot.new_log.values()) or (
        previous.progress,
        previous.stages,
        previous.queue_position,
    ) != (snapshot.progress, snapshot.stages, snapshot.queue_position)


def differs(previous: Snapshot | None, snapshot: Snapshot) -> bool:
    """Whether a round brought anything worth showing (headway, state, resources, warning)."""
    if previous is None or moved(previous, snapshot):
        return True
    return (previous.state, previous.resources, previous.warning) != (
        snapshot.state,
        snapshot.resources,
        snapshot.warning,
    )
