"""README's "Security" promises that no other test holds the server to, against real servers.

* The `auto` defaults: with several users, `--engine-memory` is a quarter of the machine's memory
  (each engine's RLIMIT_DATA; DuckDB gets half of it), `--user-memory` the same, at most 4,096
  processes per user and a disk quota of 5 GB (at most a quarter of the data dir's disk), as the
  server's start says; with one user, no memory cap and no quota.
* A sandboxed job's environment is exactly the one listed, it has no capabilities (nor gains any
  by running a program), cannot dump core, and has namespaces of its own for process ids, IPC,
  host name and network.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cgroupprobe import memory_root
from support.serverproc import ServerProcess, sql_engine_pids, start_server
from support.twousers import ALICE, BOB

from linkis_kernel import LinkisClient
from linkis_kernel.local.quota import format_size

PHYSICAL_MEMORY = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
QUARTER_OF_MEMORY = max(PHYSICAL_MEMORY // 4, 256 << 20)
SANDBOX_ENVIRONMENT = {
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "TMPDIR", "PWD", "PYTHONUNBUFFERED",
    "PYTHONIOENCODING", "PYTHONDONTWRITEBYTECODE", "SPARK_LOCAL_IP",
} | ({"JAVA_HOME"} if os.environ.get("JAVA_HOME") or shutil.which("java") else set())  # fmt: skip
# A shell job: the names in its shell's environment, then the capabilities and privilege flag of
# a program it runs (grep reads its own status), then its core-size limits (soft, hard), then
# its namespaces.
SHELL_PROBE = r"""tr '\0' '\n' < /proc/$$/environ | cut -d= -f1 | sort | paste -sd' '
grep -E '^(Cap(Inh|Prm|Eff|Amb)|NoNewPrivs):' /proc/self/status | tr -d ' \t' | paste -sd' '
echo "$(ulimit -c) $(ulimit -Hc)"
for space in pid ipc uts net; do readlink "/proc/self/ns/$space"; done | paste -sd' '
"""
PYTHON_PROBE = """import json, os, resource
status = dict(line.split(":\\t", 1) for line in open("/proc/self/status").read().splitlines())
print(json.dumps({"env": sorted(os.environ), "CapEff": status["CapEff"].strip(),
                  "core": resource.getrlimit(resource.RLIMIT_CORE),
                  "data": resource.getrlimit(resource.RLIMIT_DATA)}))"""
DUCKDB_UNITS = {"bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Two users and every option at its default."""
    with start_server(tmp_path_factory.mktemp("defaults"), users=[BOB, ALICE]) as started:
        yield started


def _client(server: ServerProcess, user: dict[str, str]) -> LinkisClient:
    return LinkisClient(server.url, user=user["name"], token=user["token"])


def _output(client: LinkisClient, code: str, engine: str) -> str:
    job = client.submit(code, engine=engine)
    job.wait(timeout=90)
    return "\n".join(str(result.data) for result in job.results())


def _data_limit(pid: int) -> str:
    """The soft RLIMIT_DATA of a process, as /proc/<pid>/limits writes it."""
    lines = Path(f"/proc/{pid}/limits").read_text().splitlines()
    return next(line for line in lines if line.startswith("Max data size")).split()[3]


def _duckdb_bytes(setting: str) -> tuple[float, float]:
    """The bytes of a size DuckDB shows (`2.9 GiB`), and how far off its rounding may be."""
    number, unit = setting.split()
    return float(number) * DUCKDB_UNITS[unit], 0.05 * DUCKDB_UNITS[unit]


def test_auto_defaults_with_several_users(server: ServerProcess) -> None:
    disk = os.statvfs(server.data_dir)
    quota = min(5 << 30, disk.f_blocks * disk.f_frsize // 4)
    said = (server.data_dir / "server.log").read_text()
    assert f"disk quota: {format_size(quota)} per user" in said
    cap_line = next(line for line in said.splitlines() if "Process cap:" in line)
    if "RLIMIT_NPROC only" not in cap_line:
        assert "processes and threads together at most 4096 " in cap_line, cap_line
    if memory_root(cap_line) is not None:
        assert f"their memory together at most {QUARTER_OF_MEMORY >> 20} MB" in cap_line

    job = _client(server, BOB).submit(
        "select current_setting('memory_limit'), current_setting('temp_directory')", engine="hive"
    )
    job.wait(timeout=60)
    memory_limit, spill = job.results()[0].data.iloc[0]
    (pid,) = sql_engine_pids(server, "bob")
    assert _data_limit(pid) == str(QUARTER_OF_MEMORY)
    duckdb_limit, rounding = _duckdb_bytes(memory_limit)
    assert abs(duckdb_limit - QUARTER_OF_MEMORY / 2) <= rounding, memory_limit
    assert spill == str(server.data_dir.resolve() / "users" / "bob" / "sql.duckdb.tmp")


def test_auto_defaults_with_one_user(tmp_path: Path) -> None:
    with start_server(tmp_path / "data") as alone:
        said = (alone.data_dir / "server.log").read_text()
        assert "disk quota: none" in said
        owner = alone.linkis_client()
        assert _output(owner, "ulimit -d; ulimit -Hd", "shell").split() == ["unlimited"] * 2
        owner.submit("select 1", engine="hive").wait(timeout=60)
        (pid,) = sql_engine_pids(alone, alone.user)
        assert _data_limit(pid) == "unlimited"


def test_a_sandboxed_job_has_the_listed_environment_no_capabilities_and_no_core_dumps(
    server: ServerProcess,
) -> None:
    bob = _client(server, BOB)
    names, capabilities, core, namespaces = _output(bob, SHELL_PROBE, "shell").strip().splitlines()
    assert set(names.split()) == SANDBOX_ENVIRONMENT
    assert capabilities.split() == [
        "CapInh:0000000000000000", "CapPrm:0000000000000000", "CapEff:0000000000000000",
        "CapAmb:0000000000000000", "NoNewPrivs:1",
    ]  # fmt: skip
    assert core == "0 0"
    hosts = [os.readlink(f"/proc/self/ns/{space}") for space in ("pid", "ipc", "uts", "net")]
    assert not set(namespaces.split()) & set(hosts), namespaces  # its own, every one

    seen = json.loads(_output(bob, PYTHON_PROBE, "python"))
    assert set(seen["env"]) == SANDBOX_ENVIRONMENT | {"MPLBACKEND"}  # the engine's own
    assert seen["CapEff"] == "0000000000000000"
    assert seen["core"] == [0, 0]
    assert seen["data"] == [QUARTER_OF_MEMORY, QUARTER_OF_MEMORY]
