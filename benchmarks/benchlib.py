"""Shared pieces of the benchmarks: an embedded server per run, request timing, statistics, and
the section record that `run.py` turns into RESULTS.md.

The server's token reaches worker subprocesses through the environment (LINKIS_URL,
LINKIS_USER, LINKIS_TOKEN), never through a command line.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from linkis_kernel import wire
from linkis_kernel.job import Job, LinkisClient
from linkis_kernel.wire import read_connection, server_answers

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
BENCH_CREATOR = "bench"  # not IDE: no 5000-row cap on SQL results
SERVER_START_TIMEOUT = 30.0
JOB_TIMEOUT = 600.0
# Engine spark's SQL on DuckDB, as before a real Spark existed, so the figures of the benchmarks
# that use engine spark for its SQL stay comparable between runs and machines; the engines
# benchmark starts a server of its own for the real Spark.
STAND_IN_SPARK_ENV = {"LINKIS_KERNEL_SPARK": "duckdb"}


@dataclass
class Server:
    """A `linkis-kernel serve` subprocess started for one benchmark run."""

    url: str
    user: str
    token: str
    pid: int
    data_dir: Path
    process: subprocess.Popen[bytes]

    def client(self) -> LinkisClient:
        """A new client (own HTTP session) authenticated by the server's token."""
        return LinkisClient(self.url, user=self.user, token=self.token)

    def session(self, user: str | None = None, token: str | None = None) -> requests.Session:
        """A plain requests.Session that sends the token headers, as the client does: the
        server's user, or `user` (one of users.json) with its `token`."""
        session = requests.Session()
        session.trust_env = False
        session.headers[wire.TOKEN_USER_HEADER] = user or self.user
        session.headers[wire.TOKEN_CODE_HEADER] = token or self.token
        return session

    def api(self, path: str) -> str:
        return f"{self.url}{wire.API_PREFIX}/{path}"

    def env(self) -> dict[str, str]:
        """The environment a worker process or kernel needs to reach this server."""
        return {
            **os.environ,
            "LINKIS_URL": self.url,
            "LINKIS_USER": self.user,
            "LINKIS_TOKEN": self.token,
        }

    def rss_kb(self) -> int:
        """The server process's resident set (VmRSS) in kB."""
        return proc_rss_kb(self.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU seconds the server process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    data_dir: Path,
    workers: int = 2,
    env: dict[str, str] | None = None,
    args: Sequence[str] = (),
    users: Sequence[dict[str, str]] = (),
) -> Server:
    """Start an embedded server on a free port, data in `data_dir`, with `env` added to this
    process's environment, `args` added to `serve`'s options and `users` (name, password,
    token) written to users.json first; wait until it answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if users:
        (data_dir / "users.json").write_text(json.dumps(list(users)))
    command = [sys.executable, "-m", "linkis_kernel", "serve", "--port", "0"]
    command += ["--data-dir", str(data_dir), "--workers", str(workers), *args]
    log = open(data_dir / "bench-server.out", "ab")  # noqa: SIM115 (the process keeps it)
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        env={**os.environ, **(env or {})},
    )
    log.close()
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        conn = read_connection(data_dir)
        if conn and conn["pid"] == process.pid and server_answers(conn["url"]):
            return Server(conn["url"], conn["user"], conn["token"], process.pid, data_dir, process)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    tail = (data_dir / "bench-server.out").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"the embedded server in {data_dir} did not start; its output:\n{tail}")


def proc_rss_kb(pid: int) -> int:
    """VmRSS of a process in kB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS line for pid {pid}")


def run_job(
    client: LinkisClient, code: str, *, engine: str = "spark", creator: str = BENCH_CREATOR
) -> Job:
    """Submit `code`, wait for it to succeed, return the job."""
    job = client.submit(code, engine=engine, creator=creator)
    job.wait(timeout=JOB_TIMEOUT)
    return job


@dataclass
class RequestRecord:
    method: str
    path: str
    seconds: float


class RecordingAdapter(HTTPAdapter):
    """An HTTPAdapter that records every request it sends: method, API path, wall seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[RequestRecord] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return super().send(request, *args, **kwargs)
        finally:
            path = (request.path_url or "").split("?", 1)[0].split(wire.API_PREFIX, 1)[-1]
            self.records.append(
                RequestRecord(request.method or "", path, time.perf_counter() - started)
            )


def record_requests(client: LinkisClient) -> RecordingAdapter:
    """Mount a RecordingAdapter on the client's HTTP session; returns it."""
    adapter = RecordingAdapter()
    client._session.mount("http://", adapter)  # the client exposes no transport hook
    return adapter


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The `fraction` quantile (nearest rank) of `values`."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def alternate(reps: int, runners: Sequence[Callable[[], Any]]) -> list[list[Any]]:
    """Run each runner `reps` times, interleaved (a, b, a, b, ... with the order flipped every
    other round), so that machine noise hits all of them alike. Returns one list per runner."""
    results: list[list[Any]] = [[] for _ in runners]
    for rep in range(reps):
        order = list(range(len(runners)))
        if rep % 2:
            order.reverse()
        for index in order:
            results[index].append(runners[index]())
    return results


def run_worker(script: str, args: Sequence[str], env: dict[str, str]) -> dict[str, Any]:
    """Run `benchmarks/<script>` in a fresh interpreter; its last stdout line is a JSON object."""
    command = [sys.executable, str(BENCH_DIR / script), *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=JOB_TIMEOUT)
    if done.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@dataclass
class Target:
    """One target of a benchmark and whether this run met it."""

    name: str
    measured: str
    limit: str
    met: bool | None  # None: could not be measured in this run


@dataclass
class Section:
    """One benchmark's outcome: a markdown body (tables, notes) and its targets."""

    key: str
    title: str
    body: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    seconds: float = 0.0
    failed: bool = False  # the benchmark raised; its body holds the error

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.body.append("| " + " | ".join(header) + " |")
        self.body.append("|" + "|".join("---" for _ in header) + "|")
        for row in rows:
            self.body.append("| " + " | ".join(str(cell) for cell in row) + " |")
        self.body.append("")

    def note(self, text: str) -> None:
        self.body.extend([text, ""])

    def target(self, name: str, measured: str, limit: str, met: bool | None) -> None:
        self.targets.append(Target(name, measured, limit, met))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:.3f} s"


def mb(kilobytes: float) -> str:
    return f"{kilobytes / 1024:.1f} MB"
