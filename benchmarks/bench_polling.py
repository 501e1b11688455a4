"""Benchmark 3: how late `job.wait()` learns that a job ended, and how many requests it sends.

Jobs are python `time.sleep(x)` jobs on the embedded server. The lag is the client's clock when
`wait()` returned minus the job's `updatedTime` in job history (written when the job ended);
both clocks are this machine's. Requests are counted by an adapter mounted on the client's
session; the client itself is unchanged.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from benchlib import BENCH_CREATOR, Section, Server, median, record_requests, secs

LAG_TARGET = 0.10  # of the job's duration, for jobs of 2 s and more
REQUEST_TARGET = 40  # for the 20 s job
LONG_JOB = 20.0


@dataclass
class PollRun:
    sleep: float
    watched: bool
    duration: float  # server costTime
    lag: float
    wait_requests: int
    paths: dict[str, int]


def poll_once(server: Server, sleep: float, watched: bool) -> PollRun:
    """Submit one sleep job, `wait()` for it, and read its end time back from job history.

    `watched` passes an `on_update` callback, as `%%linkis` does to show progress and log."""
    client = server.client()
    adapter = record_requests(client)
    job = client.submit(f"import time\ntime.sleep({sleep})", engine="python", creator=BENCH_CREATOR)
    submitted = len(adapter.records)
    job.wait(timeout=sleep + 120, on_update=(lambda _: None) if watched else None)
    returned = time.time()
    waited = adapter.records[submitted:]
    info = client.jobhistory_get(job.task_id)
    client.close()
    if info.updated_time is None or info.cost_time_ms is None:
        raise RuntimeError(f"job {job.task_id} has no updatedTime/costTime in history")
    paths: dict[str, int] = {}
    for record in waited:
        kind = record.path.rsplit("/", 1)[-1]
        paths[kind] = paths.get(kind, 0) + 1
    return PollRun(
        sleep=sleep,
        watched=watched,
        duration=info.cost_time_ms / 1000,
        lag=returned - info.updated_time.timestamp(),
        wait_requests=len(waited),
        paths=paths,
    )


def measure_polling(server: Server, plan: list[tuple[float, int]]) -> Section:
    """Section 3. `plan` is [(sleep seconds, repetitions)]; each job runs once with a plain
    `wait()` and once watched. The 20 s jobs run in two background threads (plain, watched)
    while the shorter ones run, so the section costs about the long jobs' time."""
    section = Section("polling", "3. Polling (`job.wait()` lag and requests per job)")
    variants = (False, True)
    runs: dict[tuple[float, bool], list[PollRun]] = {
        (sleep, watched): [] for sleep, _ in plan for watched in variants
    }
    errors: list[BaseException] = []

    def run_plan(items: list[tuple[float, int]], watched_variants: tuple[bool, ...]) -> None:
        try:
            for sleep, reps in items:
                for _ in range(reps):
                    for watched in watched_variants:
                        runs[sleep, watched].append(poll_once(server, sleep, watched))
        except BaseException as exc:
            errors.append(exc)

    long_items = [item for item in plan if item[0] >= LONG_JOB]
    short_items = [item for item in plan if item[0] < LONG_JOB]
    background = [
        threading.Thread(target=run_plan, args=(long_items, (watched,)), daemon=True)
        for watched in variants
    ]
    for thread in background:
        thread.start()
    run_plan(short_items, variants)
    for thread in background:
        thread.join()
    if errors:
        raise errors[0]
    rows = []
    for sleep, reps in plan:
        for watched in variants:
            rows.append(_summarize(section, sleep, reps, watched, runs[sleep, watched]))
    section.table(
        [
            "job",
            "wait()",
            "reps",
            "server duration (costTime)",
            "lag median",
            "lag / duration",
            "lag max",
            "requests in wait()",
            "requests by endpoint (median)",
        ],
        rows,
    )
    section.note(
        "Default poll settings; the submit request is not counted. `watched` = `wait(on_update=f)`"
        " as `%%linkis` calls it; `plain` = `wait()`. The 20 s jobs ran alongside the shorter "
        "ones (the server runs up to 4 jobs at once)."
    )
    return section


def _summarize(
    section: Section, sleep: float, reps: int, watched: bool, done: list[PollRun]
) -> list[str]:
    """One table row for a job length and variant; adds the targets that apply to it."""
    variant = "watched" if watched else "plain"
    duration = median([r.duration for r in done])
    lag = median([r.lag for r in done])
    requests_ = median([r.wait_requests for r in done])
    kinds = sorted({k for r in done for k in r.paths})
    split = ", ".join(f"{k} {median([r.paths.get(k, 0) for r in done]):g}" for k in kinds)
    share = lag / duration
    if sleep >= 2:
        section.target(
            f"lag / duration, {sleep:g} s job, {variant}",
            f"{share:.1%}",
            f"< {LAG_TARGET:.0%}",
            share < LAG_TARGET,
        )
    if sleep >= LONG_JOB:
        section.target(
            f"requests while waiting, {sleep:g} s job, {variant}",
            f"{requests_:g}",
            f"< {REQUEST_TARGET}",
            requests_ < REQUEST_TARGET,
        )
    return [
        f"{sleep:g} s",
        variant,
        str(reps),
        secs(duration),
        secs(lag),
        f"**{share:.1%}**",
        secs(max(r.lag for r in done)),
        f"**{requests_:g}**",
        split,
    ]
