"""Benchmarks of results: page size, a large result to a DataFrame, server paging, and a result
too big for memory streamed to Parquet and read in batches.

Every fetch runs in a fresh interpreter (`bench_results.py <side> ...`), so its peak RSS
(ru_maxrss after minus before the fetch) belongs to that fetch alone. The sides:

- `ours`: `job.results()` of this checkout, at the library's page size unless told otherwise;
- `previous`: the same call in the code of `PREVIOUS_REV` (extracted with `git archive`), the
  implementation before pages were fetched ahead and typed column by column;
- `baseline`: plain `requests` reading the same `openFile` pages (one keep-alive session) and
  decoding their JSON, nothing else, at its best page size (measured in the same run);
- `parquet`: `job.download(path)` of a `.parquet` file; `batches`: `job.iter_batches()`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import (
    REPO_ROOT,
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

PREVIOUS_REV = "452ea83"
PAGE_SIZES = (5000, 10000, 20000, 50000, 100000)
PAGING_PAGE_SIZE = wire.OPEN_FILE_DEFAULT_PAGE_SIZE
SPEED_TARGET = 0.8  # ours / plain baseline at its best page size, largest result
PREVIOUS_TARGET = 1.0  # ours / previous implementation, smaller results
MEMORY_TARGET = 3.0  # peak RSS / frame memory, largest result
STREAM_MEMORY_MB = 300  # peak RSS above the start while writing Parquet or reading batches
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


def _measured(action: Any) -> dict[str, Any]:
    before, cpu = _peak_kb(), _cpu_seconds()
    started = time.perf_counter()
    outcome = action()
    outcome.update(
        seconds=time.perf_counter() - started,
        cpu=_cpu_seconds() - cpu,
        peak_kb=_peak_kb() - before,
    )
    return outcome


def fetch_ours(task_id: int, page_size: int | None) -> dict[str, Any]:
    """Time `job.results()` of an ended job; the client is built and attached beforehand."""
    import pandas  # noqa: F401 (imported before the RSS baseline, as a user's session has it)

    from linkis_kernel.job import LinkisClient

    job = LinkisClient.from_env().job(task_id)
    options = {"page_size": page_size} if page_size else {}

    def fetch() -> dict[str, Any]:
        frame = job.results(**options)[-1].data
        return {
            "rows": len(frame),
            "frame_kb": int(frame.memory_usage(deep=True).sum()) / 1024,
            "dtypes": [str(t) for t in frame.dtypes],
        }

    return _measured(fetch)


def fetch_baseline(path: str, page_size: int) -> dict[str, Any]:
    """Read every openFile page with plain requests and decode the JSON, nothing else."""
    import pandas  # noqa: F401 (same starting RSS as the other side)
    import requests

    session = requests.Session()
    session.trust_env = False
    session.headers[wire.TOKEN_USER_HEADER] = os.environ["LINKIS_USER"]
    session.headers[wire.TOKEN_CODE_HEADER] = os.environ["LINKIS_TOKEN"]
    url = f"{os.environ['LINKIS_URL']}{wire.API_PREFIX}/filesystem/openFile"

    def fetch() -> dict[str, Any]:
        rows, page = 0, 1
        while True:
            params = {
                "path": path,
                "page": page,
                "pageSize": page_size,
                "nullValue": wire.NULL_MARKER,
            }
            content = session.get(url, params=params, timeout=60).json()["data"]["fileContent"]
            rows += len(content)
            if len(content) < page_size:
                return {"rows": rows}
            page += 1

    return _measured(fetch)


def stream_parquet(task_id: int, out: str) -> dict[str, Any]:
    """`job.download(out)` of a .parquet file; reports the file's rows and size."""
    import pandas  # noqa: F401

    from linkis_kernel.job import LinkisClient

    job = LinkisClient.from_env().job(task_id)
    job.result_paths()

    def fetch() -> dict[str, Any]:
        path = job.download(out)
        import pyarrow.parquet as pq

        rows = pq.ParquetFile(path).metadata.num_rows
        size = path.stat().st_size
        path.unlink()
        return {"rows": rows, "file_mb": size / 1024 / 1024}

    return _measured(fetch)


