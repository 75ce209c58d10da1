"""What /readyz answers, within a bounded time whatever the database does.

The version tables are read on every check (the schema can move under a
running server, e.g. an init container or `migrate up` elsewhere); the
revision graph is built from the migration files only once.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from http import HTTPStatus
from typing import Any

from llm_proxy import urls
from llm_proxy.config import Settings
from llm_proxy.db import drivers
from llm_proxy.errors import reason, user_message
from llm_proxy.migrate.project import Project
from llm_proxy.revisions.graph import Graph
from llm_proxy.revisions.reconcile import DatabaseView

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


DEFAULT_READINESS_TIMEOUT = 2.0


class _Check:
    """One readiness check in flight; every probe that arrives meanwhile shares it."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.done = threading.Event()
        self.answer: Answer | None = None
        self.interrupted = False

    def age(self) -> float:
        return time.monotonic() - self.started


class Readiness:
    """Answers /readyz within `timeout` seconds, whatever the database does.

    Checks run one at a time on one thread of their own, over one kept
    connection whose connect and statements are bounded by `timeout`; probes
    arriving during a check wait for it (until its deadline) instead of
    starting their own. So a burst of probes against a locked table or a
    frozen server costs one connection and one thread. A check still running
    at twice its timeout (the database stopped answering altogether) has its
    connection interrupted; the next check connects anew.

    The project (files, graph) is loaded on first use and kept; a failure to
    load it is not kept, so fixing the files and retrying works."""

    def __init__(
        self,
        settings: Settings,
        project: Project | None = None,
        *,
        timeout: float = DEFAULT_READINESS_TIMEOUT,
    ) -> None:
        self.settings = settings
        self.timeout = timeout
        self._project = project
        self._lock = threading.Lock()
        self._in_flight: _Check | None = None
        self._queue: queue.SimpleQueue[_Check | None] = queue.SimpleQueue()
        self._checker: threading.Thread | None = None
        # Used by the checker thread only (sqlite3 connections must stay on theirs).
        self._connection: Any = None
        self._keep = True  # the connection stays open between checks

    def check(self) -> Answer:
        """(status, body) for /readyz: 503 when pending, unreadable or too slow."""
        with self._lock:
            current = self._in_flight
            if current is None:
                current = self._in_flight = _Check()
                if self._checker is None:
                    self._checker = threading.Thread(
                        target=self._serve_checks, name="readiness", daemon=True
                    )
                    self._checker.start()
                self._queue.put(current)
            elif current.age() >= 2 * self.timeout and not current.interrupted:
                current.interrupted = True
                self._interrupt()
        remaining = current.started + self.timeout - time.monotonic()
        if current.done.wait(max(remaining, 0.0)) and current.answer is not None:
            return current.answer
        return _unavailable(
            f"{self.settings.dialect.label} at {self.settings.where} did not answer "
            f"within {self.timeout:g} s"
        )

    def close(self) -> None:
        """Let the checker thread close the connection and end (the server stops);
        one stuck in a check is left to end with the process."""
        self._queue.put(None)

    def _serve_checks(self) -> None:
        while (check := self._queue.get()) is not None:
            try:
                check.answer = self._read()
            finally:
                check.done.set()
                with self._lock:
                    self._in_flight = None
        self._drop_connection()

    def _read(self) -> Answer:
        try:
            project = self._load_project()
            view = self._read_view(project)
        except Exception as exc:
            self._drop_connection()  # whatever state it is in, the next check starts afresh
            return _unavailable(self._error_text(exc))
        return readiness_answer(view, project.graph)

    def _load_project(self) -> Project:
        if self._project is None:
            self._project = Project.load(self.settings)
        return self._project

    def _read_view(self, project: Project) -> DatabaseView:
        settings = self.settings
        if settings.dialect.database_missing(settings):
            return project.read_state(with_journal=False).view  # no file yet: nothing applied
        if self._connection is None:
            # Not autocommit: each check is one transaction, which the statement
            # timeout below is scoped to; read_state ends it.
            self._connection = drivers.connect(settings, autocommit=False, timeout=self.timeout)
            # Behind a pooler in session pooling a kept connection pins one of the
            # pool's few server connections for good: one per check instead.
            self._keep = settings.dialect.pooler_between(self._connection) is None
        bound = settings.dialect.statement_timeout_sql(self.timeout)
        if bound is not None:
            drivers.rows(self._connection, bound)
        view = project.read_state(self._connection, with_journal=False).view
        if not self._keep:
            self._drop_connection()
        return view

    def _drop_connection(self) -> None:
        if self._connection is not None:
            drivers.close_quietly(self._connection)
            self._connection = None

    def _interrupt(self) -> None:
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):  # best effort: the check may just have ended
                self.settings.dialect.interrupt(connection)

    def _error_text(self, exc: Exception) -> str:
        # Messages meant for users are free of passwords already; a driver's own
        # message is shown with the password masked, in case it quotes the URL.
        message = user_message(exc)
        if message is None:
            message = f"cannot read the version tables at {self.settings.where}: {reason(exc)}"
        password = urls.server_address(self.settings.url).password
        return message.replace(password, "***") if password else message


def _unavailable(error: str) -> Answer:
    return HTTPStatus.SERVICE_UNAVAILABLE, {"status": "unavailable", "error": error}
