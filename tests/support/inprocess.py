"""The embedded server's HTTP app served in this process, for tests that move its clock by hand.

Tests of the real `linkis-kernel serve` process use `serverproc.start_server`; these serve the
same tornado app (`make_app`) on a thread, with an `AuthStore` whose clock is a `FakeClock`, so
session expiry and login throttling are tested without waiting.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from linkis_kernel import wire
from linkis_kernel.local.app import make_app
from linkis_kernel.local.auth import AuthStore, User
from linkis_kernel.local.service import LocalLinkis

USER, PASSWORD = "alice", "alice-password"
SESSION_TIMEOUT = 60.0  # seconds of the FakeClock


@dataclass
class FakeClock:
    """A monotonic clock that moves only when a test advances it."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class InProcessServer:
    """A served app: its base URL, its users and the clock they are measured by."""

    url: str
    auth: AuthStore
    clock: FakeClock
    user: str = USER
    password: str = PASSWORD

    def api(self, path: str) -> str:
        return f"{self.url}{wire.API_PREFIX}/{path}"

    def login(self, name: str, password: str, session: requests.Session | None = None) -> dict:
        """POST user/login; returns the envelope."""
        credentials = {"userName": name, "password": password}
        client = session or requests
        return client.post(self.api("user/login"), json=credentials, timeout=10).json()


@contextmanager
def serve_in_process(
    service: LocalLinkis, auth: AuthStore, clock: FakeClock
) -> Iterator[InProcessServer]:
    """Serve `make_app(service, auth)` on 127.0.0.1 from a background thread until exit."""
    sockets = bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    ready = threading.Event()
    stop_serving: list[Callable[[], object]] = []  # set by the serving thread once it runs

    async def serve() -> None:
        server = HTTPServer(make_app(service, auth))
        server.add_sockets(sockets)
        stop, loop = asyncio.Event(), asyncio.get_running_loop()
        stop_serving.append(lambda: loop.call_soon_threadsafe(stop.set))
        ready.set()
        await stop.wait()
        server.stop()
        await server.close_all_connections()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise RuntimeError("the in-process server did not start within 10 s")
    try:
        yield InProcessServer(f"http://127.0.0.1:{port}", auth, clock)
    finally:
        stop_serving[0]()
        thread.join(10)


@contextmanager
def running_service(data_dir: Path) -> Iterator[LocalLinkis]:
    """An embedded server's service (no HTTP) on `data_dir`, closed at exit."""
    service = LocalLinkis(data_dir)
    service.start()
    try:
        yield service
    finally:
        service.close()


@contextmanager
def clocked_server(service: LocalLinkis, session_timeout: float) -> Iterator[InProcessServer]:
    """`service` served for USER/PASSWORD, whose sessions expire after `session_timeout`
    seconds of a FakeClock of its own."""
    clock = FakeClock()
    users = [User.create(USER, PASSWORD, None)]
    auth = AuthStore(users, session_timeout=session_timeout, clock=clock)
    with serve_in_process(service, auth, clock) as server:
        yield server