def stream_batches(task_id: int) -> dict[str, Any]:
    """Read every `job.iter_batches()` batch, keeping none."""
    import pandas  # noqa: F401

    from linkis_kernel.job import LinkisClient

    job = LinkisClient.from_env().job(task_id)
    job.result_paths()

    def fetch() -> dict[str, Any]:
        rows = batches = 0
        for batch in job.iter_batches():
            rows += len(batch)
            batches += 1
        return {"rows": rows, "batches": batches}

    return _measured(fetch)


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


def previous_code(into: Path) -> Path:
    """Extract the `linkis_kernel` package of PREVIOUS_REV into `into`; returns `into`."""
    archive = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "archive", PREVIOUS_REV, "linkis_kernel"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


class Fetcher:
    """Runs fetch workers against one server; `previous` is where the old code lives."""

    def __init__(self, server: Server, previous: Path | None = None) -> None:
        self.server = server
        self.previous = previous

    def run(self, side: str, *args: str) -> dict[str, Any]:
        """One measurement in a fresh interpreter, with the server's CPU seconds meanwhile."""
        env = self.server.env()
        if side == "previous":
            assert self.previous is not None
            env["PYTHONPATH"] = os.pathsep.join(
                [str(self.previous), *filter(None, [env.get("PYTHONPATH")])]
            )
        before = self.server.cpu_seconds()
        worker_side = "ours" if side == "previous" else side
        outcome = run_worker("bench_results.py", [worker_side, *args], env)
        outcome["server_cpu"] = self.server.cpu_seconds() - before
        return outcome

    def ours(self, task_id: int, page_size: int | None = None) -> dict[str, Any]:
        extra = ["--page-size", str(page_size)] if page_size else []
        return self.run("ours", str(task_id), *extra)

    def previous_side(self, task_id: int) -> dict[str, Any]:
        return self.run("previous", str(task_id))

    def baseline(self, path: str, page_size: int) -> dict[str, Any]:
        return self.run("baseline", path, "--page-size", str(page_size))


def best_baseline_page_size(
    fetcher: Fetcher, path: str, rows: int, page_sizes: tuple[int, ...]
) -> tuple[int, dict]:
    """The page size at which plain requests reads `path` fastest (one read per size; sizes
    beyond the first that covers every row are left out); also every size's seconds."""
    sizes = [size for size in page_sizes if size < rows] + [
        next((size for size in page_sizes if size >= rows), page_sizes[-1])
    ]
    timings = {size: fetcher.baseline(path, size)["seconds"] for size in dict.fromkeys(sizes)}
    return min(timings, key=timings.__getitem__), timings


def measure_page_sizes(
    section: Section,
    fetcher: Fetcher,
    task_id: int,
    path: str,
    rows: int,
    page_sizes: tuple[int, ...],
) -> None:
    """Ours and the baseline at each page size, one read each, alternating: a second table."""
    table = []
    for size in page_sizes:
        ours, base = alternate(
            1,
            [lambda s=size: fetcher.ours(task_id, s), lambda s=size: fetcher.baseline(path, s)],
        )
        table.append(
            [
                f"{size:,}",
                secs(ours[0]["seconds"]),
                secs(base[0]["seconds"]),
                secs(ours[0]["server_cpu"]),
                secs(base[0]["server_cpu"]),
                secs(ours[0]["cpu"]),
            ]
        )
    section.table(
        [
            "page size",
            "ours",
            "plain requests",
            "server CPU (ours)",
            "server CPU (plain)",
            "client CPU (ours)",
        ],
        table,
    )
    section.note(
        f"Page size, {rows:,} rows: one read of each above. The library reads "
        f"{_library_page_size():,} rows a page; the server allows at most "
        f'{wire.OPEN_FILE_MAX_PAGE_SIZE:,} (docs/linkis-rest.md, "Result files").'
    )


def _library_page_size() -> int:
    from linkis_kernel.results import RESULT_PAGE_SIZE

    return RESULT_PAGE_SIZE


