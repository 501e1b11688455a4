"""Benchmarks 1 and 2: a large SQL result to a DataFrame, and server paging.

1. `job.results()` on a result of 8 typed columns against plain `requests` reading the same
   `openFile` pages (same page size, one keep-alive session) and decoding their JSON, nothing
   else. Every measurement runs in a fresh interpreter (`bench_results.py fetch ...`), so its
   peak RSS (ru_maxrss after minus before fetching) belongs to that fetch alone.
2. `openFile` of the last page against the first page of the largest result.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import sys
import time
from typing import Any

from benchlib import (
    Section,
    Server,
    alternate,
    mb,
    median,
    ms,
    run_job,
    run_worker,
    secs,
)

from linkis_kernel import wire

PAGE_SIZE = wire.OPEN_FILE_DEFAULT_PAGE_SIZE
RATIO_TARGET = 1.3
MEMORY_TARGET = 3.0
PAGING_TARGET = 2.0

# int, bigint with nulls, double, decimal(18,2), boolean, date, timestamp, string.
TYPED_SQL = """
select i::int as c_int,
       case when i % 7 = 0 then null else i * 1000003 end::bigint as c_bigint,
       i / 7.0::double as c_double,
       ((i % 1000000) / 100.0)::decimal(18,2) as c_decimal,
       i % 3 = 0 as c_bool,
       date '2000-01-01' + (i % 10000)::int as c_date,
       timestamp '2020-01-01 00:00:00' + to_seconds(i) as c_timestamp,
       'name-' || i as c_string
from range({rows}) t(i)
"""


# ---- worker side (a fresh interpreter per measurement) --------------------------------------


def _peak_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def fetch_ours(task_id: int, page_size: int) -> dict[str, Any]:
    """Time `job.results()` of an ended job; the client is built and attached beforehand."""
    import pandas  # noqa: F401 (imported before the RSS baseline, as a user's session has it)

    from linkis_kernel.job import LinkisClient

    client = LinkisClient.from_env()
    job = client.job(task_id)
    before, cpu = _peak_kb(), _cpu_seconds()
    started = time.perf_counter()
    frame = job.results(page_size=page_size)[-1].data
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "cpu": _cpu_seconds() - cpu,
        "peak_kb": _peak_kb() - before,
        "rows": len(frame),
        "frame_kb": int(frame.memory_usage(deep=True).sum()) / 1024,
        "dtypes": [str(t) for t in frame.dtypes],
    }


def fetch_baseline(path: str, page_size: int) -> dict[str, Any]:
    """Read every openFile page with plain requests and decode the JSON, nothing else."""
    import pandas  # noqa: F401 (same starting RSS as the other side)
    import requests

    session = requests.Session()
    session.trust_env = False
    session.headers[wire.TOKEN_USER_HEADER] = os.environ["LINKIS_USER"]
    session.headers[wire.TOKEN_CODE_HEADER] = os.environ["LINKIS_TOKEN"]
    url = f"{os.environ['LINKIS_URL']}{wire.API_PREFIX}/filesystem/openFile"
    before, cpu = _peak_kb(), _cpu_seconds()
    started = time.perf_counter()
    rows, page = 0, 1
    while True:
        params = {"path": path, "page": page, "pageSize": page_size, "nullValue": wire.NULL_MARKER}
        content = session.get(url, params=params, timeout=60).json()["data"]["fileContent"]
        rows += len(content)
        if len(content) < page_size:
            break
        page += 1
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "cpu": _cpu_seconds() - cpu,
        "peak_kb": _peak_kb() - before,
        "rows": rows,
    }


# ---- driver side ----------------------------------------------------------------------------


def prepare_result(server: Server, rows: int) -> tuple[int, str, float]:
    """Run the typed SQL for `rows` rows; returns (task id, result path, job seconds)."""
    client = server.client()
    started = time.perf_counter()
    job = run_job(client, TYPED_SQL.format(rows=rows))
    seconds = time.perf_counter() - started
    paths = job.result_paths()
    client.close()
    return job.task_id, paths[-1], seconds


def fetch_in_worker(server: Server, args: list[str]) -> dict[str, Any]:
    """One fetch in a fresh interpreter, with the server's CPU seconds spent meanwhile."""
    before = server.cpu_seconds()
    outcome = run_worker("bench_results.py", args, server.env())
    outcome["server_cpu"] = server.cpu_seconds() - before
    return outcome


