"""`llm-proxy server` in real processes, and `database.open()` in-process.

Every server is started with --addr 127.0.0.1:0 and its port read from its
output; every wait is bounded; the `spawn` fixture kills whatever is left.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    SETTINGS_ENV,
    SQL_DIR,
    cli,
    settings_for,
    sqlite_dump,
    sqlite_rows,
    write_migration,
)

from llm_proxy import database
from llm_proxy.cli import reexec
from llm_proxy.revisions.graph import Graph, Node
from llm_proxy.revisions.reconcile import DatabaseView
from llm_proxy.server import parse_addr, readiness_answer

SHIPPED = [p.name for p in sorted(SQL_DIR.glob("*.sql"))]
LISTENING = re.compile(r"^llm-proxy listening on http://127\.0\.0\.1:(\d+)$", re.MULTILINE)
START_TIMEOUT = 60.0
_ENV_DROP = SETTINGS_ENV


class Server:
    """One `llm-proxy server` process; output goes to files, so no pipe can fill up."""

    def __init__(self, args: tuple[str, ...], workdir: Path, env: dict[str, str]) -> None:
        self.stdout_path = workdir / "stdout.txt"
        self.stderr_path = workdir / "stderr.txt"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "llm_proxy", "server", "--addr", "127.0.0.1:0", *args],
                stdout=out,
                stderr=err,
                env=env,
                cwd=workdir,
            )
        self.port: int | None = None

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8")

    def wait_listening(self, timeout: float = START_TIMEOUT) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = LISTENING.search(self.stdout)
            if found:
                self.port = int(found.group(1))
                return self.port
            if self.process.poll() is not None:
                pytest.fail(f"server exited {self.process.returncode}: {self.stderr.strip()}")
            time.sleep(0.05)
        pytest.fail(f"server did not start listening within {timeout}s: {self.stderr.strip()}")

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        assert self.port is not None
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> dict[str, Any]:
        self.wait_listening(timeout)
        deadline = time.monotonic() + timeout
        while True:
            status, body = self.get("/readyz")
            if status == 200:
                return body
            if time.monotonic() >= deadline:
                pytest.fail(f"/readyz still {status} {body} after {timeout}s")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)

    def wait_exit(self, timeout: float = START_TIMEOUT) -> int:
        return self.process.wait(timeout=timeout)


Spawn = Callable[..., Server]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    servers: list[Server] = []
    env = {k: v for k, v in os.environ.items() if k not in _ENV_DROP}
    env["PYTHONUNBUFFERED"] = "1"

    def start(*args: str, extra_env: dict[str, str] | None = None) -> Server:
        workdir = tmp_path / f"server{len(servers)}"
        workdir.mkdir()
        server = Server(args, workdir, {**env, **(extra_env or {})})
        servers.append(server)
        return server

    try:
        yield start
    finally:
        for server in servers:
            if server.process.poll() is None:
                server.process.kill()
            server.process.wait(timeout=10)


def goose_rows(path: Path) -> list[tuple[int, int]]:
    return sqlite_rows(path, "SELECT version_id, is_applied FROM goose_db_version ORDER BY id")


HEAD_ROWS = [(0, 1)] + [(v, 1) for v in range(1, 7)]
READY = {"status": "ready", "schema_version": 6, "pending": 0}


# ---------------------------------------------------------------- real processes


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_server_migrates_fresh_sqlite_and_stops_cleanly(
    spawn: Spawn, sqlite_path: Path, sig: int
) -> None:
    server = spawn("--db", str(sqlite_path))
    assert server.wait_ready() == READY
    assert server.get("/healthz") == (200, {"status": "ok"})
    assert server.get("/nowhere")[0] == 404
    assert goose_rows(sqlite_path) == HEAD_ROWS
    ok_lines = [line for line in server.stdout.splitlines() if line.startswith("OK   ")]
    assert [line.split()[1] for line in ok_lines] == SHIPPED

    assert server.stop(sig) == 0
    assert server.stdout.splitlines()[-1] == "llm-proxy stopped"
    assert server.stderr == ""


def test_server_migrates_fresh_postgres(spawn: Spawn, postgres_url: str) -> None:
    import psycopg

    server = spawn("--database-url", postgres_url)
    assert server.wait_ready() == READY
    with psycopg.connect(postgres_url) as connection:
        rows = connection.execute(
            "SELECT version_id, is_applied FROM goose_db_version ORDER BY id"
        ).fetchall()
        heads = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    assert rows == [(v, True) for v in range(7)]
    assert heads == [("00006",)]
    assert server.stop() == 0


def test_no_migrate_on_behind_database_answers_503_until_migrated(
    spawn: Spawn, sqlite_path: Path
) -> None:
    assert cli("migrate", "up-to", "4", "--db", str(sqlite_path)).exit_code == 0
    before = sqlite_dump(sqlite_path)

    server = spawn("--db", str(sqlite_path), "--no-migrate")
    server.wait_listening()
    assert server.get("/healthz") == (200, {"status": "ok"})
    assert server.get("/readyz") == (
        503,
        {
            "status": "pending",
            "schema_version": 4,
            "pending": 2,
            "pending_migrations": SHIPPED[4:],
        },
    )
    assert sqlite_dump(sqlite_path) == before

    # The database is read on every request: an init container (here, a
    # migrate run) catching the schema up makes the running server ready.
    assert cli("migrate", "up", "--db", str(sqlite_path)).exit_code == 0
    assert server.get("/readyz") == (200, READY)
    assert server.stop() == 0


def test_auto_migrate_false_in_environment_is_no_migrate(spawn: Spawn, sqlite_path: Path) -> None:
    server = spawn("--db", str(sqlite_path), extra_env={"LLM_PROXY_AUTO_MIGRATE": "false"})
    server.wait_listening()
    status, body = server.get("/readyz")
    assert (status, body["pending"], body["schema_version"]) == (503, 6, 0)
    assert not sqlite_path.exists()
    assert server.stop() == 0


@pytest.mark.parametrize("flags", [(), ("--no-migrate",)], ids=["auto", "no-migrate"])
def test_server_refuses_database_newer_than_code(
    spawn: Spawn, sqlite_path: Path, shipped_sqlite_dir: Path, flags: tuple[str, ...]
) -> None:
    write_migration(shipped_sqlite_dir, "00007_newer.sql", "CREATE TABLE newer (id INTEGER);")
    newer = ("--db", str(sqlite_path), "--migrations-dir", str(shipped_sqlite_dir))
    assert cli("migrate", "up", *newer).exit_code == 0
    before = sqlite_dump(sqlite_path)

    server = spawn("--db", str(sqlite_path), *flags)
    assert server.wait_exit() == 1
    assert server.stderr.splitlines() == [
        "Error: database is at version 7, newer than this llm-proxy's migrations (latest 6): "
        "deploy the newer llm-proxy, or roll the database back with it "
        "(llm-proxy migrate down-to 6)"
    ]
    assert "listening" not in server.stdout
    assert sqlite_dump(sqlite_path) == before


def test_server_with_failing_migration_exits_with_one_line(
    spawn: Spawn, sqlite_path: Path, migrations_dir: Path
) -> None:
    write_migration(migrations_dir, "00001_bad.sql", "CREATE TABLE t (id INTEGER);\nSELEC 1;")
    server = spawn("--db", str(sqlite_path), "--migrations-dir", str(migrations_dir))
    assert server.wait_exit() == 1
    (line,) = server.stderr.splitlines()
    assert line.startswith("Error: ") and "00001_bad.sql" in line
    assert "listening" not in server.stdout


def test_eight_servers_at_once_on_one_postgres_database(spawn: Spawn, postgres_url: str) -> None:
    import psycopg

    servers = [spawn("--database-url", postgres_url) for _ in range(8)]
    for server in servers:
        assert server.wait_ready(timeout=120) == READY

    with psycopg.connect(postgres_url) as connection:
        counts = connection.execute(
            "SELECT version_id, count(*) FROM goose_db_version GROUP BY version_id ORDER BY 1"
        ).fetchall()
    assert counts == [(v, 1) for v in range(7)]
    # Exactly one process ran each migration; the others found nothing to do.
    ran = [
        line.split()[1] for s in servers for line in s.stdout.splitlines() if line[:5] == "OK   "
    ]
    assert sorted(ran) == SHIPPED
    assert len({s.port for s in servers}) == 8

    for server in servers:
        server.process.send_signal(signal.SIGTERM)
    assert [server.wait_exit(timeout=20) for server in servers] == [0] * 8


# ---------------------------------------------------------------- readiness under load


def probe(
    port: int, path: str = "/readyz", *, timeout: float = 10.0, method: str = "GET"
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request on a fresh connection: (status, headers, raw body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def burst(port: int, count: int, *, timeout: float) -> list[int | None]:
    """`count` probes of /readyz at once; each one's status, None for no answer in time."""
    statuses: list[int | None] = [None] * count

    def one(index: int) -> None:
        # No answer in time: the client gives up, as a prober with a short timeout does.
        with contextlib.suppress(OSError):
            statuses[index] = probe(port, timeout=timeout)[0]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def thread_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