def measure_frames(
    server: Server, sizes: list[tuple[int, int]], page_sizes: tuple[int, ...] = PAGE_SIZES
) -> tuple[Section, str, int, int]:
    """Section 1; also returns the largest result's path and row count (for section 2) and
    the plain side's best page size on it (for section 7)."""
    section = Section("dataframe", "1. Results to DataFrame (`job.results()` vs plain requests)")
    rows_out: list[list[Any]] = []
    largest = ("", 0)
    best = page_sizes[0]
    dtypes = ""
    sweep: tuple[int, str] | None = None
    with tempfile.TemporaryDirectory(prefix="linkis-previous-") as tmp:
        fetcher = Fetcher(server, previous_code(Path(tmp)))
        for number, (rows, reps) in enumerate(sizes, start=1):
            task_id, path, job_s = prepare_result(server, rows)
            largest = (path, rows)
            last = number == len(sizes)
            if last:
                sweep = (task_id, path)
            best, _ = best_baseline_page_size(fetcher, path, rows, page_sizes)
            ours, previous, base = alternate(
                reps,
                [
                    lambda t=task_id: fetcher.ours(t),
                    lambda t=task_id: fetcher.previous_side(t),
                    lambda p=path, b=best: fetcher.baseline(p, b),
                ],
            )
            if any(r["rows"] != rows for r in ours + previous + base):
                raise RuntimeError(f"a fetch of the {rows}-row result returned another row count")
            ours_s = median([r["seconds"] for r in ours])
            previous_s = median([r["seconds"] for r in previous])
            base_s = median([r["seconds"] for r in base])
            peak = median([r["peak_kb"] for r in ours])
            frame_kb = ours[0]["frame_kb"]
            ratio, vs_previous, mem_ratio = ours_s / base_s, ours_s / previous_s, peak / frame_kb
            rows_out.append(
                [
                    f"{rows:,}",
                    reps,
                    secs(job_s),
                    secs(ours_s),
                    secs(previous_s),
                    f"{secs(base_s)} ({best:,})",
                    f"**{ratio:.2f}x**",
                    f"**{vs_previous:.2f}x**",
                    f"{rows / ours_s / 1000:,.0f}k",
                    secs(median([r["cpu"] for r in ours])),
                    secs(median([r["cpu"] for r in base])),
                    secs(median([r["server_cpu"] for r in ours])),
                    secs(median([r["server_cpu"] for r in base])),
                    mb(peak),
                    mb(frame_kb),
                    f"**{mem_ratio:.2f}x**",
                ]
            )
            label = f"{rows:,} rows"
            if last:
                section.target(
                    f"time vs baseline, {label}",
                    f"{ratio:.2f}x",
                    f"<= {SPEED_TARGET}x",
                    ratio <= SPEED_TARGET,
                )
                section.target(
                    f"peak RSS vs frame, {label}",
                    f"{mem_ratio:.2f}x",
                    f"<= {MEMORY_TARGET}x",
                    mem_ratio <= MEMORY_TARGET,
                )
                dtypes = ", ".join(ours[0]["dtypes"])
            else:
                section.target(
                    f"time vs previous code, {label}",
                    f"{vs_previous:.2f}x",
                    f"<= {PREVIOUS_TARGET}x",
                    vs_previous <= PREVIOUS_TARGET,
                )
    section.table(
        [
            "rows",
            "reps",
            "SQL job (server)",
            "ours median",
            f"previous ({PREVIOUS_REV}) median",
            "plain requests median (its best page size)",
            "ours/plain",
            "ours/previous",
            "rows/s (ours)",
            "client CPU (ours)",
            "client CPU (plain)",
            "server CPU (ours)",
            "server CPU (plain)",
            "ours peak RSS",
            "frame memory_usage(deep)",
            "peak/frame",
        ],
        rows_out,
    )
    section.note(
        "Each measurement in a fresh interpreter; ours, previous and plain requests alternate. "
        "The plain side reads at the page size that was fastest for it in a sweep of "
        f"{', '.join(f'{s:,}' for s in page_sizes)} (one read each, this run). Peak RSS = "
        "ru_maxrss after minus before the fetch (pandas already imported); client CPU = user + "
        "sys of the fetching process, all threads; server CPU = the server process's user + sys "
        "during the fetch. The 1M target is checked on the largest result, the previous-code "
        f"targets on the smaller ones. Column dtypes of the frame: {dtypes}."
    )
    if sweep is not None:
        measure_page_sizes(section, Fetcher(server), *sweep, largest[1], page_sizes)
    return section, largest[0], largest[1], best


