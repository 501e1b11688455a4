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
from pathlib import Path

from benchlib import (
    Section,
    percentile,
    record_requests,
    start_server,
)

from linkis_kernel import wire

LOAD_CREATOR = "benchload"
HISTORY_PAGE = 100


def _client_thread(server, numbers: list[int], records: list, tasks: dict, errors: list) -> None:
    try:
        client = server.client()
        adapter = record_requests(client)
        for number in numbers:
            job = client.submit(f"select {number}", engine="spark", creator=LOAD_CREATOR)
            job.wait(timeout=300)
            tasks[number] = (job.task_id, job.state)
        records.extend(adapter.records)
        client.close()
    except BaseException as exc:
        errors.append(exc)


def history_codes(server) -> list[tuple[int, str, str]]:
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


def measure_load(clients: int, jobs: int) -> Section:
    """Section 6."""
    section = Section("load", f"6. Server load ({clients} concurrent clients, {jobs} SQL jobs)")
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        server = start_server(Path(tmp) / "server")
        try:
            rss_before = server.rss_kb()
            records: list = []
            tasks: dict[int, tuple[int, str]] = {}
            errors: list[BaseException] = []
            shares = [list(range(1 + i, jobs + 1, clients)) for i in range(clients)]
            threads = [
                threading.Thread(target=_client_thread, args=(server, s, records, tasks, errors))
                for s in shares
            ]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            wall = time.perf_counter() - started
            if errors:
                raise errors[0]
            rss_after = server.rss_kb()
            history = history_codes(server)
        finally:
            server.stop()
    submits = [r.seconds for r in records if r.path.endswith("/entrance/submit")]
    statuses = [r.seconds for r in records if r.path.endswith("/status")]
    codes = Counter(code for _, code, _ in history)
    expected = {f"select {n}" for n in range(1, jobs + 1)}
    lost = len(expected - set(codes))
    duplicated = sum(count - 1 for code, count in codes.items() if count > 1)
    unknown = len(set(codes) - expected)
    not_ok = sum(1 for _, _, status in history if status != wire.SUCCEED)
    mismatched = sum(
        1
        for n, (task_id, _) in tasks.items()
        if (task_id, f"select {n}") not in {(t, c) for t, c, _ in history}
    )
    growth = rss_after - rss_before
    section.table(
        ["metric", "value"],
        [
            ["wall time", f"{wall:.2f} s"],
            ["throughput", f"**{jobs / wall:.1f} jobs/s**"],
            ["requests sent", f"{len(records)} ({len(records) / jobs:.1f} per job)"],
            [
                "submit p50 / p95",
                f"{percentile(submits, 0.5) * 1000:.1f} / "
                f"{percentile(submits, 0.95) * 1000:.1f} ms",
            ],
            [
                "status p50 / p95",
                f"{percentile(statuses, 0.5) * 1000:.1f} / "
                f"{percentile(statuses, 0.95) * 1000:.1f} ms ({len(statuses)} calls)",
            ],
            [
                "history rows / lost / duplicated / unknown",
                f"{len(history)} / {lost} / {duplicated} / {unknown}",
            ],
            ["jobs not Succeed / task ids not matching history", f"{not_ok} / {mismatched}"],
            ["server VmRSS before / after", f"{rss_before / 1024:.1f} / {rss_after / 1024:.1f} MB"],
            ["server RSS growth", f"**{growth / 1024:+.1f} MB** ({growth / jobs:+.1f} kB per job)"],
        ],
    )
    section.note(
        "Clients are threads of one Python process (each its own LinkisClient and HTTP session), "
        "so client-side CPU and the GIL are part of the figures; the machine has the cores "
        "listed above, shared with the server."
    )
    intact = lost == duplicated == unknown == not_ok == mismatched == 0
    section.target(
        "no lost or duplicated jobs",
        f"{lost} lost, {duplicated} duplicated, {not_ok} not Succeed",
        "0",
        intact,
    )
    return section
