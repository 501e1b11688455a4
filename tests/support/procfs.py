"""What /proc says about a process, for tests that watch the server's processes."""

from __future__ import annotations

from pathlib import Path


def stat_fields(pid: int | str) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name: [0] state, [1] parent pid,
    [2] process group, ... [19] start time; raises OSError if there is no such process."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
