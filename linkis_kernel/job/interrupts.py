"""Holding Ctrl-C while a job is being submitted."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def interrupt_held() -> Iterator[threading.Event]:
    """Hold Ctrl-C (SIGINT) for the duration of the block; the event says whether it came.

    The answer to a submit is the only way to learn the job's id, and a submit is never sent
    twice: an interrupt that broke off the request would leave the job running unseen. Held,
    it takes effect once the job is known, and the caller kills that job. Off the main thread
    (where no signal arrives) nothing is held.
    """
    pressed = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield pressed
        return

    def hold(signum: int, frame: Any) -> None:
        pressed.set()

    previous = signal.signal(signal.SIGINT, hold)
    try:
        yield pressed
    finally:
        signal.signal(signal.SIGINT, previous)
