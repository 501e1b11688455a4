"""Whether this machine lets a test create cgroups with a given controller, as the server tries
(local/cgroups.py): checked by creating a probe group under the test's own cgroup; and what the
server's `Process cap:` start line says (`cap_line`, `pids_root`, `memory_root`)."""

from __future__ import annotations

import os
import re
from pathlib import Path


def cgroups_writable(controller: str) -> bool:
    """Whether a process of this user may create a cgroup with `controller` (v1's hierarchy of
    that name, or v2 where the own cgroup hands it to its children) under its own cgroup."""
    own = [line.split(":", 2) for line in Path("/proc/self/cgroup").read_text().splitlines()]
    candidates = [
        Path("/sys/fs/cgroup") / controller / path.lstrip("/")
        for _, names, path in own
        if controller in names.split(",")
    ]
    for number, names, path in own:
        if number == "0" and not names:
            for mount in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
                folder = mount / path.lstrip("/")
                subtree = folder / "cgroup.subtree_control"
                if subtree.exists() and controller in subtree.read_text().split():
                    candidates.append(folder)
    for folder in candidates:
        probe = folder / f"linkis-test-probe-{os.getpid()}"
        try:
            probe.mkdir()
        except OSError:
            continue
        probe.rmdir()
        return True
    return False


_PIDS_GROUP = re.compile(r"pids\.max of cgroup v\d (\S+)/<user>\)")
_MEMORY_GROUP = re.compile(r"(?:memory\.limit_in_bytes|memory\.max) of cgroup v\d (\S+)/<user>\)")


def cap_line(log_text: str) -> str:
    """The `Process cap:` line the server prints on start, failing if its log has none."""
    found = [line for line in log_text.splitlines() if "Process cap:" in line]
    assert found, log_text
    return found[0]


def pids_root(log_text: str) -> Path | None:
    """The server's group of per-user pids groups, as its `Process cap:` line names it; None
    if the line says there are no such groups."""
    found = _PIDS_GROUP.search(log_text)
    return Path(found[1]) if found else None


def memory_root(log_text: str) -> Path | None:
    """The server's group of per-user memory groups, as its `Process cap:` line names it; None
    if the line says there is no per-user memory limit."""
    found = _MEMORY_GROUP.search(log_text)
    return Path(found[1]) if found else None
