"""The HTTP listener for /healthz and /readyz (standard library server).

Bounded in every direction a probe server can be pushed: a listen backlog
for bursts, a fixed number of worker threads, a deadline for each request
head, one request per connection. Every answer, errors included, is JSON.
"""

from __future__ import annotations

import io
import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn
from typing import Any

from llm_proxy.errors import ListenError

from .readiness import Readiness

# The kernel queues this many connections while every worker is busy (Python's
# default of 5 overflows under a few dozen concurrent probes).
LISTEN_BACKLOG = 128
# Requests handled at once, one thread each; the rest wait in the backlog.
MAX_WORKERS = 32
# A connection must deliver its whole request head within this (an idle or
# half-sent connection is closed then, freeing its worker); also bounds writes.
REQUEST_TIMEOUT = 5.0
ENDPOINTS = ("/healthz", "/readyz")
ALLOWED_METHODS = ("GET", "HEAD")


class _DeadlineReader(io.RawIOBase):
    """Socket reads that share one deadline: a client trickling a byte at a time
    cannot keep its connection (and a worker) beyond it, as a per-read timeout
    would let it."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = time.monotonic() + seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("request not received in time")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = REQUEST_TIMEOUT  # the socket's timeout, for writes

    def setup(self) -> None:
        super().setup()
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, REQUEST_TIMEOUT))

    def version_string(self) -> str:
        return "llm-proxy"  # no Python version in the Server header

    def parse_request(self) -> bool:
        # Any method but GET and HEAD ends here, before http.server would answer
        # 501 in HTML: 405 naming what is allowed, or 404 for an unknown path.
        if not super().parse_request():
            return False
        if self.command in ALLOWED_METHODS:
            return True
        if self._endpoint() in ENDPOINTS:
            allow = {"Allow": ", ".join(ALLOWED_METHODS)}
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "method not allowed"}, allow)
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": "not found"})
        return False

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        endpoint = self._endpoint()
        if endpoint == "/healthz":
            self._send(HTTPStatus.OK, {"status": "ok"})
        elif endpoint == "/readyz":
            self._send(*self.server.readiness.check())
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": "not found"})

    do_HEAD = do_GET  # noqa: N815 - same answer; _send leaves the body out

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (400, 414, 431, 505) as JSON, like every answer."""
        status = HTTPStatus(code)
        self._send(status, {"error": message or status.phrase.lower()})

    def _endpoint(self) -> str:
        return self.path.split("?", 1)[0]

    def _send(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        payload = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")  # one request per connection
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Probes hit these endpoints every few seconds; timeouts are still logged.
        pass


class _Server(ThreadingMixIn, HTTPServer):
    """HTTPServer with a listen backlog, a bounded number of worker threads, and
    a `readiness` set once the database is open. Workers are daemon threads: an
    open probe connection must not hold up shutdown."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = LISTEN_BACKLOG
    readiness: Readiness

    def __init__(self, address: tuple[str, int]) -> None:
        self._workers = threading.BoundedSemaphore(MAX_WORKERS)
        super().__init__(address, _Handler, bind_and_activate=False)

    def process_request(self, request: Any, client_address: Any) -> None:
        # The accept loop waits here while every worker is busy; new connections
        # wait in the kernel's backlog meanwhile.
        self._workers.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._workers.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._workers.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A prober that gave up before its answer is routine, not worth a line;
        # anything else is one line on stderr, not socketserver's traceback.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            return
        sys.stderr.write(
            f"llm-proxy: error answering {client_address[0]}: {type(error).__name__}: {error}\n"
        )


class _Server6(_Server):
    address_family = socket.AF_INET6


def parse_addr(text: str) -> tuple[str, int]:
    """`host:port`, `:port` (all interfaces) or `[v6]:port` -> (host, port)."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"address must be HOST:PORT, not {text!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return host, int(port_text)


def bind(host: str, port: int) -> _Server:
    """The HTTP server for /healthz and /readyz, bound to host:port but not yet
    listening: the address is taken (or refused, with ListenError) before the
    database is touched, and connections are refused until it serves."""
    server = (_Server6 if ":" in host else _Server)((host, port))
    try:
        server.server_bind()
    except OSError as exc:
        server.server_close()
        raise _listen_error(host, port, exc) from None
    return server


def _listen_error(host: str, port: int, exc: OSError) -> ListenError:
    shown = f"[{host}]" if ":" in host else host
    return ListenError(f"cannot listen on {shown}:{port}: {exc.strerror or exc}")


def listening_url(server: HTTPServer) -> str:
    """The URL the server listens on."""
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in str(host) else host
    return f"http://{shown}:{port}"


def serve_until_signalled(
    server: _Server, readiness: Readiness, on_serving: Callable[[], None] | None = None
) -> int:
    """Listen and serve until SIGTERM or SIGINT; returns the signal number that
    stopped it. `on_serving` runs once the handlers are in place (announce the
    address there, so whoever reads it can already stop the server cleanly).
    The server is closed afterwards, also when listening fails (ListenError)."""
    received: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        received.append(signum)
        # shutdown() waits for serve_forever to return, so it cannot run in the
        # signal handler, which interrupts serve_forever's own thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    server.readiness = readiness
    try:
        try:
            server.server_activate()
        except OSError as exc:
            host, port = server.server_address[:2]
            raise _listen_error(str(host), port, exc) from None
        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            if on_serving is not None:
                on_serving()
            server.serve_forever(poll_interval=0.5)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    finally:
        server.server_close()
        readiness.close()
    return received[0] if received else 0
