"""`Ticker`: a function called every few seconds on a thread of its own until stopped."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("linkis_kernel.local")


class Ticker:
    """Calls `tick()` every `interval` seconds on a daemon thread named `name`; a tick that
    fails is logged, and the next one comes as usual."""

    def __init__(self, name: str, interval: float, tick: Callable[[], None]):
        self._interval = interval
        self._tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._tick()
            except Exception:
                log.exception("%s: one round failed", self._thread.name)