# A server handles at most 32 requests at once, plus its main thread and one
# readiness check; a few more are slack, far below one thread per probe.
MAX_SERVER_THREADS = 40


def other_backends(connection: Any, *excluded_pids: int) -> int:
    """PostgreSQL sessions on this connection's database but for ours."""
    return connection.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND NOT (pid = ANY(%s))",
        (list(excluded_pids),),
    ).fetchone()[0]


def test_readyz_on_a_locked_version_table_is_bounded(spawn: Spawn, postgres_url: str) -> None:
    import psycopg

    server = spawn("--database-url", postgres_url)
    assert server.wait_ready() == READY
    with (
        psycopg.connect(postgres_url) as blocker,
        psycopg.connect(postgres_url, autocommit=True) as observer,
    ):
        # Held until the rollback below.
        blocker.execute("LOCK TABLE goose_db_version IN ACCESS EXCLUSIVE MODE")
        statuses = burst(server.port, 60, timeout=1.0)
        assert set(statuses) <= {503, None}

        # Probes share one check on one connection: no session or thread per probe.
        assert other_backends(observer, blocker.info.backend_pid) <= 2
        assert thread_count(server.process.pid) <= MAX_SERVER_THREADS

        # Answered while the lock is still held: a 503 that says why.
        status, headers, body = probe(server.port, timeout=15.0)
        assert (status, headers["Content-Type"]) == (503, "application/json")
        answer = json.loads(body)
        assert answer["status"] == "unavailable" and answer["error"]
        blocker.rollback()
    assert server.wait_ready() == READY
    assert server.stop() == 0
    assert "Traceback" not in server.stderr  # probers that gave up are not errors


