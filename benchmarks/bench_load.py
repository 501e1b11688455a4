"""Benchmark 6: many concurrent clients against one embedded server.

Each of N threads has its own `LinkisClient`; together they submit `select <n>` for n = 1..jobs
and `wait()` for each. Request latencies come from an adapter on every client's session. Job
history is then read back to check that every job is there exactly once and succeeded. Runs on a
server of its own, so that its RSS before and after is this load's alone.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import (
    STAND_IN_SPARK_ENV,
    RequestRecord,
    Section,
    Server,
    percentile,
    record_requests,
    start_server,
)

from linkis_kernel import wire

LOAD_CREATOR = "benchload"
HISTORY_PAGE = 100


@dataclass
class LoadRun:
    """What the client threads saw: every request, and number -> (task id, state) per job."""

    records: list[RequestRecord] = field(default_factory=list)
    tasks: dict[int, tuple[int, str]] = field(default_factory=dict)
    errors: list[BaseException] = field(default_factory=list)
    wall: float = 0.0


@dataclass
class HistoryCheck:
    """Job history against what was submitted."""

    rows: int
    lost: int
    duplicated: int
    unknown: int
    not_succeeded: int
    mismatched: int

    @property
    def clean(self) -> bool:
        """Every job in history exactly once, Succeed, under the task id its submit returned."""
        counts = (self.lost, self.duplicated, self.unknown, self.not_succeeded, self.mismatched)
        return not any(counts)


def run_client(server: Server, numbers: list[int], run: LoadRun) -> None:
    """One client thread: submit `select <n>` for each number and wait for each job."""
    try:
        client = server.client()
        adapter = record_requests(client)
        for number in numbers:
            job = client.submit(f"select {number}", engine="spark", creator=LOAD_CREATOR)
            job.wait(timeout=300)
            run.tasks[number] = (job.task_id, job.state)
        run.records.extend(adapter.records)
        client.close()
    except BaseException as exc:
        run.errors.append(exc)


def run_clients(server: Server, clients: int, jobs: int) -> LoadRun:
    """Jobs 1..`jobs` dealt round-robin to `clients` threads that run at once."""
    run = LoadRun()
    threads = [
        threading.Thread(
            target=run_client, args=(server, list(range(1 + i, jobs + 1, clients)), run)
        )
        for i in range(clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.wall = time.perf_counter() - started
    if run.errors:
        raise run.errors[0]
    return run


def history_rows(server: Server) -> list[tuple[int, str, str]]:
    """(task id, code, status) of every history row of the load's creator."""
    client = server.client()
    rows: list[tuple[int, str, str]] = []
    page = 1
    while True:
        found = client.jobhistory_list(creator=LOAD_CREATOR, page=page, page_size=HISTORY_PAGE)
        rows += [(t.task_id, (t.execution_code or "").strip(), t.status) for t in found.tasks]
        if not found.tasks or page * HISTORY_PAGE >= found.total:
            break
        page += 1
    client.close()
    return rows


def check_history(rows: list[tuple[int, str, str]], run: LoadRun, jobs: int) -> HistoryCheck:
    codes = Counter(code for _, code, _ in rows)
    expected = {f"select {n}" for n in range(1, jobs + 1)}
    recorded = {(task_id, code) for task_id, code, _ in rows}
    return HistoryCheck(
        rows=len(rows),
        lost=len(expected - set(codes)),
        duplicated=sum(count - 1 for count in codes.values() if count > 1),
        unknown=len(set(codes) - expected),
        not_succeeded=sum(1 for _, _, status in rows if status != wire.SUCCEED),
        mismatched=sum(
            1 for n, (task_id, _) in run.tasks.items() if (task_id, f"select {n}") not in recorded
        ),
    )


def _p50_p95(values: list[float]) -> str:
    return f"{percentile(values, 0.5) * 1000:.1f} / {percentile(values, 0.95) * 1000:.1f} ms"


def measure_load(clients: int, jobs: int) -> Section:
    """Section 6."""
    section = Section("load", f"6. Server load ({clients} concurrent clients, {jobs} SQL jobs)")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        server = start_server(Path(tmp) / "server", env=STAND_IN_SPARK_ENV)
        try:
            rss_before = server.rss_kb()
            run = run_clients(server, clients, jobs)
            rss_after = server.rss_kb()
            check = check_history(history_rows(server), run, jobs)
        finally:
            server.stop()
    submits = [r.seconds for r in run.records if r.path.endswith("/entrance/submit")]
    statuses = [r.seconds for r in run.records if r.path.endswith("/status")]
    growth = rss_after - rss_before
    section.table(
        ["metric", "value"],
        [
            ["wall time", f"{run.wall:.2f} s"],
            ["throughput", f"**{jobs / run.wall:.1f} jobs/s**"],
            ["requests sent", f"{len(run.records)} ({len(run.records) / jobs:.1f} per job)"],
            ["submit p50 / p95", _p50_p95(submits)],
            ["status p50 / p95", f"{_p50_p95(statuses)} ({len(statuses)} calls)"],
            [
                "history rows / lost / duplicated / unknown",
                f"{check.rows} / {check.lost} / {check.duplicated} / {check.unknown}",
            ],
            [
                "jobs not Succeed / task ids not matching history",
                f"{check.not_succeeded} / {check.mismatched}",
            ],
            ["server VmRSS before / after", f"{rss_before / 1024:.1f} / {rss_after / 1024:.1f} MB"],
            ["server RSS growth", f"**{growth / 1024:+.1f} MB** ({growth / jobs:+.1f} kB per job)"],
        ],
    )
    section.note(
        "Clients are threads of one Python process (each its own LinkisClient and HTTP session), "
        "so client-side CPU and the GIL are part of the figures; the machine has the cores "
        "listed above, shared with the server."
    )
    section.target(
        "no lost or duplicated jobs, all Succeed",
        f"{check.lost} lost, {check.duplicated} duplicated, {check.not_succeeded} not Succeed",
        "0",
        check.clean,
    )
    return section
