"""Ctrl-C while a job is being submitted is held until the job is known."""

from __future__ import annotations

import os
import signal
import threading

from linkis_kernel.job import interrupt_held


def test_a_sigint_inside_is_held_and_reported_then_the_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGINT)
    with interrupt_held() as interrupted:
        os.kill(os.getpid(), signal.SIGINT)  # would raise KeyboardInterrupt here unheld
        assert interrupted.wait(5)
    assert signal.getsignal(signal.SIGINT) is before


def test_without_an_interrupt_nothing_is_reported() -> None:
    with interrupt_held() as interrupted:
        pass
    assert not interrupted.is_set()


def test_off_the_main_thread_nothing_is_held() -> None:
    seen: list[bool] = []

    def run() -> None:
        with interrupt_held() as interrupted:
            seen.append(interrupted.is_set())
        seen.append(signal.getsignal(signal.SIGINT) is signal.default_int_handler)

    before = signal.getsignal(signal.SIGINT)
    worker = threading.Thread(target=run)
    worker.start()
    worker.join(5)
    assert seen == [False, before is signal.default_int_handler]
