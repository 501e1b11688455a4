"""Where the server finds the cgroups its per-user groups go in (local/cgroups.py), from the texts
of /proc/self/cgroup and /proc/self/mountinfo as Linux writes them on v1, v2 and in containers;
how it writes a memory limit and reads the kernel's count of processes ended at one. The v2
cases read `cgroup.controllers` from a folder standing in for the mount, the memory limits are
written to folders standing in for groups."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from linkis_kernel.local.cgroups import (
    UserCgroups,
    _limit_memory,
    _own_cgroup,
    _with_memory,
    oom_kill_count,
)
from linkis_kernel.local.sandbox import Sandboxing

V1_OWN = "9:name=systemd:/\n8:pids:/user.slice/x\n4:memory:/a\n0::/\n"
V1_MOUNTS = (
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
)


def test_v1_pids_is_the_servers_own_group_under_the_pids_mount() -> None:
    assert _own_cgroup(V1_OWN, V1_MOUNTS, "pids") == (Path("/sys/fs/cgroup/pids/user.slice/x"), 1)


def test_v1_in_a_container_whose_mount_starts_at_its_own_group() -> None:
    own = "5:pids:/docker/abc/inner\n0::/\n"
    mounts = "50 40 0:36 /docker/abc /sys/fs/cgroup/pids ro,nosuid - cgroup cgroup rw,pids\n"
    assert _own_cgroup(own, mounts, "pids") == (Path("/sys/fs/cgroup/pids/inner"), 1)


def test_a_group_outside_every_mount_is_not_used() -> None:
    own = "5:pids:/elsewhere\n"
    mounts = "50 40 0:36 /docker/abc /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
    assert "no cgroup hierarchy with the pids controller" in str(_own_cgroup(own, mounts, "pids"))


def test_v2_with_pids_available(tmp_path: Path) -> None:
    (tmp_path / "service").mkdir()
    (tmp_path / "service" / "cgroup.controllers").write_text("cpu memory pids\n")
    mounts = f"30 23 0:26 / {tmp_path} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
    assert _own_cgroup("0::/service\n", mounts, "pids") == (tmp_path / "service", 2)


def test_v2_without_pids_is_no_place(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("hugetlb\n")
    mounts = f"41 31 0:38 / {tmp_path} rw,relatime - cgroup2 cgroup2 rw\n"
    assert isinstance(_own_cgroup("0::/\n", mounts, "pids"), str)


def test_lines_it_does_not_know_are_passed_over() -> None:
    own = "garbage\n\n8:pids:/x\n"
    assert _own_cgroup(own, "short line\n" + V1_MOUNTS, "pids") == (
        Path("/sys/fs/cgroup/pids/x"),
        1,
    )


def test_v1_memory_is_its_own_hierarchy() -> None:
    own = "8:pids:/\n4:memory:/process_api/abc\n0::/\n"
    assert _own_cgroup(own, V1_MOUNTS, "memory") == (
        Path("/sys/fs/cgroup/memory/process_api/abc"),
        1,
    )


def test_v2_memory_is_the_same_group_as_pids(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("memory pids\n")
    mounts = f"30 23 0:26 / {tmp_path} rw - cgroup2 cgroup2 rw\n"
    assert _own_cgroup("0::/\n", mounts, "memory") == _own_cgroup("0::/\n", mounts, "pids")


def test_no_memory_controller_is_said() -> None:
    found = _own_cgroup("8:pids:/x\n", V1_MOUNTS, "memory")
    assert (
        found == "no cgroup hierarchy with the memory controller is mounted for the server's cgroup"
    )


@pytest.mark.parametrize("memsw", [True, False])
def test_v1_limit_then_memsw_only_where_it_is(tmp_path: Path, memsw: bool) -> None:
    (tmp_path / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    if memsw:
        (tmp_path / "memory.memsw.limit_in_bytes").write_text("9223372036854771712\n")
    _limit_memory(tmp_path, 400 << 20)
    assert (tmp_path / "memory.limit_in_bytes").read_text() == str(400 << 20)
    assert (tmp_path / "memory.memsw.limit_in_bytes").exists() == memsw
    if memsw:
        assert (tmp_path / "memory.memsw.limit_in_bytes").read_text() == str(400 << 20)
    _limit_memory(tmp_path, None)
    assert (tmp_path / "memory.limit_in_bytes").read_text() == "-1"


def test_v2_limit_and_no_swap(tmp_path: Path) -> None:
    for name in ("memory.max", "memory.swap.max"):
        (tmp_path / name).write_text("max\n")
    _limit_memory(tmp_path, 1 << 30)
    assert (tmp_path / "memory.max").read_text() == str(1 << 30)
    assert (tmp_path / "memory.swap.max").read_text() == "0"


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", 3),  # v1 memory.oom_control
        ("low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n", 2),  # v2 memory.events
        ("oom_kill_disable 0\nunder_oom 0\n", 0),  # v1 of kernels before 4.13
        ("", 0),
    ],
)
def test_oom_kills_are_read_from_either_file(text: str, count: int) -> None:
    assert oom_kill_count(text) == count


def test_without_memory_cgroups_the_process_cap_line_says_why(tmp_path: Path) -> None:
    pids = UserCgroups(tmp_path / "linkis-kernel-1", 1, 64, memory_limit=400 << 20)
    cgroups = _with_memory(pids, "no cgroup hierarchy with the memory controller is mounted")
    note = Sandboxing(active=True, cgroups=cgroups).process_cap_note()
    assert note is not None
    level, line = note
    assert level == logging.WARNING  # a limit was asked for and cannot be set
    assert "together at most 64 (pids.max of cgroup v1" in line
    assert "no per-user memory limit, only each process's own: no cgroup hierarchy" in line


def test_with_memory_cgroups_each_user_joins_both_groups(tmp_path: Path) -> None:
    pids, memory = tmp_path / "pids", tmp_path / "memory"
    for hierarchy in (pids, memory):
        (hierarchy / "linkis-kernel-1").mkdir(parents=True)
    cgroups = UserCgroups(pids / "linkis-kernel-1", 1, 64, 400 << 20, memory / "linkis-kernel-1", 1)
    group = cgroups.for_user("bob")
    assert group.joins == (pids / "linkis-kernel-1" / "bob", memory / "linkis-kernel-1" / "bob")
    assert (group.joins[1] / "memory.limit_in_bytes").read_text() == str(400 << 20)
    assert group.oom_kills() == 0
    (group.joins[1] / "memory.oom_control").write_text("oom_kill_disable 0\noom_kill 1\n")
    assert "memory limit on this server (400 MB, serve --user-memory)" in group.limit_note(0)
    assert group.limit_note(1) == ""