def test_readyz_on_a_locked_mysql_table_is_bounded(spawn: Spawn, mysql_url: str) -> None:
    import pymysql

    from llm_proxy.urls import server_address

    server = spawn("--database-url", mysql_url)
    assert server.wait_ready() == READY
    where = server_address(mysql_url)
    blocker = pymysql.connect(
        host=where.host, port=where.port, user="root", database=where.database
    )
    try:
        with blocker.cursor() as cursor:
            cursor.execute("LOCK TABLES goose_db_version WRITE")
            statuses = burst(server.port, 60, timeout=1.0)
            assert set(statuses) <= {503, None}
            cursor.execute(
                "SELECT count(*) FROM information_schema.processlist "
                "WHERE db = DATABASE() AND id <> CONNECTION_ID()"
            )
            assert cursor.fetchone()[0] <= 2
            assert thread_count(server.process.pid) <= MAX_SERVER_THREADS

            status, _headers, body = probe(server.port, timeout=15.0)
            assert (status, json.loads(body)["status"]) == (503, "unavailable")
            cursor.execute("UNLOCK TABLES")
    finally:
        blocker.close()
    assert server.wait_ready() == READY
    assert server.stop() == 0


class FreezableProxy:
    """A TCP relay to the database that can stop relaying, as a database server
    stopped with SIGSTOP does: connections are accepted, nothing is answered."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.flowing = threading.Event()
        self.flowing.set()
        self.accepted = 0
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def freeze(self) -> None:
        self.flowing.clear()

    def thaw(self) -> None:
        self.flowing.set()

    def close(self) -> None:
        self.flowing.set()
        for sock in self.sockets:
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            self.accepted += 1
            self.sockets.append(client)
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        self.flowing.wait()
        try:
            upstream = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        self.sockets.append(upstream)
        for source, target in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._relay, args=(source, target), daemon=True).start()

    def _relay(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self.flowing.wait()
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            sock.close()


def test_readyz_when_the_database_stops_answering(spawn: Spawn, postgres_url: str) -> None:
    assert cli("migrate", "up", "--database-url", postgres_url).exit_code == 0
    proxy = FreezableProxy(("127.0.0.1", 5432))
    try:
        proxied = postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        assert proxied != postgres_url
        server = spawn("--database-url", proxied, "--no-migrate", "--readiness-timeout", "1")
        assert server.wait_ready() == READY

        proxy.freeze()
        opened_before = proxy.accepted
        # A check stuck in a query, then new connections that are never answered:
        # every probe still gets its 503, none waits for the database.
        answers = []
        for _ in range(8):
            status, _headers, body = probe(server.port, timeout=8.0)
            answers.append((status, json.loads(body)["status"]))
            time.sleep(0.5)
        assert answers == [(503, "unavailable")] * 8
        assert proxy.accepted - opened_before <= 4  # one connection at a time
        assert thread_count(server.process.pid) <= MAX_SERVER_THREADS

        proxy.thaw()
        assert server.wait_ready() == READY
        assert server.stop() == 0
    finally:
        proxy.close()


# ---------------------------------------------------------------- HTTP


def raw_exchange(port: int, request: bytes) -> bytes:
    """Send raw bytes, read the whole answer (the server closes after it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_head_other_methods_and_bad_requests_get_json(spawn: Spawn, sqlite_path: Path) -> None:
    server = spawn("--db", str(sqlite_path))
    assert server.wait_ready() == READY
    port = server.port
    assert port is not None

    for path in ("/healthz", "/readyz"):
        _, get_headers, get_body = probe(port, path)
        status, headers, body = probe(port, path, method="HEAD")
        assert (status, body) == (200, b"")
        assert headers["Content-Type"] == "application/json"
        assert headers["Content-Length"] == get_headers["Content-Length"] == str(len(get_body))

    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"):
        status, headers, body = probe(port, "/readyz", method=method)
        assert (status, headers["Allow"], headers["Content-Type"]) == (
            405,
            "GET, HEAD",
            "application/json",
        ), method
        assert json.loads(body) == {"error": "method not allowed"}

    for method in ("GET", "POST"):
        status, headers, body = probe(port, "/nowhere", method=method)
        assert (status, headers["Content-Type"], json.loads(body)) == (
            404,
            "application/json",
            {"error": "not found"},
        )

    answer = raw_exchange(port, b"GET /healthz extra HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.0 400 Bad Request"
    assert b"Content-Type: application/json" in lines
    assert json.loads(body) == {"error": "Bad request syntax ('GET /healthz extra HTTP/1.1')"}

    assert server.stop() == 0
    assert server.stderr == ""


def test_idle_and_half_sent_connections_are_closed(spawn: Spawn, sqlite_path: Path) -> None:
    server = spawn("--db", str(sqlite_path))
    assert server.wait_ready() == READY
    address = ("127.0.0.1", server.port)
    idle = socket.create_connection(address, timeout=30)
    trickle = socket.create_connection(address, timeout=30)
    try:
        # A request head that never ends, one byte every half second: a timeout
        # per read would never fire; the server must still close it.
        trickle.sendall(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
        closed = False
        for _ in range(60):  # 30 s at most
            try:
                trickle.sendall(b"x")
                readable, _, _ = select.select([trickle], [], [], 0.5)
                closed = bool(readable) and trickle.recv(65536) == b""
            except OSError:
                closed = True  # reset by the server
            if closed:
                break
        assert closed
        assert idle.recv(1) == b""  # closed by the server, not by our 30 s timeout
    finally:
        idle.close()
        trickle.close()
    assert server.get("/healthz") == (200, {"status": "ok"})
    assert server.stop() == 0


def test_listen_backlog_holds_a_burst_of_connections(spawn: Spawn, sqlite_path: Path) -> None:
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) is not installed: it shows a listening socket's backlog")
    server = spawn("--db", str(sqlite_path))
    port = server.wait_listening()
    listing = subprocess.run(
        ["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout.split()
    # State, Recv-Q, Send-Q: for a listening socket, Send-Q is its backlog.
    assert listing[0] == "LISTEN" and int(listing[2]) >= 128
    assert server.stop() == 0


# ---------------------------------------------------------------- start-up


def test_port_in_use_fails_before_migrating(spawn: Spawn, sqlite_path: Path) -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        server = spawn("--db", str(sqlite_path), "--addr", f"127.0.0.1:{port}")
        assert server.wait_exit() == 1
    assert server.stderr.splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]
    assert server.stdout == ""
    assert not sqlite_path.exists()  # nothing migrated, not even created


def test_database_url_is_not_left_in_the_command_line(spawn: Spawn, postgres_url: str) -> None:
    # The test server trusts local connections: any password is accepted.
    secret = "pw-s3cr3t-for-ps"
    url = postgres_url.replace("postgresql://postgres@", f"postgresql://postgres:{secret}@")
    assert secret in url
    server = spawn("--database-url", url)
    assert server.wait_ready() == READY
    pid = server.process.pid  # the same process, re-executed
    command_line = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert not any(secret.encode() in part for part in command_line), command_line
    assert b"--database-url" not in command_line
    assert b"--addr" in command_line and b"server" in command_line
    # Readable by the same user only, unlike the command line.
    environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert f"DATABASE_URL={url}".encode() in environment
    assert server.stop() == 0
    assert server.stderr == ""


def test_lock_url_is_not_left_in_the_command_line(spawn: Spawn, postgres_url: str) -> None:
    secret, lock_secret = "pw-db-for-ps", "pw-lock-for-ps"
    url = postgres_url.replace("postgresql://postgres@", f"postgresql://postgres:{secret}@")
    lock_url = postgres_url.replace(
        "postgresql://postgres@", f"postgresql://postgres:{lock_secret}@"
    )
    server = spawn("--lock-url", lock_url, "--database-url", url)
    assert server.wait_ready() == READY
    pid = server.process.pid
    command_line = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    for hidden in (secret, lock_secret, "--lock-url", "--database-url"):
        assert not any(hidden.encode() in part for part in command_line), command_line
    environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert f"DATABASE_URL={url}".encode() in environment
    assert f"LLM_PROXY_MIGRATION_DATABASE_URL={lock_url}".encode() in environment
    assert server.stop() == 0
    assert server.stderr == ""


# ---------------------------------------------------------------- in-process


def test_open_migrates_and_returns_a_working_engine(sqlite_path: Path) -> None:
    lines: list[str] = []
    engine = database.open(settings_for(db=str(sqlite_path)), report=lines.append)
    try:
        with engine.connect() as connection:
            count = connection.exec_driver_sql("SELECT count(*) FROM projects").scalar()
    finally:
        engine.dispose()
    assert count == 0
    assert [line.split()[1] for line in lines] == SHIPPED
    assert goose_rows(sqlite_path) == HEAD_ROWS
    assert (sqlite_path.stat().st_mode & 0o777) == 0o600


def test_open_without_auto_migrate_changes_nothing(sqlite_path: Path) -> None:
    assert cli("migrate", "up-to", "2", "--db", str(sqlite_path)).exit_code == 0
    before = sqlite_dump(sqlite_path)
    settings = settings_for(db=str(sqlite_path), auto_migrate=False)
    database.open(settings).dispose()
    assert sqlite_dump(sqlite_path) == before


def test_open_refuses_unknown_alembic_revision(sqlite_path: Path) -> None:
    assert cli("migrate", "up", "--db", str(sqlite_path)).exit_code == 0
    connection = sqlite3.connect(sqlite_path)
    with connection:
        connection.execute("UPDATE alembic_version SET version_num = 'f00dcafe1234'")
    connection.close()
    before = sqlite_dump(sqlite_path)
    with pytest.raises(database.DatabaseNewerThanCode, match="revision f00dcafe1234"):
        database.open(settings_for(db=str(sqlite_path)))
    assert sqlite_dump(sqlite_path) == before


def test_open_refuses_applied_version_whose_file_is_gone(
    sqlite_path: Path, shipped_sqlite_dir: Path
) -> None:
    args = ("--db", str(sqlite_path), "--migrations-dir", str(shipped_sqlite_dir))
    assert cli("migrate", "up", *args).exit_code == 0
    (shipped_sqlite_dir / SHIPPED[2]).unlink()  # 00003 applied, its file removed
    settings = settings_for(db=str(sqlite_path), migrations_dir=str(shipped_sqlite_dir))
    with pytest.raises(database.DatabaseNewerThanCode) as caught:
        database.open(settings)
    assert str(caught.value) == (
        f"database has migration version 3 applied, but no file in {shipped_sqlite_dir} "
        "defines it: restore the missing file or use the llm-proxy that applied it"
    )


def test_readiness_answer() -> None:
    graph = Graph.build(
        [
            Node("00001", (), goose_version=1, name="00001_a.sql"),
            Node("00002", ("00001",), goose_version=2, name="00002_b.sql"),
        ]
    )
    behind = DatabaseView(frozenset({"00001"}), ("00001",), 1, pending=("00002",))
    assert readiness_answer(behind, graph) == (
        503,
        {
            "status": "pending",
            "schema_version": 1,
            "pending": 1,
            "pending_migrations": ["00002_b.sql"],
        },
    )
    at_head = DatabaseView(frozenset({"00001", "00002"}), ("00002",), 2)
    assert readiness_answer(at_head, graph) == (
        200,
        {"status": "ready", "schema_version": 2, "pending": 0},
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:8080", ("127.0.0.1", 8080)), (":0", ("", 0)), ("[::1]:9", ("::1", 9))],
)
def test_parse_addr(text: str, expected: tuple[str, int]) -> None:
    assert parse_addr(text) == expected


@pytest.mark.parametrize("text", ["8080", "host:", "host:http", "h:70000"])
def test_parse_addr_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_addr(text)


URL = "postgres://u:secret@db/app"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["server", "--database-url", URL, "--addr", ":0"], ["server", "--addr", ":0"]),
        (["server", f"--database-url={URL}"], ["server"]),
        (["server", "--db", "x.db"], None),
        (["server", "--database-url", "postgres://other/app"], None),
        (["server", "--database-url"], None),
    ],
    ids=["separate", "joined", "absent", "other-value", "no-value"],
)
def test_without_option(args: list[str], expected: list[str] | None) -> None:
    assert reexec.without_option(args, "--database-url", URL) == expected


