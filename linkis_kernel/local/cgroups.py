"""Per-user process caps and memory limits of the embedded server in cgroups, where it may
create them.

RLIMIT_NPROC (sandbox.py) counts every process of the server's OS user, whoever's job started
it, and Linux does not apply it to root at all; RLIMIT_DATA caps each process's private memory
only, not shared memory nor the files of a tmpfs (a sandbox's /tmp and /dev/shm). Where the
server can create cgroups with the `pids` controller (a writable cgroup v1 `pids` hierarchy, e.g.
as root, or cgroup v2 where the subtree of the server's own cgroup may have `pids`), it makes a
group `linkis-kernel-<pid>` in its own cgroup, and in that one group per user, named like the
user's data-dir folder, whose `pids.max` caps the processes and threads of all that user's
engine processes together. Where the `memory` controller can be used too, each user's group also
has a memory limit (v2: `memory.max` of the same group; v1: `memory.limit_in_bytes` of a group
of the same name in the memory hierarchy, a tree of its own), which counts the shared memory and
tmpfs pages the user's processes touch as well; at the limit the kernel ends one of that user's
processes, none of the server's or other users'. Each engine process joins its user's groups
before it execs (sandbox.start_process), so whatever it starts (bwrap, the job, a JVM) is
counted there too; a fork past the cap fails.

The groups are removed when the server stops (what is still in them is killed first: no job
outlives its server), and those of servers that are gone when another one starts.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

SERVER_GROUP_PREFIX = "linkis-kernel-"
_OWN_CGROUPS = Path("/proc/self/cgroup")
_MOUNTS = Path("/proc/self/mountinfo")
_EMPTY_TIMEOUT = 5.0  # seconds killed processes get to leave a group before it is removed


@dataclass(frozen=True)
class UserGroup:
    """The cgroups of one user: those their processes join (one per hierarchy), and the one
    holding their memory limit of `memory_limit` bytes, if they have one."""

    joins: tuple[Path, ...]
    memory: Path | None = None
    memory_limit: int | None = None

    def oom_kills(self) -> int:
        """How many processes the kernel has ended in the user's group at its memory limit."""
        if self.memory is None:
            return 0
        v2 = self.memory / "memory.events"
        return oom_kill_count(_text(v2 if v2.exists() else self.memory / "memory.oom_control"))

    def limit_note(self, kills_before: int) -> str:
        """A sentence saying that the user's memory limit may be why their process died, if
        the kernel ended one of theirs at it since `oom_kills()` was `kills_before`; else ""."""
        if self.memory_limit is None or self.oom_kills() <= kills_before:
            return ""
        return (
            f" Your SQL, Python, PySpark and Shell processes together reached your memory limit on "
            f"this server ({self.memory_limit >> 20} MB, serve --user-memory) while it ran, "
            "and the system ended one of them: end engines you no longer need, or ask the "
            "server's owner for more."
        )


@dataclass(frozen=True)
class UserCgroups:
    """The server's cgroup (`root`), holding one group per user capped at `max_processes`; and,
    where users have a memory limit of `memory_limit` bytes, the server's group in the hierarchy
    with the memory controller (`memory_root`: `root` itself with cgroup v2) holding theirs;
    else `no_memory_limit` says why they have none."""

    root: Path
    version: int
    max_processes: int
    memory_limit: int | None = None
    memory_root: Path | None = None
    memory_version: int = 0
    no_memory_limit: str = ""
    # folder -> the user's groups, made and limited once (every engine and job start asks)
    _made: dict[str, UserGroup] = field(default_factory=dict, init=False, repr=False, compare=False)

    def for_user(self, folder: str) -> UserGroup:
        """The cgroups of the user whose data-dir folder is `folder`, created on first use;
        OSError if they cannot be."""
        made = self._made.get(folder)
        if made is None:
            made = self._made[folder] = self._make(folder)
        return made

    def _make(self, folder: str) -> UserGroup:
        group = self.root / folder
        group.mkdir(exist_ok=True)
        (group / "pids.max").write_text(str(self.max_processes))
        if self.memory_root is None or self.memory_limit is None:
            return UserGroup((group,))
        memory = self.memory_root / folder
        memory.mkdir(exist_ok=True)
        _limit_memory(memory, self.memory_limit)
        return UserGroup(tuple(dict.fromkeys((group, memory))), memory, self.memory_limit)

    def memory_note(self) -> str:
        """What the server says at start about each user's memory limit."""
        if self.memory_root is None or self.memory_limit is None:
            return f"no per-user memory limit, only each process's own: {self.no_memory_limit}"
        limit = "memory.max" if self.memory_version == 2 else "memory.limit_in_bytes"
        return (
            f"their memory together at most {self.memory_limit >> 20} MB, shared memory and "
            f"/tmp files included ({limit} of cgroup v{self.memory_version} "
            f"{self.memory_root}/<user>)"
        )

    def remove(self) -> None:
        """Kill what is left in the server's groups and remove them."""
        _remove_tree(self.root)
        if self.memory_root not in (None, self.root):  # v1: the memory hierarchy's own
            _remove_tree(self.memory_root)


def create_user_cgroups(max_processes: int, memory_limit: int | None) -> UserCgroups | str:
    """The server's per-user cgroups, each capped at `max_processes` processes and threads and,
    where the memory controller can be used, at `memory_limit` bytes (None: no memory limit);
    else why there are none. Groups of servers that are gone are removed first."""
    try:
        own, mounts = _OWN_CGROUPS.read_text(), _MOUNTS.read_text()
    except OSError as exc:
        return f"the server's cgroups cannot be read ({exc.strerror})"
    found = _own_cgroup(own, mounts, "pids")
    if isinstance(found, str):
        return found
    parent, version = found
    try:
        root = _server_group(parent, version, "pids")
    except OSError as exc:
        return f"cgroup v{version} at {parent} is not writable ({exc.strerror})"
    cgroups = UserCgroups(root, version, max_processes, memory_limit)
    return _with_memory(cgroups, _own_cgroup(own, mounts, "memory"))


