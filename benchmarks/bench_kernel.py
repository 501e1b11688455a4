"""Benchmarks 4 and 5: kernel start, and `%%linkis select 1` end to end.

4. Start to kernel_info_reply of the `linkis_sql` kernel against the stock `python3` kernel,
   both kernelspecs installed into a temporary prefix found through JUPYTER_PATH, alternating.
5. `%%linkis select 1` in a running python3 kernel (`%load_ext linkis_kernel`), driven by
   jupyter_client: wall time of execute-to-idle minus the job's costTime from job history.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest.mock import patch

from benchlib import Section, Server, alternate, median, ms, percentile, record_requests

LINKIS_KERNEL = "linkis_sql"
PYTHON_KERNEL = "python3"
START_TARGET = 1.2
KERNEL_TIMEOUT = 60.0
MAGIC_CELL = "%%linkis\nselect 1"


@contextmanager
def kernel_environment(server: Server, root: Path) -> Iterator[dict[str, str]]:
    """Point Jupyter at kernelspecs under `root` (this process and kernels alike) and give
    kernels private IPython and runtime dirs and the server's connection settings."""
    env = server.env()
    extra = {
        "JUPYTER_PATH": str(root / "share" / "jupyter"),
        "IPYTHONDIR": str(root / "ipython"),
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }
    with patch.dict(os.environ, extra):
        yield {**env, **extra}


def install_kernelspecs(prefix: Path) -> str | None:
    """Install python3 and linkis_sql under `prefix`; returns why linkis_sql is missing, if so."""
    python = [sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix)]
    subprocess.run(python, check=True, capture_output=True)
    linkis = [sys.executable, "-m", "linkis_kernel", "install", "--prefix", str(prefix)]
    done = subprocess.run(linkis, capture_output=True, text=True)
    spec = prefix / "share" / "jupyter" / "kernels" / LINKIS_KERNEL / "kernel.json"
    if done.returncode == 0 and spec.exists():
        return None
    lines = (done.stderr or done.stdout or "no output").strip().splitlines()
    return f"`linkis-kernel install --prefix` failed (exit {done.returncode}): {lines[-1]}"


def start_kernel(name: str, env: dict[str, str]) -> tuple[Any, Any]:
    from jupyter_client.manager import start_new_kernel

    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    return start_new_kernel(startup_timeout=KERNEL_TIMEOUT, kernel_name=name, env=env, **quiet)


def stop_kernel(manager: Any, client: Any) -> None:
    client.stop_channels()
    manager.shutdown_kernel(now=True)


def time_start(name: str, env: dict[str, str]) -> float:
    """Seconds from start to kernel_info_reply (start_new_kernel waits for that reply)."""
    started = time.perf_counter()
    manager, client = start_kernel(name, env)
    seconds = time.perf_counter() - started
    stop_kernel(manager, client)
    return seconds


def measure_kernel_start(server: Server, reps: int) -> Section:
    """Section 4."""
    section = Section("kernel_start", "4. Kernel start (`linkis_sql` vs stock `python3`)")
    with tempfile.TemporaryDirectory(prefix="bench-kernels-") as tmp:
        root = Path(tmp)
        missing = install_kernelspecs(root)
        with kernel_environment(server, root) as env:
            if missing:
                times = [time_start(PYTHON_KERNEL, env) for _ in range(reps + 1)][1:]
                section.table(
                    ["kernel", "starts", "median", "min"],
                    [[PYTHON_KERNEL, reps, ms(median(times)), ms(min(times))]],
                )
                section.note(f"`{LINKIS_KERNEL}` not measured: {missing}.")
                section.target("linkis_sql start vs python3", "n/a", f"<= {START_TARGET}x", None)
                return section
            for name in (LINKIS_KERNEL, PYTHON_KERNEL):
                time_start(name, env)  # unmeasured: byte-compiles changed sources, warms caches
            ours, stock = alternate(
                reps,
                [lambda: time_start(LINKIS_KERNEL, env), lambda: time_start(PYTHON_KERNEL, env)],
            )
    ratio = median(ours) / median(stock)
    kernel_import, pandas_loaded = import_cost("linkis_kernel.kernel")
    ipykernel_import, _ = import_cost("ipykernel.ipkernel")
    section.table(
        ["kernel", "starts", "median", "min"],
        [
            [LINKIS_KERNEL, reps, ms(median(ours)), ms(min(ours))],
            [PYTHON_KERNEL, reps, ms(median(stock)), ms(min(stock))],
        ],
    )
    section.note(
        f"Ratio of medians: **{ratio:.2f}x**. Start = start_new_kernel() to its return; "
        f"one unmeasured start of each kernel first. "
        f"Import time in a fresh interpreter (`-X importtime`): `linkis_kernel.kernel` "
        f"{ms(kernel_import)}, `ipykernel.ipkernel` {ms(ipykernel_import)}; pandas "
        f"{'is' if pandas_loaded else 'is not'} loaded by importing the kernel module."
    )
    section.target(
        "linkis_sql start vs python3", f"{ratio:.2f}x", f"<= {START_TARGET}x", ratio <= START_TARGET
    )
    return section


