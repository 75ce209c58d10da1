"""HTTP health and readiness for a running llm-proxy (standard library server).

`GET /healthz` answers 200 while the process is up. `GET /readyz` answers 200
when the schema is at head and 503 with the pending migrations otherwise; it
reads the version tables on every request (the schema can move under a
running server, e.g. an init container or `migrate up` elsewhere) but builds
the revision graph from the migration files only once.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .config import Settings
from .errors import user_message
from .migrate.project import Project
from .revisions.graph import Graph
from .revisions.reconcile import DatabaseView

Answer = tuple[int, dict[str, Any]]


def readiness_answer(view: DatabaseView, graph: Graph) -> Answer:
    """(HTTP status, JSON body) for /readyz from the reconciled database state."""
    if view.pending:
        return HTTPStatus.SERVICE_UNAVAILABLE, {
            "status": "pending",
            "schema_version": view.goose_current,
            "pending": len(view.pending),
            "pending_migrations": [graph.nodes[r].name or r for r in view.pending],
        }
    return HTTPStatus.OK, {"status": "ready", "schema_version": view.goose_current, "pending": 0}


def _error_text(exc: Exception) -> str:
    # Only messages meant for users (already free of passwords); otherwise the type.
    return user_message(exc) or type(exc).__name__


class Readiness:
    """Answers /readyz. The project (files, graph) is loaded on first use and
    kept; a failure to load it is not kept, so fixing the files and retrying works."""

    def __init__(self, settings: Settings, project: Project | None = None) -> None:
        self.settings = settings
        self._project = project
        self._lock = threading.Lock()

    def project(self) -> Project:
        """The project, loaded on first use."""
        with self._lock:
            if self._project is None:
                self._project = Project.load(self.settings)
            return self._project

    def check(self) -> Answer:
        """(status, body) for /readyz: 503 when pending or unreadable."""
        try:
            project = self.project()
            view = project.read_state(with_journal=False).view
        except Exception as exc:
            return HTTPStatus.SERVICE_UNAVAILABLE, {
                "status": "unavailable",
                "error": _error_text(exc),
            }
        return readiness_answer(view, project.graph)


class _Handler(BaseHTTPRequestHandler):
    readiness: Readiness  # set on the subclass make_server builds

    def version_string(self) -> str:
        return "llm-proxy"  # no Python version in the Server header

    def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            self._send(HTTPStatus.OK, {"status": "ok"})
        elif path == "/readyz":
            self._send(*self.readiness.check())
        else:
            self._send(HTTPStatus.NOT_FOUND, {"error": "not found"})

    def _send(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(payload)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Probes hit these endpoints every few seconds; errors are still logged.
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # an open probe connection must not hold up shutdown


class _Server6(_Server):
    address_family = socket.AF_INET6


def parse_addr(text: str) -> tuple[str, int]:
    """`host:port`, `:port` (all interfaces) or `[v6]:port` -> (host, port)."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"address must be HOST:PORT, not {text!r}")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return host, int(port_text)


def make_server(host: str, port: int, readiness: Readiness) -> ThreadingHTTPServer:
    """The HTTP server for /healthz and /readyz on host:port."""
    handler = type("Handler", (_Handler,), {"readiness": readiness})
    server_class = _Server6 if ":" in host else _Server
    return server_class((host, port), handler)


def listening_url(server: ThreadingHTTPServer) -> str:
    """The URL the server listens on."""
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in str(host) else host
    return f"http://{shown}:{port}"


def serve_until_signalled(
    server: ThreadingHTTPServer, on_serving: Callable[[], None] | None = None
) -> int:
    """Serve until SIGTERM or SIGINT; returns the signal number that stopped it.
    `on_serving` runs once the handlers are in place (announce the address there,
    so whoever reads it can already stop the server cleanly)."""
    received: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        received.append(signum)
        # shutdown() waits for serve_forever to return, so it cannot run in the
        # signal handler, which interrupts serve_forever's own thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        if on_serving is not None:
            on_serving()
        server.serve_forever(poll_interval=0.5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.server_close()
    return received[0] if received else 0
