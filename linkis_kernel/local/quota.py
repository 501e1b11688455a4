"""Per-user disk quotas of the embedded server (`linkis-kernel serve --disk-quota`).

A user's usage is the disk space their files take: their area `users/<user>/` (SQL database and
`files/`), their result and log trees `result|log/<day>/<creator>/<user>/`, and the scratch
folders their running jobs and engines write in. Space is counted as `st_blocks * 512`, what
the files really hold on disk (a sparse file counts its written blocks, not its length), and
symlinks are counted, never followed.

`DiskQuota` walks a user's folders at most every `REFRESH_SECONDS` (and again after one of
their jobs ends); `QuotaWatcher` walks them every `REFRESH_SECONDS` for users with running
jobs and stops those jobs once the usage passes the quota.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from .errors import ServiceError
from .jobs import Job
from .paths import USER_AREAS, Layout

log = logging.getLogger("linkis_kernel.local")

ERR_DISK_QUOTA = 21310
REFRESH_SECONDS = 2.0
_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"(\d+(?:\.\d*)?)\s*(?:([kmgt])(?:i?b)?|b)?")
_NO_QUOTA = ("0", "none")


def parse_size(text: str) -> int | None:
    """Bytes in `500MB`, `2GB`, `1.5G`, `10k` or `1048576` (units are powers of 1024); 0 for
    `0` or `none` (no quota); None when the text is not such a size."""
    text = text.strip().lower()
    if text in _NO_QUOTA:
        return 0
    match = _SIZE.fullmatch(text)
    if match is None:
        return None
    return int(float(match[1]) * _UNITS.get(match[2] or "", 1))


def format_size(size: int) -> str:
    """`6.2 MB`: a byte count as the quota messages write it."""
    value, unit = float(size), "bytes"
    for bigger in ("KB", "MB", "GB", "TB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"


def tree_bytes(root: Path) -> int:
    """Disk space of everything under `root`, symlinks not followed; 0 when it is missing."""
    total = 0
    folders = [str(root)]
    while folders:
        for entry in _entries(folders.pop()):
            try:
                total += entry.stat(follow_symlinks=False).st_blocks * 512
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
            except OSError:  # removed while we walked
                continue
    return total


def _entries(folder: str) -> list[os.DirEntry[str]]:
    for _ in range(2):
        try:
            with os.scandir(folder) as entries:
                return list(entries)
        except PermissionError:
            # A job may take its own folder's permissions away to hide what it holds; the
            # server owns the folder, so it gives them back and looks again.
            with contextlib.suppress(OSError):
                os.chmod(folder, 0o700)
        except OSError:  # missing, or not a folder
            break
    return []


def owned_trees(layout: Layout, user: str) -> list[Path]:
    """`user`'s area and their result and log trees (one per day and creator)."""
    trees = [layout.user_area(user)]
    for area in USER_AREAS:
        for day in _folders(layout.root / area):
            trees += [creator / user for creator in _folders(day)]
    return trees


def _folders(parent: Path) -> list[Path]:
    return [Path(e.path) for e in _entries(str(parent)) if e.is_dir(follow_symlinks=False)]


class DiskQuota:
    """Each user's disk usage against `limit` bytes per user (0: no quota).

    `scratch_of(user)` names the folders outside the user's area that their running jobs and
    engines write in.
    """

    def __init__(
        self, layout: Layout, limit: int, scratch_of: Callable[[str], Iterable[Path]]
    ) -> None:
        self.layout = layout
        self.limit = limit
        self._scratch_of = scratch_of
        self._lock = threading.Lock()
        self._readings: dict[str, tuple[float, int]] = {}  # user -> (taken at, bytes)

    def usage(self, user: str, max_age: float = REFRESH_SECONDS) -> int:
        """`user`'s usage in bytes, walked again when the last walk is older than `max_age`."""
        now = time.monotonic()
        with self._lock:
            taken_at, used = self._readings.get(user, (-max_age, 0))
        if now - taken_at < max_age:
            return used
        trees = [*owned_trees(self.layout, user), *self._scratch_of(user)]
        used = sum(tree_bytes(tree) for tree in trees)
        with self._lock:
            self._readings[user] = (now, used)
        return used

    def forget(self, user: str) -> None:
        """Walk `user`'s folders again at the next check (one of their jobs ended)."""
        with self._lock:
            self._readings.pop(user, None)

    def excess(self, user: str, max_age: float = REFRESH_SECONDS) -> str | None:
        """What `user` uses against the quota when it is over, else None."""
        if not self.limit:
            return None
        used = self.usage(user, max_age)
        if used <= self.limit:
            return None
        return (
            f"Disk quota exceeded: you use {format_size(used)} of disk space and each user may "
            f"use {format_size(self.limit)} on this server (your files folder, SQL database, "
            "results and logs count)"
        )

    def remedy(self, user: str) -> str:
        """What frees space, for the end of a quota error."""
        files = self.layout.user_files(user).relative_to(self.layout.root)
        return (
            "To run jobs again, free space: ask the server's owner to delete files you no "
            f"longer need from {files} in the data dir, or old results and logs, or to raise "
            "linkis-kernel serve --disk-quota"
        )

    def check(self, user: str) -> None:
        """Refuse a new job of `user` (Linkis error 21310) while they are over the quota."""
        excess = self.excess(user)
        if excess is not None:
            raise ServiceError(
                f"{excess}, so no new job is accepted. {self.remedy(user)}", code=ERR_DISK_QUOTA
            )

    def stop_reason(self, user: str) -> str | None:
        """Why a running job of `user` is stopped, walked afresh; None while under the quota."""
        excess = self.excess(user, max_age=0)
        if excess is None:
            return None
        return f"{excess}, so the server stopped this job. {self.remedy(user)}"


class QuotaWatcher:
    """Every `REFRESH_SECONDS`, stops the running jobs of users over the quota with
    `stop(job, reason)`."""

    def __init__(
        self,
        quota: DiskQuota,
        running: Callable[[], list[Job]],
        stop: Callable[[Job, str], None],
    ) -> None:
        self._quota = quota
        self._running = running
        self._stop_job = stop
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="linkis-quota", daemon=True)

    def start(self) -> None:
        if self._quota.limit:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)

    def _loop(self) -> None:
        while not self._stop.wait(REFRESH_SECONDS):
            self.check(self._running())

    def check(self, jobs: list[Job]) -> None:
        """Stop the jobs in `jobs` whose user is over the quota."""
        for user in {job.user for job in jobs}:
            reason = self._quota.stop_reason(user)
            if reason is not None:
                for job in jobs:
                    if job.user == user and job.stop_error is None:
                        log.warning("stopping job %d of %s: over the disk quota", job.task_id, user)
                        self._stop_job(job, reason)
