"""Where the server finds the cgroup its per-user groups go in (local/cgroups.py), from the texts
of /proc/self/cgroup and /proc/self/mountinfo as Linux writes them on v1, v2 and in containers.
The v2 cases read `cgroup.controllers` from a folder standing in for the mount."""

from __future__ import annotations

from pathlib import Path

from linkis_kernel.local.cgroups import _own_pids_cgroup

V1_OWN = "9:name=systemd:/\n8:pids:/user.slice/x\n4:memory:/a\n0::/\n"
V1_MOUNTS = (
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
)


def test_v1_pids_is_the_servers_own_group_under_the_pids_mount() -> None:
    assert _own_pids_cgroup(V1_OWN, V1_MOUNTS) == (Path("/sys/fs/cgroup/pids/user.slice/x"), 1)


def test_v1_in_a_container_whose_mount_starts_at_its_own_group() -> None:
    own = "5:pids:/docker/abc/inner\n0::/\n"
    mounts = "50 40 0:36 /docker/abc /sys/fs/cgroup/pids ro,nosuid - cgroup cgroup rw,pids\n"
    assert _own_pids_cgroup(own, mounts) == (Path("/sys/fs/cgroup/pids/inner"), 1)


def test_a_group_outside_every_mount_is_not_used() -> None:
    own = "5:pids:/elsewhere\n"
    mounts = "50 40 0:36 /docker/abc /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
    assert "no cgroup hierarchy with the pids controller" in str(_own_pids_cgroup(own, mounts))


def test_v2_with_pids_available(tmp_path: Path) -> None:
    (tmp_path / "service").mkdir()
    (tmp_path / "service" / "cgroup.controllers").write_text("cpu memory pids\n")
    mounts = f"30 23 0:26 / {tmp_path} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
    assert _own_pids_cgroup("0::/service\n", mounts) == (tmp_path / "service", 2)


def test_v2_without_pids_is_no_place(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("hugetlb\n")
    mounts = f"41 31 0:38 / {tmp_path} rw,relatime - cgroup2 cgroup2 rw\n"
    assert isinstance(_own_pids_cgroup("0::/\n", mounts), str)


def test_lines_it_does_not_know_are_passed_over() -> None:
    own = "garbage\n\n8:pids:/x\n"
    assert _own_pids_cgroup(own, "short line\n" + V1_MOUNTS) == (Path("/sys/fs/cgroup/pids/x"), 1)
