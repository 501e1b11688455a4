"""Benchmark 7: Python jobs on engine sessions against a fresh process per job.

End to end through the REST API (submit, then poll status every 10 ms until Succeed): the first
Python job of a creator (its engine starts), the next ones (the engine is reused), and, as the
baseline, a fresh Python process per job (a shell job that runs `python -c`, which is what the
server did for every Python job before engine sessions). Warm and baseline jobs alternate. The
idle engines' memory is read from /proc through `linkisManager/listUserEngines`.
"""

from __future__ import annotations

import shlex
import sys
import time

import requests
from benchlib import Section, Server, mb, median, ms

from linkis_kernel import wire

POLL_SECONDS = 0.002
TARGET_SPEEDUP = 3.0


def timed_job(session: requests.Session, server: Server, engine: str, run_type: str,
              code: str, creator: str) -> float:  # fmt: skip
    """Seconds from submit to Succeed."""
    body = {
        "executionContent": {"code": code, "runType": run_type},
        "labels": {"engineType": engine, "userCreator": f"{server.user}-{creator}"},
    }
    started = time.perf_counter()
    answer = session.post(server.api("entrance/submit"), json=body, timeout=30).json()
    exec_id = answer["data"]["execID"]
    while True:
        status = session.get(server.api(f"entrance/{exec_id}/status"), timeout=30).json()
        state = status["data"]["status"]
        if state in wire.TERMINAL_STATES:
            break
        time.sleep(POLL_SECONDS)
    elapsed = time.perf_counter() - started
    if state != wire.SUCCEED:
        raise RuntimeError(f"{engine} job {exec_id} ended {state}")
    return elapsed


def measure_engines(server: Server, reps: int, starts: int) -> Section:
    session = server.session()
    fresh = f"{shlex.quote(sys.executable)} -c 'print(1)'"
    first = [
        timed_job(session, server, "python", "python", "print(1)", f"benchfirst{i}")
        for i in range(starts)
    ]
    warm, baseline = [], []
    timed_job(session, server, "python", "python", "print(1)", "benchwarm")  # start it
    for _ in range(reps):
        warm.append(timed_job(session, server, "python", "python", "print(1)", "benchwarm"))
        baseline.append(timed_job(session, server, "shell", "shell", fresh, "benchfresh"))
    spark_first = timed_job(session, server, "spark", "py", "print(1)", "benchspark")
    spark_warm = median(
        [timed_job(session, server, "spark", "py", "print(1)", "benchspark") for _ in range(reps)]
    )
    engines = session.get(server.api("linkisManager/listUserEngines"), timeout=30).json()
    memory = {
        e["labels"][1]["engineType"]: e["nodeResource"]["usedResource"]["memory"] / 1024
        for e in engines["data"]["engines"]
    }
    speedup = median(baseline) / median(warm)
    section = Section("engines", "7. Python engine sessions vs a fresh process per job")
    section.table(
        ["job (`print(1)`, end to end)", "reps", "median", "vs fresh process"],
        [
            ["python, first job (engine starts)", starts, ms(median(first)),
             f"{median(first) / median(baseline):.2f}x"],
            ["python, next jobs (engine reused)", reps, ms(median(warm)),
             f"**{1 / speedup:.2f}x**"],
            ["fresh python process per job (baseline)", reps, ms(median(baseline)), "1.00x"],
            ["pyspark (DuckDB stand-in), first job", 1, ms(spark_first), "-"],
            ["pyspark (DuckDB stand-in), next jobs", reps, ms(spark_warm), "-"],
        ],
    )  # fmt: skip
    section.table(
        ["idle engine", "resident memory"],
        [[name, mb(kb)] for name, kb in sorted(memory.items())],
    )
    section.note(
        f"Polling status every {POLL_SECONDS * 1000:g} ms; warm and baseline jobs alternate. "
        "Memory: the engine process's resident set after its jobs (the PySpark one holds "
        "DuckDB and pandas). Polled every 10 ms instead, a warm job looks no faster than the "
        "first poll."
    )
    section.target(
        "warm python job vs fresh process", f"{speedup:.1f}x faster", f">= {TARGET_SPEEDUP:g}x",
        speedup >= TARGET_SPEEDUP,
    )  # fmt: skip
    return section
