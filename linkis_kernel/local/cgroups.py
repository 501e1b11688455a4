"""Per-user process caps of the embedded server in cgroups, where it may create them.

RLIMIT_NPROC (sandbox.py) counts every process of the server's OS user, whoever's job started
it, and Linux does not apply it to root at all. Where the server can create cgroups with the
`pids` controller (a writable cgroup v1 `pids` hierarchy, e.g. as root, or cgroup v2 where the
subtree of the server's own cgroup may have `pids`), it makes a group `linkis-kernel-<pid>` in its
own cgroup, and in that one group per user, named like the user's data-dir folder, whose
`pids.max` caps the processes and threads of all that user's engine processes together. Each
engine process joins its user's group before it execs (sandbox.start_process), so whatever it
starts (bwrap, the job, a JVM) is counted there too; a fork past the cap fails.

The groups are removed when the server stops (what is still in them is killed first: no job
outlives its server), and those of servers that are gone when another one starts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

SERVER_GROUP_PREFIX = "linkis-kernel-"
_OWN_CGROUPS = Path("/proc/self/cgroup")
_MOUNTS = Path("/proc/self/mountinfo")
_EMPTY_TIMEOUT = 5.0  # seconds killed processes get to leave a group before it is removed


@dataclass(frozen=True)
class UserCgroups:
    """The server's cgroup (`root`), holding one group per user capped at `max_processes`."""

    root: Path
    version: int
    max_processes: int

    def for_user(self, folder: str) -> Path:
        """The cgroup of the user whose data-dir folder is `folder`, created on first use;
        OSError if it cannot be."""
        group = self.root / folder
        group.mkdir(exist_ok=True)
        (group / "pids.max").write_text(str(self.max_processes))
        return group

    def remove(self) -> None:
        """Kill what is left in the server's groups and remove them."""
        _remove_tree(self.root)


def create_user_cgroups(max_processes: int) -> UserCgroups | str:
    """The server's per-user cgroups, each capped at `max_processes` processes and threads;
    else why there are none. Groups of servers that are gone are removed first."""
    try:
        found = _own_pids_cgroup(_OWN_CGROUPS.read_text(), _MOUNTS.read_text())
    except OSError as exc:
        return f"the server's cgroups cannot be read ({exc.strerror})"
    if isinstance(found, str):
        return found
    parent, version = found
    root = parent / f"{SERVER_GROUP_PREFIX}{os.getpid()}"
    try:
        _remove_stale(parent)
        if version == 2:
            _enable_pids(parent)
        root.mkdir(exist_ok=True)
        if version == 2:
            _enable_pids(root)
    except OSError as exc:
        with contextlib.suppress(OSError):
            root.rmdir()
        return f"cgroup v{version} at {parent} is not writable ({exc.strerror})"
    return UserCgroups(root, version, max_processes)


def _own_pids_cgroup(own: str, mounts: str) -> tuple[Path, int] | str:
    """(folder of the server's own cgroup, cgroup version) in the hierarchy that has the pids
    controller (v1's `pids`, or v2 if pids is not bound to v1), from /proc/self/cgroup and
    /proc/self/mountinfo; else why there is none."""
    paths = {}  # "pids" (v1) or "" (v2) -> the server's cgroup path in that hierarchy
    for line in own.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if not path:
            continue
        if number == "0" and not controllers:
            paths[""] = path
        elif "pids" in controllers.split(","):
            paths["pids"] = path
    for line in mounts.splitlines():
        mount, _, fs = line.partition(" - ")
        fields, fs_fields = mount.split(), fs.split()
        if len(fields) < 5 or len(fs_fields) < 3:
            continue
        kind = "pids" if fs_fields[0] == "cgroup" else "" if fs_fields[0] == "cgroup2" else None
        if kind is None or kind not in paths:
            continue
        if kind == "pids" and "pids" not in fs_fields[2].split(","):
            continue
        folder = _inside(Path(fields[4]), fields[3], paths[kind])
        if folder is None:
            continue
        if kind == "pids":
            return folder, 1
        if "pids" in _words(folder / "cgroup.controllers"):
            return folder, 2
    return "no cgroup hierarchy with the pids controller is mounted for the server's cgroup"


def _inside(mount_point: Path, mount_root: str, path: str) -> Path | None:
    """Where cgroup `path` is under a mount of the hierarchy's `mount_root`; None if it is not
    under that mount."""
    root = mount_root.rstrip("/")
    if path != root and not path.startswith(root + "/"):
        return None
    return mount_point / path[len(root) :].lstrip("/")


def _words(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except OSError:
        return []


def _enable_pids(group: Path) -> None:
    """cgroup v2: let the children of `group` have the pids controller (left so in the
    server's own cgroup when it stops: other groups there may count on it)."""
    control = group / "cgroup.subtree_control"
    if "pids" not in _words(control):
        control.write_text("+pids")


def _remove_stale(parent: Path) -> None:
    """Remove the groups that servers no longer running left in `parent`."""
    for group in parent.glob(f"{SERVER_GROUP_PREFIX}*"):
        pid = group.name.removeprefix(SERVER_GROUP_PREFIX)
        if pid.isdigit() and group.is_dir() and not _alive(int(pid)):
            _remove_tree(group)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_tree(group: Path) -> None:
    """Remove `group` and the groups in it, killing the processes still there; what cannot be
    removed is left (the next server's start tries again)."""
    with contextlib.suppress(OSError):
        for child in group.iterdir():
            if child.is_dir():
                _remove_tree(child)
    deadline = time.monotonic() + _EMPTY_TIMEOUT
    while True:
        try:
            group.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                return
        for pid in _words(group / "cgroup.procs"):
            with contextlib.suppress(OSError):
                os.kill(int(pid), signal.SIGKILL)
        time.sleep(0.05)
