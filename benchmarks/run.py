"""Run every benchmark against a fresh embedded server and write RESULTS.md.

    python benchmarks/run.py            # full run (`make bench`), a few minutes
    python benchmarks/run.py --quick    # small sizes (`make bench-quick`), well under a minute
    python benchmarks/run.py --output /tmp/RESULTS.md --only dataframe,paging

Each benchmark measures against its baseline in the same run (alternating repetitions, medians).
A benchmark that fails leaves an error in its section and makes the exit status 1; the others
still run. `findings.md` (the analysis of missed targets) is appended to the output as is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bench_engines import measure_engines
from bench_kernel import measure_kernel_start, measure_magic
from bench_load import measure_load
from bench_polling import measure_polling
from bench_results import (
    PAGE_SIZES,
    measure_frames,
    measure_paging,
    measure_streams,
    prepare_result,
)
from bench_sqlengines import measure_sql_engines
from benchlib import BENCH_DIR, REPO_ROOT, STAND_IN_SPARK_ENV, Section, Server, start_server

SECTION_KEYS = (
    "dataframe",
    "paging",
    "polling",
    "kernel_start",
    "magic",
    "load",
    "stream",
    "engines",
    "sql_engines",
)
SERVER_WORKERS = 4  # the polling benchmark runs up to 4 sleep jobs at once
PACKAGES = (
    "linkis-kernel",
    "pandas",
    "numpy",
    "pyarrow",
    "requests",
    "tornado",
    "duckdb",
    "ipykernel",
    "jupyter_client",
)


@dataclass(frozen=True)
class Plan:
    """Sizes and repetitions of one run."""

    frames: list[tuple[int, int]]  # (rows, repetitions)
    paging_reads: int
    stream: tuple[int, int]  # (rows, repetitions) to Parquet and through iter_batches
    page_sizes: tuple[int, ...]  # openFile page sizes tried for plain requests (and ours)
    polling: list[tuple[float, int]]  # (job seconds, repetitions)
    kernel_starts: int
    magic_runs: int
    load: tuple[int, int]  # (clients, jobs)
    engines: tuple[int, int] = (20, 3)  # (warm and baseline repetitions, engine starts)
    spark: tuple[int, int] | None = (10, 3)  # real Spark: (warm, fresh-process reps); None: none
    sql_engines: tuple[int, int, int] = (20, 5, 3_000_000)  # (warm reps, users, big result rows)


FULL = Plan(
    frames=[(10_000, 15), (100_000, 7), (1_000_000, 5)],
    paging_reads=40,
    stream=(10_000_000, 1),
    page_sizes=PAGE_SIZES,
    polling=[(0.2, 7), (2.0, 5), (20.0, 2)],
    kernel_starts=5,
    magic_runs=20,
    load=(20, 500),
)
QUICK = Plan(
    frames=[(10_000, 1), (100_000, 1)],
    paging_reads=10,
    stream=(20_000, 1),
    page_sizes=(5_000, 20_000),
    polling=[(0.2, 2), (2.0, 1)],
    kernel_starts=2,
    magic_runs=5,
    load=(5, 50),
    engines=(5, 1),
    spark=None,  # real Spark jobs take seconds each: `make bench` measures them
    sql_engines=(5, 2, 100_000),
)


def run_sections(server: Server, plan: Plan, only: set[str]) -> list[Section]:
    """Run the chosen benchmarks in order; a failing one becomes a FAILED section."""
    largest: dict[str, Any] = {}

    def frames() -> Section:
        section, largest["path"], largest["rows"], largest["best"] = measure_frames(
            server, plan.frames, plan.page_sizes
        )
        return section

    def paging() -> Section:
        if not largest:  # run alone: make the result the DataFrame benchmark would have made
            largest["rows"] = plan.frames[-1][0]
            _, largest["path"], _ = prepare_result(server, largest["rows"])
        return measure_paging(server, largest["path"], largest["rows"], plan.paging_reads)

    steps: dict[str, Callable[[], Section]] = {
        "dataframe": frames,
        "paging": paging,
        "stream": lambda: measure_streams(
            server, *plan.stream, largest.get("best"), plan.page_sizes
        ),
        "polling": lambda: measure_polling(server, plan.polling),
        "kernel_start": lambda: measure_kernel_start(server, plan.kernel_starts),
        "magic": lambda: measure_magic(server, plan.magic_runs),
        "load": lambda: measure_load(*plan.load),
        "engines": lambda: measure_engines(server, *plan.engines, spark=plan.spark),
        "sql_engines": lambda: measure_sql_engines(server, *plan.sql_engines),
    }
    sections = []
    for key in SECTION_KEYS:
        if only and key not in only:
            continue
        print(f"[bench] {key} ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            section = steps[key]()
        except Exception as exc:
            section = Section(key, f"{key}: FAILED", failed=True)
            section.note(f"```\n{''.join(traceback.format_exception(exc))[-3000:]}```")
            section.target(key, f"error: {type(exc).__name__}: {exc}", "runs", False)
        section.seconds = time.perf_counter() - started
        print(f"[bench] {key} done in {section.seconds:.1f} s", file=sys.stderr, flush=True)
        sections.append(section)
    return sections


def machine() -> list[str]:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    ram_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return [
        f"- CPU: {os.cpu_count()} cores, {cpu_model()} ({platform.machine()})",
        f"- RAM: {ram_kb / 1024 / 1024:.1f} GiB",
        f"- OS: {platform.platform()}",
        f"- Python: {platform.python_version()} ({platform.python_implementation()})",
        f"- Packages: {', '.join(versions)}",
    ]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown model"


def git_commit() -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or "unknown"


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def render(
    sections: list[Section], command: str, quick: bool, started: dt.datetime, loads: tuple
) -> str:
    lines = [
        "# linkis-kernel benchmarks",
        "",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC; total {sum(s.seconds for s in sections):.0f} s; "
        f"{'quick' if quick else 'full'} run; commit {git_commit()}",
        f"- Reproduce: `{command}` (from the repository root; `make bench` runs the full set)",
        f"- Load average (1/5/15 min) at start {loads[0]}, at end {loads[1]}: the machine is "
        "shared, so absolute times are noisy; the ratios compare runs interleaved in this run.",
        *machine(),
        "",
        "## Targets",
        "",
        "| benchmark | target | measured | limit | met |",
        "|---|---|---|---|---|",
    ]
    for section in sections:
        for target in section.targets:
            met = {True: "yes", False: "**NO**", None: "n/a"}[target.met]
            lines.append(
                f"| {section.key} | {target.name} | {target.measured} | {target.limit} | {met} |"
            )
    lines.append("")
    for section in sections:
        lines += [f"## {section.title}", "", f"_{section.seconds:.1f} s_", "", *section.body]
    findings = BENCH_DIR / "findings.md"
    if findings.exists():
        lines += [findings.read_text().rstrip(), ""]
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the linkis-kernel benchmarks.")
    parser.add_argument("--quick", action="store_true", help="small sizes, well under a minute")
    parser.add_argument(
        "--output", type=Path, default=BENCH_DIR / "RESULTS.md", help="where to write the report"
    )
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of: {', '.join(SECTION_KEYS)}"
    )
    args = parser.parse_args()
    only = {key.strip() for key in args.only.split(",") if key.strip()}
    unknown = only - set(SECTION_KEYS)
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(sorted(unknown))}; pick from {SECTION_KEYS}")
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "")
    if only:
        command += f" --only {shlex.quote(','.join(sorted(only)))}"
    started = dt.datetime.now(dt.timezone.utc)
    load_start = load_average()
    with tempfile.TemporaryDirectory(prefix="linkis-bench-") as tmp:
        server = start_server(Path(tmp) / "server", workers=SERVER_WORKERS, env=STAND_IN_SPARK_ENV)
        try:
            sections = run_sections(server, QUICK if args.quick else FULL, only)
        finally:
            server.stop()
    report = render(sections, command, args.quick, started, (load_start, load_average()))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report)
    print(f"[bench] wrote {args.output}", file=sys.stderr)
    return 1 if any(section.failed for section in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