def import_cost(module: str) -> tuple[float, bool]:
    """Seconds `import module` takes in a fresh interpreter, and whether it loads pandas."""
    code = f"import {module}, sys; print('pandas' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
    )
    cumulative = [
        int(line.split("|")[1])
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.rstrip().endswith(f"| {module}")
    ]
    return cumulative[-1] / 1e6, done.stdout.strip() == "True"


def execute(client: Any, code: str) -> float:
    """Run `code` in the kernel until its reply and idle; returns the seconds it took."""
    started = time.perf_counter()
    reply = client.execute_interactive(code, timeout=KERNEL_TIMEOUT, output_hook=lambda _: None)
    seconds = time.perf_counter() - started
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"{code!r} failed in the kernel: {reply['content']}")
    return seconds


def measure_magic(server: Server, reps: int) -> Section:
    """Section 5: overhead of `%%linkis select 1` beyond the server's own costTime."""
    section = Section("magic", "5. `%%linkis select 1` end to end in a python3 kernel")
    with tempfile.TemporaryDirectory(prefix="bench-magic-") as tmp:
        root = Path(tmp)
        subprocess.run(
            [sys.executable, "-m", "ipykernel", "install", "--prefix", str(root)],
            check=True,
            capture_output=True,
        )
        with kernel_environment(server, root) as env:
            manager, client = start_kernel(PYTHON_KERNEL, env)
            try:
                load = execute(client, "%load_ext linkis_kernel")
                first = execute(client, MAGIC_CELL)
                walls = [execute(client, MAGIC_CELL) for _ in range(reps)]
            finally:
                stop_kernel(manager, client)
    history = server.client()
    tasks = sorted(history.jobhistory_list(page_size=reps).tasks, key=lambda t: t.task_id)
    history.close()
    if len(tasks) != reps or any("select 1" not in (t.execution_code or "") for t in tasks):
        raise RuntimeError("job history does not hold the measured `select 1` jobs")
    costs = [(t.cost_time_ms or 0) / 1000 for t in tasks]
    overheads = [wall - cost for wall, cost in zip(walls, costs, strict=True)]
    api_wall, api_cost, api_requests = measure_api_path(server, reps)
    section.table(
        ["runs", "wall median", "server costTime median", "overhead median", "overhead p90"],
        [
            [
                reps,
                ms(median(walls)),
                ms(median(costs)),
                f"**{ms(median(overheads))}**",
                ms(percentile(overheads, 0.9)),
            ]
        ],
    )
    section.note(
        f"`%load_ext linkis_kernel` took {ms(load)}; the first `%%linkis` cell (client set-up, "
        f"imports) took {ms(first)} and is not among the runs. Wall time = execute request to "
        "reply and idle (all outputs delivered)."
    )
    section.note(
        f"For comparison, the same job through the Python API in this process "
        f"(`client.submit(...).wait()` then `job.results()`): wall median {ms(api_wall)}, "
        f"costTime median {ms(api_cost)}, overhead {ms(api_wall - api_cost)}, "
        f"{api_requests:g} HTTP requests per run (median)."
    )
    section.target(
        "overhead beyond costTime (reported)", ms(median(overheads)), "as low as possible", None
    )
    return section


def measure_api_path(server: Server, reps: int) -> tuple[float, float, float]:
    """(wall, costTime, requests) medians of `select 1` through the Python API, in process."""
    client = server.client()
    adapter = record_requests(client)
    walls, costs, counts = [], [], []
    for _ in range(reps):
        sent = len(adapter.records)
        started = time.perf_counter()
        job = client.submit("select 1", engine="spark")
        job.wait(timeout=KERNEL_TIMEOUT)
        job.results()
        walls.append(time.perf_counter() - started)
        counts.append(len(adapter.records) - sent)
        costs.append((client.jobhistory_get(job.task_id).cost_time_ms or 0) / 1000)
    client.close()
    return median(walls), median(costs), median(counts)
