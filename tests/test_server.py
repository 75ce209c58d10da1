"""`llm-proxy server` in real processes, and `database.open()` in-process.

Every server is started with --addr 127.0.0.1:0 and its port read from its
output; every wait is bounded; the `spawn` fixture kills whatever is left.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
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