def measure_frames(server: Server, sizes: list[tuple[int, int]]) -> tuple[Section, str, int]:
    """Section 1; also returns the largest result's path and row count for section 2."""
    section = Section("dataframe", "1. Results to DataFrame (`job.results()` vs plain requests)")
    rows_out: list[list[Any]] = []
    largest = ("", 0)
    for number, (rows, reps) in enumerate(sizes, start=1):
        task_id, path, job_s = prepare_result(server, rows)
        largest = (path, rows)
        ours_args = ["ours", str(task_id), "--page-size", str(PAGE_SIZE)]
        base_args = ["baseline", path, "--page-size", str(PAGE_SIZE)]
        ours, base = alternate(
            reps,
            [
                lambda a=ours_args: fetch_in_worker(server, a),
                lambda a=base_args: fetch_in_worker(server, a),
            ],
        )
        if any(r["rows"] != rows for r in ours + base):
            raise RuntimeError(f"a fetch of the {rows}-row result returned another row count")
        ours_s = median([r["seconds"] for r in ours])
        base_s = median([r["seconds"] for r in base])
        peak = median([r["peak_kb"] for r in ours])
        frame_kb = ours[0]["frame_kb"]
        ratio, mem_ratio = ours_s / base_s, peak / frame_kb
        rows_out.append(
            [
                f"{rows:,}",
                reps,
                secs(job_s),
                secs(ours_s),
                secs(base_s),
                f"**{ratio:.2f}x**",
                f"{rows / ours_s / 1000:,.0f}k",
                secs(median([r["cpu"] for r in ours])),
                secs(median([r["cpu"] for r in base])),
                secs(median([r["server_cpu"] for r in ours + base])),
                mb(peak),
                mb(median([r["peak_kb"] for r in base])),
                mb(frame_kb),
                f"**{mem_ratio:.2f}x**",
            ]
        )
        if number < len(sizes):
            continue  # the targets are for the largest result; smaller ones show the growth
        label = f"{rows:,} rows"
        section.target(
            f"time vs baseline, {label}",
            f"{ratio:.2f}x",
            f"<= {RATIO_TARGET}x",
            ratio <= RATIO_TARGET,
        )
        section.target(
            f"peak RSS vs frame, {label}",
            f"{mem_ratio:.2f}x",
            f"<= {MEMORY_TARGET}x",
            mem_ratio <= MEMORY_TARGET,
        )
        dtypes = ", ".join(ours[0]["dtypes"])
    section.table(
        [
            "rows",
            "reps",
            "SQL job (server)",
            "ours median",
            "baseline median",
            "ours/baseline",
            "rows/s (ours)",
            "client CPU (ours)",
            "client CPU (baseline)",
            "server CPU per fetch",
            "ours peak RSS",
            "baseline peak RSS",
            "frame memory_usage(deep)",
            "peak/frame",
        ],
        rows_out,
    )
    section.note(
        f"Page size {PAGE_SIZE}; each measurement in a fresh interpreter, ours and baseline "
        f"alternating. Peak RSS = ru_maxrss after minus before the fetch (pandas already "
        f"imported on both sides); client CPU = user + sys of the fetching process, all "
        f"threads; server CPU = the server process's user + sys during a fetch (median of both "
        f"sides). "
        f"Targets are checked on the largest result. Column dtypes of the frame: {dtypes}."
    )
    return section, largest[0], largest[1]


def measure_paging(server: Server, path: str, rows: int, reps: int) -> Section:
    """Section 2: openFile first page against last page, alternating, medians."""
    section = Section("paging", "2. Server paging (`openFile` first vs last page)")
    session = server.session()
    url = server.api("filesystem/openFile")
    last = math.ceil(rows / PAGE_SIZE)

    def read(page: int) -> float:
        params = {"path": path, "page": page, "pageSize": PAGE_SIZE, "nullValue": wire.NULL_MARKER}
        started = time.perf_counter()
        content = session.get(url, params=params, timeout=60).json()["data"]["fileContent"]
        seconds = time.perf_counter() - started
        if not content:
            raise RuntimeError(f"page {page} of {path} came back empty")
        return seconds

    read(1)  # warm the connection and the file cache alike for both
    first, final = alternate(reps, [lambda: read(1), lambda: read(last)])
    ratio = median(final) / median(first)
    section.table(
        ["result rows", "page size", "reads each", "page 1 median", f"page {last} median", "ratio"],
        [
            [
                f"{rows:,}",
                PAGE_SIZE,
                reps,
                ms(median(first)),
                ms(median(final)),
                f"**{ratio:.2f}x**",
            ]
        ],
    )
    section.note("Plain requests, one keep-alive session; time = request + JSON decode.")
    section.target(
        "last page vs first page", f"{ratio:.2f}x", f"<= {PAGING_TARGET}x", ratio <= PAGING_TARGET
    )
    session.close()
    return section


def main() -> int:
    parser = argparse.ArgumentParser(description="one fetch measurement (worker of run.py)")
    parser.add_argument("side", choices=["ours", "baseline"])
    parser.add_argument("target", help="task id (ours) or result path (baseline)")
    parser.add_argument("--page-size", type=int, default=PAGE_SIZE)
    args = parser.parse_args()
    if args.side == "ours":
        outcome = fetch_ours(int(args.target), args.page_size)
    else:
        outcome = fetch_baseline(args.target, args.page_size)
    print(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main())
