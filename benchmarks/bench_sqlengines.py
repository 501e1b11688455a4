"""Benchmark 9: SQL in a per-user engine process.

Each user's SQL runs in a SQL engine process of their own (linkis_kernel/local/sqlengine.py),
started at their first SQL job. On a server of its own with several users (users.json), end to
end through the REST API (submit, then poll status until Succeed): each user's first `select 1`
(their engine starts) against warm `select 1` jobs of the same users, alternating users. Then,
while one user's job writes a big result, the server's and that user's engine's resident memory
(VmRSS from /proc) sampled every 50 ms: the rows are built and written by the engine, so the
server should barely grow. Last, the idle engines' memory: one engine, and all the users' ones.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests
from bench_engines import POLL_SECONDS, SLOW_POLL_SECONDS, timed_job
from benchlib import Section, Server, mb, median, ms, proc_rss_kb, secs, start_server

ENGINE_MODULE = "linkis_kernel.local.sqlengine"
ENGINE_MEMORY = "2GB"  # serve --engine-memory: each SQL engine's cap (RLIMIT_DATA)
SQL_ENGINE = "hive"  # any SQL-family engine type runs in the user's SQL engine
CREATOR = "bench"  # not IDE: no 5,000-row cap on SQL results (wire.SQL_LIMIT_CREATOR)
WARM_CODE = "select 1"
SAMPLE_SECONDS = 0.05
TARGET_GROWTH_RATIO = 0.1  # server RSS growth at most a tenth of the engine's


def big_result_code(rows: int) -> str:
    return f"select range as id, range * 2 as x, 'row ' || range as label from range({rows})"


def bench_users(count: int) -> list[dict[str, str]]:
    """`count` users for users.json, each with a password and a token."""
    return [
        {"name": f"benchuser{i}", "password": f"bench-password-{i}", "token": f"bench-token-{i}"}
        for i in range(1, count + 1)
    ]


def sql_engine_pid(data_dir: Path, user: str) -> int:
    """The pid of `user`'s SQL engine on the server of `data_dir`: its command line is
    `python -m linkis_kernel.local.sqlengine <data dir> <user> ...`."""
    wanted = [ENGINE_MODULE, str(data_dir.resolve()), user]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            words = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if ENGINE_MODULE in words:
            start = words.index(ENGINE_MODULE)
            if words[start : start + 3] == wanted:
                return int(entry.name)
    raise RuntimeError(f"no SQL engine process of {user} for {data_dir}")


def largest_result_bytes(data_dir: Path, user: str) -> int:
    """The size of the largest result set file `user`'s jobs wrote (data dir's result/<day>/
    <creator>/<user>/<task>/_N.dolphin)."""
    files = data_dir.glob(f"result/*/{CREATOR}/{user}/*/_*.dolphin")
    return max((path.stat().st_size for path in files), default=0)


@dataclass
class PeakRss:
    """The highest VmRSS (kB) of each of `pids` seen by a sampling thread."""

    pids: Sequence[int]
    peaks: dict[int, int] = field(default_factory=dict)
    samples: int = 0


@contextmanager
def sampling_rss(pids: Sequence[int], every: float = SAMPLE_SECONDS) -> Iterator[PeakRss]:
    """Sample the VmRSS of `pids` every `every` seconds while the block runs."""
    record = PeakRss(pids, {pid: proc_rss_kb(pid) for pid in pids})
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(every):
            for pid in pids:
                record.peaks[pid] = max(record.peaks[pid], proc_rss_kb(pid))
            record.samples += 1

    sampler = threading.Thread(target=sample, daemon=True, name="bench-rss")
    sampler.start()
    try:
        yield record
    finally:
        stop.set()
        sampler.join()


def measure_sql_engines(server: Server, reps: int, users: int, rows: int) -> Section:
    """Runs on a server of its own beside `server`'s data dir, with `users` users."""
    people = bench_users(users)
    data_dir = server.data_dir.parent / "sql-engines"
    own = start_server(data_dir, args=["--engine-memory", ENGINE_MEMORY], users=people)
    try:
        sessions = {user["name"]: own.session(user["name"], user["token"]) for user in people}
        figures = _measure(own, sessions, reps, rows)
    finally:
        own.stop()
    return _section(figures, reps, users, rows)


@dataclass
class Figures:
    first: list[float]
    warm: list[float]
    big_seconds: float
    big_bytes: int
    server_before: int
    server_peak: int
    engine_before: int
    engine_peak: int
    engine_after: int
    samples: int
    idle_engines: list[int]


