"""`serve --user-memory`: the memory of each user's sandboxed processes together, in cgroups.

RLIMIT_DATA (`--engine-memory`) caps each engine process's private memory only: shared memory
and the files of a sandbox's private /tmp are not counted, and a user may run several engines.
Where the machine lets the server create cgroups with the memory controller, bob's jobs that map
and touch 1 GB of shared memory or write 1 GB into /tmp fail at his 400 MB while the server and
alice's jobs go on, and his next job runs on a new engine. Where only the pids controller can
be used, the server must say there is no per-user memory limit and why; without cgroups, that
only RLIMIT_NPROC holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cgroupprobe import cap_line, cgroups_writable, memory_root
from support.serverproc import ServerProcess, sql_engine_pids, start_server
from support.twousers import ALICE, BOB, user_client

PIDS, MEMORY = cgroups_writable("pids"), cgroups_writable("memory")
SHARED_HOG = """import mmap
shared = mmap.mmap(-1, 1 << 30)  # MAP_SHARED: RLIMIT_DATA does not count it
for offset in range(0, len(shared), 4096):
    shared[offset] = 1
print("touched")"""
TMP_HOG = "head -c 1G /dev/zero > /tmp/fill && echo wrote"
ALICE_WAITS = "import time\ntime.sleep(3)\nprint(6 * 7)"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("user-memory")
    args = ["--engine-memory", "300MB", "--user-memory", "400MB"]
    with start_server(data, args=args, users=[BOB, ALICE]) as started:
        yield started


def _needs_memory_cgroups(server: ServerProcess) -> None:
    line = cap_line(server.log_text())
    if not PIDS:
        assert "RLIMIT_NPROC only" in line and "no per-user memory limit either" in line, line
        pytest.skip("this machine lets no process create cgroups")
    if not MEMORY:
        assert "no per-user memory limit, only each process's own: " in line, line
        pytest.skip("this machine lets no process create cgroups with the memory controller")


def test_the_server_says_which_memory_limit_holds(server: ServerProcess) -> None:
    _needs_memory_cgroups(server)
    line = cap_line(server.log_text())
    assert "their memory together at most 400 MB, shared memory and /tmp files included" in line
    root = memory_root(line)
    assert root is not None and root.name == f"linkis-kernel-{server.process.pid}"


def test_shared_memory_past_the_limit_ends_bobs_engine_alone(server: ServerProcess) -> None:
    _needs_memory_cgroups(server)
    bob, alice = user_client(server, BOB), user_client(server, ALICE)
    bob.submit("print(1)", engine="python").wait(timeout=90)
    theirs = alice.submit(ALICE_WAITS, engine="python")
    hog = bob.submit(SHARED_HOG, engine="python")
    hog.wait(timeout=120, raise_on_failure=False)
    assert hog.state == "Failed"
    failure = str(hog.failure())
    assert "60003" in failure and "exited with status" in failure, failure
    assert "serve --user-memory" in failure and "(400 MB" in failure, failure
    assert server.process.poll() is None
    theirs.wait(timeout=90)
    assert str(theirs.results()[0].data).strip() == "42"
    root = memory_root(cap_line(server.log_text()))
    assert root is not None
    limit = (root / "bob" / "memory.limit_in_bytes", root / "bob" / "memory.max")
    assert any(f.exists() and f.read_text().strip() == str(400 << 20) for f in limit)


def test_files_in_the_private_tmp_count_and_bob_runs_again(server: ServerProcess) -> None:
    _needs_memory_cgroups(server)
    bob, alice = user_client(server, BOB), user_client(server, ALICE)
    hog = bob.submit(TMP_HOG, engine="shell")
    hog.wait(timeout=120, raise_on_failure=False)
    assert hog.state == "Failed"  # head was ended or its write failed: "wrote" never ran
    assert "serve --user-memory" in str(hog.failure())  # the limit is named as the reason
    assert server.process.poll() is None
    theirs = alice.submit("echo $((6 * 7))", engine="shell")
    theirs.wait(timeout=90)
    assert str(theirs.results()[0].data).strip() == "42"
    for code, engine in (("print(6 * 7)", "python"), ("echo $((6 * 7))", "shell")):
        again = bob.submit(code, engine=engine)
        again.wait(timeout=90)
        assert str(again.results()[0].data).strip() == "42"


def test_a_users_sql_engine_is_in_their_cgroups(server: ServerProcess) -> None:
    _needs_memory_cgroups(server)
    user_client(server, BOB).submit("select 1", engine="hive").wait(timeout=60)
    (pid,) = sql_engine_pids(server, "bob")
    groups = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    mine = f"/linkis-kernel-{server.process.pid}/bob"
    joined = {line.split(":")[1] for line in groups if line.endswith(mine)}
    # cgroup v1: its group in the pids and the memory hierarchies; v2: the one unified group
    expected = {"pids", "memory"} if "cgroup v1" in cap_line(server.log_text()) else {""}
    assert joined == expected, groups