def _with_memory(cgroups: UserCgroups, found: tuple[Path, int] | str) -> UserCgroups:
    """`cgroups` with the server's group in the memory hierarchy `found` (made here, after
    those of servers that are gone are removed), or with why users have no memory limit."""
    if isinstance(found, str):
        return replace(cgroups, no_memory_limit=found)
    parent, version = found
    if cgroups.memory_limit is None:
        with contextlib.suppress(OSError):
            _remove_stale(parent)
        why = "none is set (serve --user-memory, or --engine-memory with --user-memory auto)"
        return replace(cgroups, no_memory_limit=why)
    root = parent / f"{SERVER_GROUP_PREFIX}{os.getpid()}"
    try:
        _server_group(parent, version, "memory")
        _limit_memory(root, None)  # its files are there and may be written
    except OSError as exc:
        if root != cgroups.root:
            with contextlib.suppress(OSError):
                root.rmdir()
        return replace(
            cgroups,
            no_memory_limit=f"the memory controller of cgroup v{version} at {parent} cannot be "
            f"used ({exc.strerror})",
        )
    return replace(cgroups, memory_root=root, memory_version=version)


def _server_group(parent: Path, version: int, controller: str) -> Path:
    """The server's group in `parent` with `controller`, made (if it is not there yet) after
    those of servers that are gone are removed; OSError if it cannot be."""
    root = parent / f"{SERVER_GROUP_PREFIX}{os.getpid()}"
    existed = root.is_dir()  # with v2, made for the pids controller already
    try:
        _remove_stale(parent)
        if version == 2:
            _enable(parent, controller)
        root.mkdir(exist_ok=True)
        if version == 2:
            _enable(root, controller)
    except OSError:
        if not existed:
            with contextlib.suppress(OSError):
                root.rmdir()
        raise
    return root


def _limit_memory(group: Path, limit: int | None) -> None:
    """Let `group` use at most `limit` bytes (None: no limit) and no swap beyond them; the
    swap files are written only where they exist (v1's memsw needs swap accounting on)."""
    if (group / "memory.max").exists():  # v2
        (group / "memory.max").write_text("max" if limit is None else str(limit))
        swap = group / "memory.swap.max"
        if swap.exists():
            swap.write_text("max" if limit is None else "0")
        return
    value = "-1" if limit is None else str(limit)
    (group / "memory.limit_in_bytes").write_text(value)  # first: memsw may not be below it
    memsw = group / "memory.memsw.limit_in_bytes"
    if memsw.exists():
        memsw.write_text(value)


def oom_kill_count(text: str) -> int:
    """The `oom_kill` counter of a v2 `memory.events` or v1 `memory.oom_control` text; 0 if
    it has none."""
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == "oom_kill" and value.strip().isdecimal():
            return int(value)
    return 0


def _own_cgroup(own: str, mounts: str, controller: str) -> tuple[Path, int] | str:
    """(folder of the server's own cgroup, cgroup version) in the hierarchy that has
    `controller` (v1's hierarchy of that name, or v2 if it is not bound to v1), from
    /proc/self/cgroup and /proc/self/mountinfo; else why there is none."""
    paths = {}  # controller (v1) or "" (v2) -> the server's cgroup path in that hierarchy
    for line in own.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if not path:
            continue
        if number == "0" and not controllers:
            paths[""] = path
        elif controller in controllers.split(","):
            paths[controller] = path
    for line in mounts.splitlines():
        mount, _, fs = line.partition(" - ")
        fields, fs_fields = mount.split(), fs.split()
        if len(fields) < 5 or len(fs_fields) < 3:
            continue
        kind = {"cgroup": controller, "cgroup2": ""}.get(fs_fields[0])
        if kind is None or kind not in paths:
            continue
        if kind and controller not in fs_fields[2].split(","):
            continue
        folder = _inside(Path(fields[4]), fields[3], paths[kind])
        if folder is None:
            continue
        if kind:
            return folder, 1
        if controller in _words(folder / "cgroup.controllers"):
            return folder, 2
    return (
        f"no cgroup hierarchy with the {controller} controller is mounted for the server's cgroup"
    )


def _inside(mount_point: Path, mount_root: str, path: str) -> Path | None:
    """Where cgroup `path` is under a mount of the hierarchy's `mount_root`; None if it is not
    under that mount."""
    root = mount_root.rstrip("/")
    if path != root and not path.startswith(root + "/"):
        return None
    return mount_point / path[len(root) :].lstrip("/")


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _words(path: Path) -> list[str]:
    return _text(path).split()


def _enable(group: Path, controller: str) -> None:
    """cgroup v2: let the children of `group` have `controller` (left so in the server's own
    cgroup when it stops: other groups there may count on it)."""
    control = group / "cgroup.subtree_control"
    if controller not in _words(control):
        control.write_text(f"+{controller}")


def _remove_stale(parent: Path) -> None:
    """Remove the groups that servers no longer running left in `parent`."""
    for group in parent.glob(f"{SERVER_GROUP_PREFIX}*"):
        pid = group.name.removeprefix(SERVER_GROUP_PREFIX)
        if pid.isdecimal() and group.is_dir() and not _alive(int(pid)):
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
