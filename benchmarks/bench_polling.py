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
    duration: float  # server costTime
    lag: float
    wait_requests: int
    paths: dict[str, int]


def poll_once(server: Server, sleep: float) -> PollRun:
    """Submit one sleep job, `wait()` for it, and read its end time back from job history."""
    client = server.client()
    adapter = record_requests(client)
    job = client.submit(f"import time\ntime.sleep({sleep})", engine="python", creator=BENCH_CREATOR)
    submitted = len(adapter.records)
    job.wait(timeout=sleep + 120)
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
        duration=info.cost_time_ms / 1000,
        lag=returned - info.updated_time.timestamp(),
        wait_requests=len(waited),
        paths=paths,
    )


def measure_polling(server: Server, plan: list[tuple[float, int]]) -> Section:
    """Section 3. `plan` is [(sleep seconds, repetitions)]; the 20 s jobs run in a background
    thread while the shorter ones run, so the section costs about the long jobs' time."""
    section = Section("polling", "3. Polling (`job.wait()` lag and requests per job)")
    runs: dict[float, list[PollRun]] = {sleep: [] for sleep, _ in plan}
    errors: list[BaseException] = []

    def run_plan(items: list[tuple[float, int]]) -> None:
        try:
            for sleep, reps in items:
                for _ in range(reps):
                    runs[sleep].append(poll_once(server, sleep))
        except BaseException as exc:
            errors.append(exc)

    long_items = [item for item in plan if item[0] >= LONG_JOB]
    background = threading.Thread(target=run_plan, args=(long_items,), daemon=True)
    background.start()
    run_plan([item for item in plan if item[0] < LONG_JOB])
    background.join()
    if errors:
        raise errors[0]
    rows = []
    for sleep, reps in plan:
        done = runs[sleep]
        duration = median([r.duration for r in done])
        lag = median([r.lag for r in done])
        requests_ = median([r.wait_requests for r in done])
        kinds = sorted({k for r in done for k in r.paths})
        split = ", ".join(f"{k} {median([r.paths.get(k, 0) for r in done]):g}" for k in kinds)
        share = lag / duration
        rows.append(
            [
                f"{sleep:g} s",
                reps,
                secs(duration),
                secs(lag),
                f"**{share:.1%}**",
                f"max {secs(max(r.lag for r in done))}",
                f"**{requests_:g}**",
                split,
            ]
        )
        if sleep >= 2:
            section.target(
                f"lag / duration, {sleep:g} s job",
                f"{share:.1%}",
                f"< {LAG_TARGET:.0%}",
                share < LAG_TARGET,
            )
        if sleep >= LONG_JOB:
            section.target(
                f"requests while waiting, {sleep:g} s job",
                f"{requests_:g}",
                f"< {REQUEST_TARGET}",
                requests_ < REQUEST_TARGET,
            )
    section.table(
        [
            "job",
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
        "`wait()` with no `on_update`, default poll settings; the submit request is not counted. "
        "The 20 s jobs ran alongside the shorter ones (the server runs 2 jobs at once)."
    )
    return section
