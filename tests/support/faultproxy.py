"""A small fault-injecting HTTP proxy for tests.

`FaultProxy(target_url)` forwards every request to `target_url` and, for requests matching an
injected fault, misbehaves the way real gateways and networks do:

- ``"html502"`` / ``"html503"``: answer an HTML error page with that code; nothing is forwarded.
- ``"drop"``: read the request, then close the connection without forwarding or answering.
- ``"reset"``: forward the request (the server does the work), then reset the client connection
  (TCP RST) instead of answering.
- ``"truncate"``: forward, then send the headers with the full Content-Length but only half the
  body, and close.
- ``"delay"``: wait `delay_s` seconds, then forward normally.

Usage::

    with FaultProxy(server.url) as proxy:
        proxy.inject("reset", r"/entrance/submit$", count=1)
        client = LinkisRestClient(proxy.url, ...)
        ...
        assert [r.path for r in proxy.requests if r.fault] == [...]

`inject(kind, path_pattern, count=1, *, method=None, share=1.0, delay_s=1.0)`: `path_pattern` is a
regex searched in the request path (query string excluded); `count=None` means every matching
request; `share` is the probability that a matching request is hit (seeded, reproducible).
`requests` logs every request, in arrival order, as a `ProxiedRequest(method, path, fault,
status)` (`status` is filled in once answered); `paths(pattern)` lists the logged paths matching a
regex; `clear()` drops pending faults. Bodies are buffered, not streamed: fine for test data.
"""

from __future__ import annotations

import http.client
import random
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

KINDS = ("html502", "html503", "drop", "reset", "truncate", "delay")
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
_ERROR_PAGE = (
    "<html><head><title>{code} {reason}</title></head><body>"
    "<center><h1>{code} {reason}</h1></center><hr><center>nginx/1.24.0</center>"
    "</body></html>"
)


@dataclass
class ProxiedRequest:
    """One request seen by the proxy: `fault` is the injected kind or None, `status` the HTTP
    code sent back (None when the connection was dropped or reset)."""

    method: str
    path: str
    fault: str | None
    status: int | None


@dataclass
class _Fault:
    kind: str
    pattern: re.Pattern
    remaining: int | None
    method: str | None
    share: float
    delay_s: float


class FaultProxy:
    """Forward to `target_url`, injecting faults on demand (see the module docstring)."""

    def __init__(self, target_url: str, *, seed: int = 0) -> None:
        target = urlsplit(target_url)
        self.target_host = target.hostname or "127.0.0.1"
        self.target_port = target.port or 80
        self.requests: list[ProxiedRequest] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._random = random.Random(seed)
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    def start(self) -> FaultProxy:
        """Listen on 127.0.0.1 (free port) in a background thread; `url` is set."""
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def inject(
        self,
        kind: str,
        path_pattern: str = ".*",
        count: int | None = 1,
        *,
        method: str | None = None,
        share: float = 1.0,
        delay_s: float = 1.0,
    ) -> None:
        """Misbehave (`kind`) on the next `count` requests whose path matches `path_pattern`."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; choose one of {', '.join(KINDS)}")
        fault = _Fault(kind, re.compile(path_pattern), count, method, share, delay_s)
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Remove all pending faults (the request log is kept)."""
        with self._lock:
            self._faults.clear()

    def paths(self, pattern: str = ".*") -> list[str]:
        """Paths of logged requests matching `pattern`, in order."""
        regex = re.compile(pattern)
        return [r.path for r in self.requests if regex.search(r.path)]

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining == 0 or (fault.method and fault.method != method):
                    continue
                if fault.pattern.search(path) and self._random.random() < fault.share:
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

    def _record(self, method: str, path: str, fault: _Fault | None) -> ProxiedRequest:
        """Log a request on arrival (the log keeps arrival order); its status is set later."""
        entry = ProxiedRequest(method, path, fault.kind if fault else None, None)
        with self._lock:
            self.requests.append(entry)
        return entry

    def _forward(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.target_host, self.target_port, timeout=120)
        try:
            conn.request(method, target, body=body or None, headers=dict(headers))
            response = conn.getresponse()
            payload = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            return response.status, response.reason, kept, payload
        finally:
            conn.close()


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # headers and body leave in one write (no delayed-ACK stalls)

        def log_message(self, format: str, *args: object) -> None:
            pass  # keep test output quiet

        def handle_one_request(self) -> None:
            try:
                super().handle_one_request()
            except OSError:
                self.close_connection = True  # the peer went away, or we reset on purpose

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            fault = proxy._take_fault(self.command, path)
            entry = proxy._record(self.command, path, fault)
            kind = fault.kind if fault else None
            if kind in ("html502", "html503"):
                entry.status = int(kind[4:])
                self._answer(
                    entry.status, [("Content-Type", "text/html")], _error_page(entry.status)
                )
                return
            if kind == "drop":
                self._close(reset=False)
                return
            if kind == "delay":
                time.sleep(fault.delay_s)
            headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP]
            status, reason, out_headers, payload = proxy._forward(
                self.command, self.path, headers, body
            )
            if kind == "reset":
                self._close(reset=True)
                return
            entry.status = status
            if kind == "truncate":
                self._answer(status, out_headers, payload, send=len(payload) // 2, reason=reason)
                self._close(reset=False)
                return
            self._answer(status, out_headers, payload, reason=reason)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

        def _answer(
            self,
            code: int,
            headers: list[tuple[str, str]],
            payload: bytes,
            *,
            send: int | None = None,
            reason: str | None = None,
        ) -> None:
            self.send_response(code, reason)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload if send is None else payload[:send])
            self.wfile.flush()

        def _close(self, *, reset: bool) -> None:
            self.close_connection = True
            if reset:  # SO_LINGER 0: close() sends RST instead of FIN
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
            self.connection.close()

    return Handler


def _error_page(code: int) -> bytes:
    reason = http.client.responses.get(code, "Error")
    return _ERROR_PAGE.format(code=code, reason=reason).encode()
