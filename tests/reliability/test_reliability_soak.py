"""Soak: 20 client threads submit, poll and read short jobs for `LINKIS_SOAK_SECONDS` (default 60).

Nothing may fail, every submitted job must be final in history with its result read, and the
server must not leak: its RSS grows by less than `RSS_GROWTH_LIMIT` and its open file
descriptors by at most `FD_MARGIN` between the end of the warm-up (every thread has read the
result of a Python job and of an SQL job, so caches, pools, engines and thread stacks exist) and
the end of the run.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support.serverproc import ServerProcess, start_server
from support.waiting import wait_until

from linkis_kernel.wire import SUCCEED

SOAK_SECONDS = float(os.environ.get("LINKIS_SOAK_SECONDS", "60"))
THREADS = 20
KINDS = ("python", "spark")
RSS_GROWTH_LIMIT = 100 * 1024 * 1024
FD_MARGIN = 10


@dataclass
class SoakLog:
    """What the client threads did, shared between them."""

    task_ids: list[int] = field(default_factory=list)
    results_read: int = 0
    kinds_read: dict[int, set[str]] = field(default_factory=dict)  # per thread, engines read
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def warmed_up(self) -> bool:
        """Every thread has read the result of a job of each kind."""
        with self.lock:
            done = [kinds for kinds in self.kinds_read.values() if kinds.issuperset(KINDS)]
        return len(done) == THREADS


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def run_jobs(server: ServerProcess, worker: int, deadline: float, log: SoakLog) -> None:
    """Submit, wait for and read one short job after another until the deadline."""
    client = server.linkis_client()
    round_ = 0
    try:
        while time.monotonic() < deadline:
            value = worker * 100_000 + round_
            engine = KINDS[round_ % 2]
            if engine == "python":
                job = client.submit(f"print({value})", engine=engine, creator="soak")
                expected: object = str(value)
            else:
                job = client.submit(f"select {value} as v", engine=engine, creator="soak")
                expected = value
            with log.lock:
                log.task_ids.append(job.task_id)
            job.poll_min, job.poll_max = 0.05, 0.5
            job.wait(timeout=120)
            got = job.results()[0].data
            got = got if isinstance(got, str) else int(got["v"].iloc[0])
            if got != expected:
                raise AssertionError(f"job {job.task_id}: result {got!r}, expected {expected!r}")
            with log.lock:
                log.results_read += 1
                log.kinds_read.setdefault(worker, set()).add(engine)
            round_ += 1
    except Exception as err:  # every failure is reported by the test, with its thread
        with log.lock:
            log.errors.append(f"thread {worker}: {type(err).__name__}: {err}")
    finally:
        client.close()


@pytest.fixture(scope="module")
def soak_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with start_server(tmp_path_factory.mktemp("soak") / "data") as server:
        yield server


@pytest.mark.timeout(SOAK_SECONDS + 240)
def test_twenty_clients_for_a_minute_lose_nothing_and_leak_nothing(
    soak_server: ServerProcess,
) -> None:
    pid = soak_server.process.pid
    log = SoakLog()
    started = time.monotonic()
    deadline = started + SOAK_SECONDS
    threads = [
        threading.Thread(target=run_jobs, args=(soak_server, n, deadline, log), daemon=True)
        for n in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    wait_until(
        lambda: log.warmed_up() or log.errors or not any(t.is_alive() for t in threads),
        SOAK_SECONDS + 180,
        0.1,
        message="the client threads neither warmed up nor ended",
    )
    warmed, warm_seconds = log.warmed_up(), time.monotonic() - started
    warm_rss, warm_fds = rss_bytes(pid), open_fds(pid)
    for thread in threads:
        thread.join(SOAK_SECONDS + 180)
    assert not any(t.is_alive() for t in threads), "client threads still running after the soak"
    end_rss, end_fds = rss_bytes(pid), open_fds(pid)
    print(
        f"soak: {len(log.task_ids)} jobs in {SOAK_SECONDS:.0f} s, warm after {warm_seconds:.1f} s; "
        f"server RSS {warm_rss / 2**20:.0f} -> {end_rss / 2**20:.0f} MiB, "
        f"fds {warm_fds} -> {end_fds}"
    )

    assert not log.errors, "\n".join(log.errors[:10])
    assert warmed, f"the run ended before every thread ran both kinds of job: {log.kinds_read}"
    assert len(log.task_ids) >= THREADS * 2, f"only {len(log.task_ids)} jobs ran"
    assert log.results_read == len(log.task_ids)
    checker = soak_server.linkis_client()
    history = checker.jobhistory_list(page_size=len(log.task_ids) + 10, creator="soak")
    assert sorted(t.task_id for t in history.tasks) == sorted(log.task_ids)
    assert {t.status for t in history.tasks} == {SUCCEED}
    growth = end_rss - warm_rss
    assert growth < RSS_GROWTH_LIMIT, f"server RSS grew by {growth / 2**20:.0f} MiB"
    assert end_fds <= warm_fds + FD_MARGIN, f"open fds: {warm_fds} after warm-up, {end_fds} at end"
