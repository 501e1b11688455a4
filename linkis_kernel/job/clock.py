"""The time a job waits by: real by default, a fake one in tests that need time to pass."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Where polling reads the time and sleeps between rounds."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock: `time.monotonic` and `time.sleep`."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK = SystemClock()