@pytest.mark.parametrize(
    ("orig_argv", "argv", "expected"),
    [
        (
            ["python3", "-X", "dev", "-m", "llm_proxy", "server", "--database-url", URL],
            ["/site/llm_proxy/__main__.py", "server", "--database-url", URL],
            ["python3", "-X", "dev", "-m", "llm_proxy", "server"],
        ),
        (
            ["/venv/bin/python", "/venv/bin/llm-proxy", "server", f"--database-url={URL}"],
            ["/venv/bin/llm-proxy", "server", f"--database-url={URL}"],
            ["/venv/bin/python", "/venv/bin/llm-proxy", "server"],
        ),
        # In-process (click's test runner): the URL is not on our command line.
        (["python3", "-m", "pytest", "-q"], ["/venv/pytest", "-q"], None),
    ],
    ids=["module", "console-script", "in-process"],
)
def test_command_without_option(
    orig_argv: list[str], argv: list[str], expected: list[str] | None
) -> None:
    assert reexec.command_without_option(orig_argv, argv, "--database-url", URL) == expected


@pytest.mark.parametrize("value", ["0", "-1", "nan", "61", "soon"])
@pytest.mark.parametrize("given_by", ["flag", "environment"])
def test_readiness_timeout_is_checked(value: str, given_by: str, sqlite_path: Path) -> None:
    flag = ["--readiness-timeout", value] if given_by == "flag" else []
    env = {"LLM_PROXY_READINESS_TIMEOUT": value} if given_by == "environment" else {}
    result = cli("server", "--db", str(sqlite_path), *flag, env=env)
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("Error: Invalid value for '--readiness-timeout'")
    assert not sqlite_path.exists()