def _measure(
    server: Server, sessions: dict[str, requests.Session], reps: int, rows: int
) -> Figures:
    def job(user: str, code: str, poll: float = POLL_SECONDS) -> float:
        return timed_job(sessions[user], server, SQL_ENGINE, "sql", code, CREATOR, poll)

    names = list(sessions)
    first = [job(user, WARM_CODE) for user in names]
    warm = [job(names[rep % len(names)], WARM_CODE) for rep in range(reps)]
    pids = {user: sql_engine_pid(server.data_dir, user) for user in names}
    idle_engines = [proc_rss_kb(pid) for pid in pids.values()]
    server_before = server.rss_kb()
    engine = pids[names[0]]
    with sampling_rss([server.pid, engine]) as rss:
        big_seconds = job(names[0], big_result_code(rows), SLOW_POLL_SECONDS)
    return Figures(
        first=first,
        warm=warm,
        big_seconds=big_seconds,
        big_bytes=largest_result_bytes(server.data_dir, names[0]),
        server_before=server_before,
        server_peak=rss.peaks[server.pid],
        engine_before=idle_engines[0],
        engine_peak=rss.peaks[engine],
        engine_after=proc_rss_kb(engine),
        samples=rss.samples,
        idle_engines=idle_engines,
    )


def _section(f: Figures, reps: int, users: int, rows: int) -> Section:
    first, warm = median(f.first), median(f.warm)
    server_growth = f.server_peak - f.server_before
    engine_growth = f.engine_peak - f.engine_before
    growth_ratio = server_growth / engine_growth if engine_growth > 0 else float("inf")
    section = Section("sql_engines", "9. SQL in a per-user engine process")
    section.table(
        ["`select 1`, end to end", "reps", "median", "vs warm"],
        [
            [f"first SQL job of each of {users} users (their engine starts)", users, ms(first),
             f"**{first / warm:.1f}x**"],
            ["next SQL jobs of the same users (engine reused, users alternate)", reps, ms(warm),
             "1.00x"],
            ["engine start cost (first minus warm)", "-", f"**{ms(first - warm)}**", "-"],
        ],
    )  # fmt: skip
    section.table(
        [f"while one user's job writes {rows:,} rows ({mb(f.big_bytes / 1024)} result file, "
         f"{secs(f.big_seconds)})", "before", "peak", "growth"],
        [
            ["server process (VmRSS)", mb(f.server_before), mb(f.server_peak),
             f"**{mb(server_growth)}** ({server_growth:,} kB)"],
            ["that user's SQL engine process (VmRSS)", mb(f.engine_before), mb(f.engine_peak),
             f"**{mb(engine_growth)}**"],
            ["server growth / engine growth", "-", "-", f"**{growth_ratio:.3f}**"],
            ["server growth / result file size", "-", "-",
             f"**{server_growth * 1024 / max(f.big_bytes, 1):.5f}**"],
        ],
    )  # fmt: skip
    total = sum(f.idle_engines)
    section.table(
        ["idle memory (VmRSS)", "resident memory"],
        [
            ["one SQL engine after `select 1` (median of the users')",
             mb(median(f.idle_engines))],
            ["the same engine after writing the big result", mb(f.engine_after)],
            [f"{users} users' SQL engines together", mb(total)],
            ["the server process beside them", mb(f.server_before)],
        ],
    )  # fmt: skip
    section.note(
        f"A server of its own with {users} users (users.json) and `--engine-memory "
        f"{ENGINE_MEMORY}`; SQL jobs on engine {SQL_ENGINE}, creator {CREATOR} (not IDE, so the "
        f"result is not capped at 5,000 rows). Status polled every {POLL_SECONDS * 1000:g} ms "
        f"for `select 1`, every {SLOW_POLL_SECONDS * 1000:g} ms for the big job. The first jobs "
        "run one user after the other; the engine start cost includes starting Python, DuckDB "
        "and opening the user's database. Memory: VmRSS of the server and of the user's engine "
        f"(found in /proc by its command line) sampled every {SAMPLE_SECONDS * 1000:g} ms "
        f"({f.samples} samples) during the job of `{big_result_code(rows)}`; 'before' is after "
        "the `select 1` jobs."
    )
    section.target(
        f"server RSS growth / engine RSS growth, {rows:,}-row result", f"{growth_ratio:.3f}",
        f"<= {TARGET_GROWTH_RATIO:g}", growth_ratio <= TARGET_GROWTH_RATIO,
    )  # fmt: skip
    section.target(
        "SQL engine start cost (first minus warm `select 1`)", ms(first - warm),
        "as low as possible", None,
    )  # fmt: skip
    return section
