"""Job log files: writing Linkis-style lines and reading them back (docs/linkis-rest.md, "Logs")."""

from __future__ import annotations

import bisect
import re
import threading
from datetime import datetime
from pathlib import Path

from ..wire import LOG_NEGATIVE_SIZE

ERROR, WARN, INFO = "ERROR", "WARN", "INFO"
_LEVEL_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} (?:SYSTEM-)?(ERROR|WARN|INFO) "
)
_SLOT = {ERROR: 0, WARN: 1, INFO: 2}
# filesystem/openLog refuses bigger logs (Linkis' wds.linkis.filesystem.file.check.size).
OPEN_LOG_MAX_BYTES = 30 * 1024 * 1024
# One entrance/{id}/log page holds at most this many lines and about this many bytes: a line
# that alone is bigger is cut; the rest of the lines come with the next page.
LOG_PAGE_MAX_LINES = LOG_NEGATIVE_SIZE
LOG_PAGE_MAX_BYTES = 4 * 1024 * 1024


def format_line(level: str, message: str, when: datetime | None = None) -> str:
    """`yyyy-MM-dd HH:mm:ss.SSS LEVEL message` with real milliseconds."""
    when = when or datetime.now()
    return f"{when:%Y-%m-%d %H:%M:%S}.{when.microsecond // 1000:03d} {level} {message}"


def line_level(line: str) -> str | None:
    """The level of a prefixed log line, or None for a continuation line."""
    match = _LEVEL_RE.match(line)
    return match.group(1) if match else None


def _split_by_level(lines: list[str], inherit: bool, suffix: str) -> list[str]:
    buckets: list[list[str]] = [[], [], [], []]
    current = INFO
    for line in lines:
        if not line.strip():
            continue
        level = line_level(line)
        if level is None:
            level = current if inherit else INFO
        else:
            current = level
        buckets[_SLOT[level]].append(line)
        buckets[3].append(line)
    if suffix:
        return ["".join(x + suffix for x in bucket) for bucket in buckets]
    return ["\n".join(bucket) for bucket in buckets]


class JobLog:
    """A job's log file, appended to by the job and read in pages by `entrance/{id}/log`.

    Byte offsets of every line are kept in memory, so a page is read with one seek.
    """

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._offsets: list[int] = []
        self._size = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)

    def write(self, level: str, message: str) -> None:
        """Append one message; a multi-line message continues on unprefixed lines."""
        text = format_line(level, message.rstrip("\n")) + "\n"
        self._append(text)

    def _append(self, text: str) -> None:
        data = text.encode()
        with self._lock:
            with open(self.path, "ab") as f:
                f.write(data)
            pos = self._size
            for line in data.splitlines(keepends=True):
                self._offsets.append(pos)
                pos += len(line)
            self._size = pos

    @property
    def line_count(self) -> int:
        with self._lock:
            return len(self._offsets)

    def _read_lines(self, first: int, count: int) -> list[str]:
        """Lines first..first+count-1 (1-based), fewer when they pass `LOG_PAGE_MAX_BYTES`."""
        with self._lock:
            if count <= 0 or first > len(self._offsets):
                return []
            start = self._offsets[first - 1]
            last = min(len(self._offsets), first + count - 1)
            end = self._offsets[last] if last < len(self._offsets) else self._size
            budget_end = start + LOG_PAGE_MAX_BYTES
            if end > budget_end:
                # Whole lines while they fit the budget; a first line bigger than it is cut.
                fitting = bisect.bisect_right(self._offsets, budget_end, first, last) - first
                last = first + fitting - 1
                end = self._offsets[last] if fitting else budget_end
        with open(self.path, "rb") as f:
            f.seek(start)
            data = f.read(end - start)
        return _decoded_lines(data)[: max(last - first + 1, 1)]

    def read(self, from_line: int, size: int, distinct_level: bool = True) -> dict:
        """The `data` of entrance/{id}/log without execID (docs/linkis-rest.md, "Logs").

        Position 0 is an empty slot that is consumed but yields nothing, so clients starting
        at 0 or at 1 both continue seamlessly with the returned `fromLine`.
        """
        from_line = max(from_line, 0)
        if size < 0:
            size = LOG_NEGATIVE_SIZE
        size = min(size, LOG_PAGE_MAX_LINES)
        consumed = 0
        first = from_line
        if from_line == 0 and size > 0:
            consumed, first = 1, 1
        lines = self._read_lines(first, size - consumed)
        consumed += len(lines)
        if distinct_level:
            log: list[str] | str = _split_by_level(lines, inherit=False, suffix="")
        else:
            log = "\n".join(line for line in lines if line.strip())
        return {"log": log, "fromLine": from_line + consumed}


def read_whole_log(path: Path) -> list[str]:
    """`filesystem/openLog`: [error, warn, info, all], each line + `\\n`, levels inherited."""
    return _split_by_level(_decoded_lines(path.read_bytes()), inherit=True, suffix="\n")


def _decoded_lines(data: bytes) -> list[str]:
    """Lines split where `JobLog` counts them (\\n, \\r, \\r\\n), never at the other breaks
    `str.splitlines` knows (form feed, U+2028...), which would shift every later line number."""
    return [line.decode(errors="replace") for line in data.splitlines()]
