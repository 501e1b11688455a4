"""`wait_until`: poll a condition instead of sleeping a fixed time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.02,
    *,
    message: str | Callable[[], str] | None = None,
) -> T:
    """Call `condition` every `interval` seconds until it returns something truthy; return that.

    After `timeout` seconds without success, fail with `message` (a text, or a function giving
    one, e.g. to show the latest state) and the last value the condition returned.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message() if callable(message) else message
            what = what or f"{getattr(condition, '__name__', 'the condition')} never held"
            raise AssertionError(f"{what} (waited {timeout:g} s; last value: {value!r:.200})")
        time.sleep(interval)
