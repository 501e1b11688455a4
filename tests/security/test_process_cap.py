"""The cap on each user's processes (local/cgroups.py), against real server processes.

Tests run as root here and in CI, where RLIMIT_NPROC does not bind. Where the machine lets the
server create cgroups with the pids controller, bob's job that tries to start far more
processes than `--max-processes-per-user` is held at the cap while the server and alice's jobs
go on, and the server's groups (its memory groups too, where it has them) are gone once it
stops. Elsewhere the server must say that only RLIMIT_NPROC holds (and that as root it does not
bind).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cgroupprobe import cgroups_writable, memory_root, pids_root
from support.serverproc import ServerProcess, start_server
from support.twousers import ALICE, BOB, user_client
from support.waiting import wait_until

CAP = 48
ATTEMPTS = 100
# bob's shell job: a bounded fork loop whose children wait until the test drops a file in bob's
# HOME; each fork past the cap fails, and the job prints how many did not.
FORKS = f"""python3 - <<'EOF'
import os, sys, time
release = os.path.expanduser("~/release")
children, failed = [], 0
for _ in range({ATTEMPTS}):
    try:
        pid = os.fork()
    except OSError:
        failed += 1
        continue
    if pid == 0:
        while not os.path.exists(release):
            time.sleep(0.1)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print(f"forked={{len(children)}} failed={{failed}}")
EOF"""


CGROUPS, MEMORY = cgroups_writable("pids"), cgroups_writable("memory")


def _server_group(server: ServerProcess) -> Path:
    """The server's cgroup of per-user groups, as its startup line names it."""
    root = pids_root(server.log_text())
    assert root is not None, server.log_text()
    return root


def _assert_fallback_said(server: ServerProcess) -> None:
    text = server.log_text()
    assert "Process cap: RLIMIT_NPROC only" in text, text
    if os.geteuid() == 0:
        assert "Linux does not apply RLIMIT_NPROC to root" in text, text


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("process-cap")
    args = ["--max-processes-per-user", str(CAP)]
    with start_server(data, args=args, users=[BOB, ALICE]) as started:
        yield started


def test_the_server_says_which_process_cap_holds(server: ServerProcess) -> None:
    if not CGROUPS:
        _assert_fallback_said(server)
        return
    line = f"each user's Python, PySpark and Shell processes and threads together at most {CAP}"
    assert line in server.log_text()
    assert "RLIMIT_NPROC only" not in server.log_text()
    assert _server_group(server).name == f"linkis-kernel-{server.process.pid}"


def test_bob_is_held_at_the_cap_while_alice_and_the_server_go_on(server: ServerProcess) -> None:
    if not CGROUPS:
        _assert_fallback_said(server)
        pytest.skip("this machine lets no process create cgroups: only RLIMIT_NPROC holds")
    bob, alice = user_client(server, BOB), user_client(server, ALICE)
    release = server.data_dir / "users" / "bob" / "files" / "release"
    release.unlink(missing_ok=True)
    bob_group = _server_group(server) / "bob"
    forks = bob.submit(FORKS, engine="shell")
    try:
        current = bob_group / "pids.current"
        wait_until(lambda: current.exists() and int(current.read_text()) == CAP, 30)
        for code, engine in (("echo $((6 * 7))", "shell"), ("print(6 * 7)", "python")):
            job = alice.submit(code, engine=engine)
            job.wait(timeout=90)
            assert str(job.results()[0].data).strip() == "42"
        # alice's idle Python engine (bwrap twice, python) is counted in her group, not bob's
        assert int((bob_group.parent / "alice" / "pids.current").read_text()) >= 3
        held = bob.submit("echo more", engine="shell")
        held.wait(timeout=60, raise_on_failure=False)
        assert held.state == "Failed"  # bwrap itself cannot fork in bob's full group
        assert int(current.read_text()) == CAP
    finally:
        release.write_text("")
    forks.wait(timeout=60)
    counts = dict(p.split("=") for p in str(forks.results()[0].data).split())
    forked, failed = int(counts["forked"]), int(counts["failed"])
    assert forked + failed == ATTEMPTS
    # bwrap (twice), bash and python hold 4 of the cap; the rest is the children's
    assert CAP - 8 <= forked <= CAP - 4
    after = bob.submit("echo again", engine="shell")
    after.wait(timeout=60)
    assert str(after.results()[0].data).strip() == "again"


def test_a_server_removes_its_groups_and_those_of_a_killed_server(tmp_path: Path) -> None:
    first = start_server(tmp_path / "first", users=[BOB, ALICE])
    try:
        if not CGROUPS:
            _assert_fallback_said(first)
            pytest.skip("this machine lets no process create cgroups: only RLIMIT_NPROC holds")
        killed_group = _server_group(first)
        killed_memory = memory_root(first.log_text())  # --user-memory auto: there is a limit
        assert (killed_memory is not None) == MEMORY, first.log_text()
        user_client(first, BOB).submit("echo hi", engine="shell").wait(timeout=60)
        assert (killed_group / "bob").is_dir()
        assert killed_memory is None or (killed_memory / "bob").is_dir()
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(10)
    finally:
        first.stop()
    assert killed_group.is_dir()  # nobody removed it
    with start_server(tmp_path / "second", users=[BOB, ALICE]) as second:
        assert not killed_group.exists()
        assert killed_memory is None or not killed_memory.exists()
        group, memory = _server_group(second), memory_root(second.log_text())
        assert "together at most 4096 (pids.max" in second.log_text()  # the default cap
        user_client(second, BOB).submit("sleep 30 & sleep 30", engine="shell")
        current = group / "bob" / "pids.current"
        wait_until(lambda: current.exists() and int(current.read_text()) >= 3, 30)
    assert not group.exists()  # though bob's job still ran when the server was stopped
    assert memory is None or not memory.exists()
