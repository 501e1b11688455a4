"""Per-user disk quotas of the embedded server (`linkis-kernel serve --disk-quota`).

A user's usage is the disk space their files take: their area `users/<user>/` (SQL database and
`files/`), their result and log trees `result|log/<day>/<creator>/<user>/`, and the scratch
folders their running jobs and engines write in. Space is counted as `st_blocks * 512`, what
the files really hold on disk (a sparse file counts its written blocks, not its length), and
symlinks are counted, never followed.

Like a filesystem's hard quota, writing fails and deleting works: a user over the quota may still
run jobs (to delete files), but each such job may add at most `ALLOWANCE` to the usage it found
when it started. `DiskQuota` walks a user's folders at most every `REFRESH_SECONDS` (afresh when
one of their jobs starts, and after one ends); `QuotaWatcher` walks them every `REFRESH_SECONDS`
for users with running jobs and stops each job whose user's usage passes that job's limit.
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

from .jobs import Job
from .paths import USER_AREAS, Layout
from .ticker import Ticker

log = logging.getLogger("linkis_kernel.local")

ERR_DISK_QUOTA = 21310
REFRESH_SECONDS = 2.0
# What a job that starts while its user is over the quota may add: its log and a small result.
ALLOWANCE = 1 << 20
_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"(\d+(?:\.\d*)?)\s*(?:([kmgt])(?:i?b)?|b)?")


def parse_size(text: str) -> int | None:
    """Bytes in `500MB`, `2GB`, `1.5G`, `10k` or `1048576` (units are powers of 1024); 0 for
    `0` or `none` (no quota); None when the text is not such a size."""
    text = text.strip().lower()
    if text == "none":
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
            _make_readable(folder)
        except OSError:  # missing, or not a folder
            break
    return []


def _make_readable(folder: str) -> None:
    """chmod 0700 the folder itself, never what a symlink put in its place points to."""
    try:
        fd = os.open(folder, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.chmod(f"/proc/self/fd/{fd}", 0o700)
    finally:
        os.close(fd)


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

    def job_limit(self, user: str) -> int | None:
        """The usage past which a job of `user` starting now is stopped (None: no quota).

        Under the quota it is the quota. Over it, the job's baseline is the usage now (the
        reading of its submit, if at most REFRESH_SECONDS old: the next job of a user whose job
        ended walks afresh) and its limit max(quota, baseline + ALLOWANCE), which is
        baseline + ALLOWANCE: a job that deletes files runs to its end, one that writes more
        than ALLOWANCE is stopped.
        """
        if not self.limit:
            return None
        baseline = self.usage(user)
        return baseline + ALLOWANCE if baseline > self.limit else self.limit

    def submit_warning(self, user: str) -> str | None:
        """The WARN line that opens the log of a job of `user` over the quota, else None."""
        if not self.limit:
            return None
        used = self.usage(user)
        if used <= self.limit:
            return None
        return (
            f"Over the disk quota: {self._usage_text(used)}. This job may add at most "
            f"{format_size(ALLOWANCE)} to your usage, enough for its log and a small result; "
            f"the server stops it if it writes more. {self._remedy(user)}"
        )

    def stop_reason(self, user: str, used: int, job_limit: int) -> str:
        """Why a running job of `user` whose limit was `job_limit` is stopped at `used` bytes."""
        why = "so the server stopped this job"
        if job_limit > self.limit:
            why = (
                "and this job, started while you were over the quota, may add at most "
                f"{format_size(ALLOWANCE)} (up to {format_size(job_limit)}), {why}"
            )
        return f"Disk quota exceeded: {self._usage_text(used)}, {why}. {self._remedy(user)}"

    def _usage_text(self, used: int) -> str:
        return (
            f"you use {format_size(used)} of disk space and each user may use "
            f"{format_size(self.limit)} on this server (your files folder, SQL database, results "
            "and logs count)"
        )

    def _remedy(self, user: str) -> str:
        """What frees space, for the end of the quota messages."""
        files = self.layout.user_files(user).relative_to(self.layout.root)
        return (
            "To free space, delete files you no longer need from your files folder "
            f"({files} in the data dir, the HOME of your Shell and Python jobs) with a Shell or "
            "Python job (rm, os.remove), or drop tables you no longer need (once that frees half "
            "of your database file and 16 MB, your next SQL job shrinks it). Or ask the "
            "server's owner to delete old results and logs, or to raise linkis-kernel serve "
            "--disk-quota"
        )


class QuotaWatcher:
    """Every `REFRESH_SECONDS`, stops with `stop(job, reason)` each running job whose user's
    usage passes the job's `disk_limit`."""

    def __init__(
        self,
        quota: DiskQuota,
        running: Callable[[], list[Job]],
        stop: Callable[[Job, str], None],
    ) -> None:
        self._quota = quota
        self._running = running
        self._stop_job = stop
        self._ticker = Ticker("linkis-quota", REFRESH_SECONDS, lambda: self.check(running()))

    def start(self) -> None:
        if self._quota.limit:
            self._ticker.start()

    def stop(self) -> None:
        self._ticker.stop()

    def check(self, jobs: list[Job]) -> None:
        """Stop the jobs in `jobs` whose user's usage, walked afresh, passes their limit."""
        watched = [job for job in jobs if job.disk_limit is not None]
        for user in {job.user for job in watched}:
            used = self._quota.usage(user, max_age=0)
            for job in watched:
                limit = job.disk_limit
                if job.user == user and limit is not None and used > limit and not job.stop_error:
                    log.warning("stopping job %d of %s: over the disk quota", job.task_id, user)
                    self._stop_job(job, self._quota.stop_reason(user, used, limit))
