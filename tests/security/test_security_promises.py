"""README's "Security" promises that no other test holds the server to, against real servers.

* The `auto` defaults: with several users, `--engine-memory` is a quarter of the machine's memory
  (each engine's RLIMIT_DATA; DuckDB gets half of it), `--user-memory` the same, at most 4,096
  processes per user and a disk quota of 5 GB (at most a quarter of the data dir's disk), as the
  server's start says; with one user, no memory cap and no quota.
* A sandboxed job's environment is exactly the one listed, it has no capabilities (nor gains any
  by running a program), cannot dump core, and has namespaces of its own for process ids, IPC,
  host name and network.
* The disk quota counts what a sparse file holds, not its length, and the scratch folders of a
  user's running jobs and engines.
* A user's token is not throttled while password logins for that user are.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from support.cgroupprobe import cap_line, memory_root
from support.serverproc import ServerProcess, sql_engine_pids, start_server
from support.twousers import ALICE, BOB, envelope, user_client, user_session

from linkis_kernel import LinkisClient, wire
from linkis_kernel.local.quota import ERR_DISK_QUOTA, format_size

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


@pytest.fixture(scope="module")
def quota_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("quota")
    with start_server(data, users=[BOB, ALICE], args=["--disk-quota", "5MB"]) as started:
        yield started


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
    cap = cap_line(said)
    if "RLIMIT_NPROC only" not in cap:
        assert "processes and threads together at most 4096 " in cap, cap
    if memory_root(cap) is not None:
        assert f"their memory together at most {QUARTER_OF_MEMORY >> 20} MB" in cap

    job = user_client(server, BOB).submit(
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
    bob = user_client(server, BOB)
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


def _run_shell(server: ServerProcess, session: requests.Session, code: str) -> dict:
    """Submit a Shell job, wait for it and return its history task."""
    job = server.submit(code, engine="shell", run_type="shell", session=session)
    server.wait(job["execID"], session=session)
    return _task(server, session, job["taskID"])


def _task(server: ServerProcess, session: requests.Session, task_id: int) -> dict:
    return server.get_data(f"jobhistory/{task_id}/get", session=session)["task"]


def _warning(server: ServerProcess, session: requests.Session, task: dict) -> str:
    """The quota warning a job's log opens with ("" if it has none)."""
    log = server.get_data("filesystem/openLog", session=session, path=task["logPath"])["log"]
    first = log[3].splitlines()[0]
    return first if "Over the disk quota" in first else ""


def test_a_sparse_file_counts_what_it_holds_not_its_length(quota_server: ServerProcess) -> None:
    server, bob = quota_server, user_session(quota_server, BOB)
    sparse = server.data_dir / "users" / "bob" / "files" / "sparse.bin"
    made = _run_shell(server, bob, 'truncate -s 10G "$HOME/sparse.bin"')
    assert made["status"] == wire.SUCCEED
    assert sparse.stat().st_size == 10 << 30
    assert _warning(server, bob, _run_shell(server, bob, "echo")) == ""

    # 6 MB written into its middle are 6 MB used: over the quota (the writing job itself may
    # be stopped for it).
    _run_shell(server, bob, 'head -c 6291456 /dev/urandom | dd of="$HOME/sparse.bin" '
               "bs=1M seek=4096 conv=notrunc iflag=fullblock status=none")  # fmt: skip
    over = _warning(server, bob, _run_shell(server, bob, "echo"))
    assert re.search(r"you use 6\.\d MB", over), over

    assert _run_shell(server, bob, 'rm "$HOME/sparse.bin"')["status"] == wire.SUCCEED


def test_the_scratch_folders_of_running_jobs_and_engines_count(
    quota_server: ServerProcess,
) -> None:
    server, bob = quota_server, user_session(quota_server, BOB)
    writing = _run_shell(server, bob, "head -c 6291456 /dev/zero > big.bin; sleep 30")
    assert writing["status"] == wire.FAILED
    assert writing["errCode"] == ERR_DISK_QUOTA

    python = user_client(server, BOB)
    # The engine's working folder lives as long as the engine, so its files count after the job
    # (which may itself be stopped as it passes the quota).
    python.submit("open('big.bin', 'wb').write(bytes(6 << 20))", engine="python").wait(
        timeout=90, raise_on_failure=False
    )
    over = _warning(server, bob, _run_shell(server, bob, "echo"))
    assert re.search(r"you use 6\.\d MB", over), over
    python.submit("import os\nos.remove('big.bin')", engine="python").wait(timeout=90)
    assert _warning(server, bob, _run_shell(server, bob, "echo")) == ""


def test_a_token_is_not_throttled_when_password_logins_are(server: ServerProcess) -> None:
    login = {"userName": BOB["name"], "password": "not-bobs-password"}
    for _ in range(6):
        requests.post(server.api("user/login"), json=login, timeout=10)
    login["password"] = BOB["password"]
    refused = requests.post(server.api("user/login"), json=login, timeout=10).json()
    assert refused["message"].startswith("Too many failed logins"), refused
    answer = envelope(user_session(server, BOB).get(server.api("user/userInfo"), timeout=10))
    assert answer["status"] == 0, answer