def measure_streams(
    server: Server, rows: int, reps: int, best: int | None, page_sizes: tuple[int, ...]
) -> Section:
    """A result of `rows` rows to Parquet and through iter_batches, against plain requests at
    `best` page size (found on a 1M-row result by section 1; None: sought here)."""
    section = Section(
        "stream", f"7. A result too big for memory ({rows:,} rows): Parquet and batches"
    )
    task_id, path, job_s = prepare_result(server, rows)
    fetcher = Fetcher(server)
    if best is None:
        best, _ = best_baseline_page_size(fetcher, path, rows, page_sizes)
    with tempfile.TemporaryDirectory(prefix="linkis-parquet-") as tmp:
        out = str(Path(tmp) / "result.parquet")
        parquet, batches, base = alternate(
            reps,
            [
                lambda: fetcher.run("parquet", str(task_id), out),
                lambda: fetcher.run("batches", str(task_id)),
                lambda: fetcher.baseline(path, best),
            ],
        )
    if any(r["rows"] != rows for r in parquet + batches + base):
        raise RuntimeError(f"a read of the {rows}-row result returned another row count")
    base_s = median([r["seconds"] for r in base])
    table = []
    for name, runs in (("`job.download(x.parquet)`", parquet), ("`job.iter_batches()`", batches)):
        seconds = median([r["seconds"] for r in runs])
        peak = max(r["peak_kb"] for r in runs)
        table.append(
            [
                name,
                len(runs),
                secs(seconds),
                f"**{seconds / base_s:.2f}x**",
                f"{rows / seconds / 1000:,.0f}k",
                secs(median([r["cpu"] for r in runs])),
                f"**{mb(peak)}**",
            ]
        )
        section.target(
            f"peak RSS above start, {name.strip('`')}, {rows:,} rows",
            mb(peak),
            f"<= {STREAM_MEMORY_MB} MB",
            peak / 1024 <= STREAM_MEMORY_MB,
        )
    table.append(
        [
            f"plain requests (page size {best:,})",
            len(base),
            secs(base_s),
            "1.00x",
            f"{rows / base_s / 1000:,.0f}k",
            secs(median([r["cpu"] for r in base])),
            mb(max(r["peak_kb"] for r in base)),
        ]
    )
    section.table(
        ["read", "reps", "median", "vs plain", "rows/s", "client CPU", "peak RSS above start"],
        table,
    )
    section.note(
        f"SQL job {secs(job_s)}; Parquet file {parquet[0]['file_mb']:.0f} MB, "
        f"{batches[0]['batches']} batches of up to 100,000 rows (one row group each). Peak RSS "
        "= ru_maxrss after minus before the read, the largest of the repetitions; pyarrow is "
        "imported inside the measured download. Plain requests keeps nothing but the row count."
    )
    return section


def measure_paging(server: Server, path: str, rows: int, reps: int) -> Section:
    """Section 2: openFile first page against last page, alternating, medians."""
    section = Section("paging", "2. Server paging (`openFile` first vs last page)")
    session = server.session()
    url = server.api("filesystem/openFile")
    last = math.ceil(rows / PAGING_PAGE_SIZE)

    def read(page: int) -> float:
        params = {
            "path": path,
            "page": page,
            "pageSize": PAGING_PAGE_SIZE,
            "nullValue": wire.NULL_MARKER,
        }
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
                PAGING_PAGE_SIZE,
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
    parser.add_argument("side", choices=["ours", "baseline", "parquet", "batches"])
    parser.add_argument("target", help="task id, or the result path (baseline)")
    parser.add_argument("out", nargs="?", help="the Parquet file to write (parquet)")
    parser.add_argument("--page-size", type=int, default=None)
    args = parser.parse_args()
    if args.side == "ours":
        outcome = fetch_ours(int(args.target), args.page_size)
    elif args.side == "baseline":
        outcome = fetch_baseline(args.target, args.page_size or PAGING_PAGE_SIZE)
    elif args.side == "parquet":
        outcome = stream_parquet(int(args.target), args.out)
    else:
        outcome = stream_batches(int(args.target))
    print(json.dumps(outcome))
    return 0


if __name__ == "__main__":
    sys.exit(main())
