"""Polling logic that needs time to pass, on a fake clock: no real waiting, no server."""

from __future__ import annotations

import re

import pytest

from linkis_kernel.client import (
    ATTACH,
    PYTHON_COMMANDS,
    JobStatus,
    LinkisTimeoutError,
    LinkisTransportError,
    LogChunk,
    NextStep,
    Progress,
)
from linkis_kernel.job import Job, Snapshot
from linkis_kernel.runner import CLI_COMMANDS
from linkis_kernel.wire import CANCELLED, RUNNING


class FakeClock:
    """Time moves only when something sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class StuckEntrance:
    """Stands in for the REST client: the job stays in `state` with no progress and no log,
    or every status call fails when `down`; a kill is accepted but takes effect only when
    `kill_works`."""

    def __init__(self, state: str = RUNNING, *, down: bool = False, kill_works: bool = False):
        self.state = state
        self.down = down
        self.kill_works = kill_works

    def status(self, exec_id: str, task_id: int | None = None) -> JobStatus:
        if self.down:
            raise LinkisTransportError("could not connect to the server (ConnectionError)")
        return JobStatus(state=self.state, exec_id=exec_id, task_id=task_id, raw={})

    def progress_with_resource(self, exec_id: str) -> Progress:
        return Progress(progress=0.0, stages=[], resources=None, raw={})

    def log(self, exec_id: str, from_line: int = 0, size: int = 100) -> LogChunk:
        return LogChunk(error=[], warn=[], info=[], all=[], from_line=from_line, raw={})

    def kill(self, exec_id: str, task_id: int | None = None) -> str:
        if self.kill_works:
            self.state = CANCELLED
        return ""


def stuck_job(entrance: StuckEntrance, clock: FakeClock) -> Job:
    return Job(entrance, "exec_id-7", 7, state=RUNNING, clock=clock)  # type: ignore[arg-type]


def test_a_job_with_no_change_is_warned_about_once_stale_and_the_wait_times_out() -> None:
    clock = FakeClock()
    job = stuck_job(StuckEntrance(), clock)
    snapshots: list[Snapshot] = []
    with pytest.raises(LinkisTimeoutError) as caught:
        job.wait(timeout=job.stale_after + 60, on_update=snapshots.append)
    assert clock.now - 1000.0 == pytest.approx(job.stale_after + 60)
    assert max(clock.sleeps) == job.poll_max
    warned = [s for s in snapshots if s.warning]
    assert warned and warned[0].elapsed >= job.stale_after
    assert all(s.elapsed < job.stale_after for s in snapshots if not s.warning)
    assert re.fullmatch(
        r"Linkis job 7 \(exec_id-7\) is still Running with no change for 60\d s; press Ctrl-C "
        r"to kill it, or leave it running\.",
        warned[0].warning or "",
    )
    assert warned[0].next_steps == (NextStep(ATTACH, 7, "to attach to it later"),)
    assert "`linkis-kernel attach 7` to re-attach" in caught.value.describe(CLI_COMMANDS)


def test_an_unreachable_server_is_warned_about_then_given_up_on() -> None:
    clock = FakeClock()
    job = stuck_job(StuckEntrance(down=True), clock)
    snapshots: list[Snapshot] = []
    with pytest.raises(LinkisTransportError) as caught:
        job.wait(on_update=snapshots.append)
    down_for = clock.now - 1000.0
    assert job.unreachable_give_up_after <= down_for < job.unreachable_give_up_after + 3
    assert snapshots and all("has not answered" in (s.warning or "") for s in snapshots)
    assert snapshots[0].elapsed >= job.unreachable_warn_after
    assert max(clock.sleeps) == job.poll_max  # backs off while the server is away
    error = caught.value
    assert "Lost contact with Linkis for 30" in error.message and "job 7" in error.message
    assert "`linkis-kernel attach 7` to attach to it later" in error.describe(CLI_COMMANDS)


def test_an_unconfirmed_kill_reports_what_to_do_in_each_front_end() -> None:
    clock = FakeClock()
    job = stuck_job(StuckEntrance(), clock)
    report = job.kill(wait=5)
    assert clock.now - 1000.0 == pytest.approx(5, abs=0.2)
    assert report.text == (
        "Kill requested for Linkis job 7, but it is still Running after 5 s: the kill failed or "
        "is slow."
    )
    assert report.describe(CLI_COMMANDS).endswith("Run `linkis-kernel attach 7` to check on it.")
    assert str(report) == report.describe(PYTHON_COMMANDS)
    assert "`client.job(7)` to check on it" in str(report)


def test_ctrl_c_kills_and_reports_without_waiting_for_real() -> None:
    clock = FakeClock()
    entrance = StuckEntrance(kill_works=True)
    job = stuck_job(entrance, clock)

    def interrupt(snapshot: Snapshot) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as caught:
        job.wait(on_update=interrupt)
    report = caught.value.linkis_report  # type: ignore[attr-defined]
    assert report == "Killed Linkis job 7: Linkis confirms it Cancelled." == job.kill_report
    assert report.next_steps == () and job.state == CANCELLED


def test_an_unwatched_wait_keeps_its_lag_a_share_of_the_time_waited() -> None:
    clock = FakeClock()
    job = stuck_job(StuckEntrance(), clock)
    with pytest.raises(LinkisTimeoutError):
        job.wait(timeout=4)
    waited = 0.0
    assert len(clock.sleeps) > 2, clock.sleeps
    for pause in clock.sleeps[:-1]:
        assert pause <= max(job.poll_min_unwatched, job.poll_lag_ratio * waited) + 1e-9
        waited += pause
