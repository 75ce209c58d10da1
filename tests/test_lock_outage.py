"""The outage a waiting ALTER causes, and its prevention, on the real servers.

A session holds a transaction that read `items`; a migration altering `items`
starts; readers query `items` throughout. Every assertion is about the order
of events (one monotonic clock for all processes) and the outcome, never about
how long anything took.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import run_cli, write_migration
from tests.outage_helpers import Process, holder, migrate, readers, reads_of

ALTER = "ALTER TABLE items ADD COLUMN x int;"


def _project(tmp_path: Path, url: str, alter: str = ALTER, extra: str = "") -> Path:
    directory = tmp_path / "migrations"
    directory.mkdir()
    write_migration(
        directory,
        "00001_items.sql",
        "CREATE TABLE items (id int);\nINSERT INTO items VALUES (1), (2), (3);",
        "DROP TABLE items;",
    )
    done = run_cli("migrate", "up", "--database-url", url, "--migrations-dir", str(directory))
    assert done.returncode == 0, done.stderr
    write_migration(directory, "00002_alter.sql", alter, "SELECT 1;", extra=extra)
    return directory


def _query(url: str, sql: str) -> list[tuple]:
    if url.startswith("mysql"):
        import urllib.parse

        import pymysql

        parts = urllib.parse.urlsplit(url)
        connection = pymysql.connect(
            host=parts.hostname, port=parts.port or 3306, user="root", password="",
            database=parts.path.lstrip("/"),
        )  # fmt: skip
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return list(cursor.fetchall())
        finally:
            connection.close()
    import psycopg

    with psycopg.connect(url) as connection:
        return connection.execute(sql).fetchall()


def _columns(url: str) -> list[str]:
    schema = "DATABASE()" if url.startswith("mysql") else "current_schema()"
    rows = _query(
        url,
        "SELECT column_name FROM information_schema.columns "
        f"WHERE table_name = 'items' AND table_schema = {schema} ORDER BY column_name",
    )
    return [r[0] for r in rows]


def _goose_versions(url: str) -> list[int]:
    return [r[0] for r in _query(url, "SELECT version_id FROM goose_db_version ORDER BY id")]


def _up(directory: Path, url: str, *flags: str) -> Process:
    return migrate("up", "--database-url", url, "--migrations-dir", str(directory), *flags)


def _stop(stop: Path, reader_processes: list[Process]) -> None:
    stop.touch()
    for reader in reader_processes:
        assert reader.finish() == 0, reader.text("stderr")


def _alter_waiting(url: str, migration: Process | None = None) -> float:
    """When PostgreSQL shows the ALTER queued for its lock (polled)."""
    for _ in range(600):
        if migration is not None and migration.popen.poll() is not None:
            migration.finish()
            raise AssertionError(f"the migration ended: {migration.text()}")
        rows = _query(
            url,
            "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE 'ALTER TABLE items%'",
        )
        if rows:
            return time.monotonic()
        time.sleep(0.02)
    raise AssertionError("the ALTER never waited for its lock")


@pytest.fixture(params=["postgres", "mariadb"])
def server_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("postgres_url" if request.param == "postgres" else "mysql_url")


def _lock_timeout(url: str) -> str:
    return "1s" if url.startswith("mysql") else "300ms"  # MySQL counts whole seconds


def test_with_lock_timeouts_readers_answer_between_retries_and_it_succeeds(
    server_url: str, tmp_path: Path
) -> None:
    directory = _project(tmp_path, server_url)
    holding = holder(server_url, "items")
    stop = tmp_path / "stop"
    reading = readers(server_url, "items", stop, 2)
    try:
        migration = _up(
            directory, server_url, "--ddl-lock-timeout", _lock_timeout(server_url),
            "--ddl-lock-retries", "30",
        )  # fmt: skip
        first = migration.wait_for("retry 1 of 30")
        second = migration.wait_for("retry 2 of 30")
        holding.send("")
        holding.wait_for("released")
        assert migration.finish() == 0, migration.text()
    finally:
        _stop(stop, reading)
        holding.popen.kill()
    retry_lines = [line for line in migration.text("stderr").splitlines() if "retry" in line]
    assert retry_lines[0].startswith("warning: 00002_alter.sql: statement 1 gave up after ")
    assert "table items, held by pid " + str(holding.server_pid) in retry_lines[0]  # type: ignore[attr-defined]
    assert "OK   00002_alter.sql" in migration.text("stdout")
    # Between two tries the table was free: readers finished queries there.
    assert any(first < finished < second for _, finished in reads_of(reading))
    assert _columns(server_url) == ["id", "x"]
    assert _goose_versions(server_url)[-1] == 2


def test_without_lock_timeouts_readers_stall_until_the_long_transaction_ends(
    postgres_url: str, tmp_path: Path
) -> None:
    directory = _project(tmp_path, postgres_url)
    holding = holder(postgres_url, "items")
    stop = tmp_path / "stop"
    reading = readers(postgres_url, "items", stop, 2)
    try:
        migration = _up(directory, postgres_url, "--ddl-lock-timeout", "0")
        queued = _alter_waiting(postgres_url)
        time.sleep(1)  # let readers queue behind the ALTER
        released_at = time.monotonic()
        holding.send("")
        holding.wait_for("released")
        assert migration.finish() == 0, migration.text()
    finally:
        _stop(stop, reading)
        holding.popen.kill()
    behind = [(s, f) for s, f in reads_of(reading) if s > queued]
    assert behind, "no reader started while the ALTER was queued"
    # Every read that started behind the queued ALTER ended only after the release.
    assert all(finished > released_at for started, finished in behind if started < released_at)
    assert "retry" not in migration.text()


def test_retries_exhausted_is_one_error_line_and_nothing_applied(
    server_url: str, tmp_path: Path
) -> None:
    directory = _project(tmp_path, server_url)
    before = _goose_versions(server_url)
    holding = holder(server_url, "items")
    try:
        migration = _up(
            directory, server_url, "--ddl-lock-timeout", _lock_timeout(server_url),
            "--ddl-lock-retries", "2",
        )  # fmt: skip
        code = migration.finish()
    finally:
        holding.send("")
        holding.finish()
    assert code == 1
    stderr = migration.text("stderr").splitlines()
    assert [line.split(": retry")[0][-6:] for line in stderr if "retry" in line] == [
        line.split(": retry")[0][-6:] for line in stderr[:2]
    ]
    assert sum("retry" in line for line in stderr) == 2
    errors = [line for line in stderr if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0] == stderr[-1]
    assert errors[0].startswith(
        "Error: 00002_alter.sql: statement 1 gave up waiting for a lock on table items, "
        f"held by pid {holding.server_pid}"  # type: ignore[attr-defined]
    )
    assert "3 time(s)" in errors[0] and "nothing of it was applied" in errors[0]
    assert _columns(server_url) == ["id"]
    assert _goose_versions(server_url) == before


def test_kill_9_during_a_retry_leaves_nothing_half_done(server_url: str, tmp_path: Path) -> None:
    # On PostgreSQL earlier statements of the file ride in the try's savepoint;
    # MySQL would commit a CREATE TABLE at once (see the next test).
    earlier = "CREATE TABLE side (id int);\nINSERT INTO items VALUES (4);\n"
    directory = _project(
        tmp_path, server_url, alter=("" if server_url.startswith("mysql") else earlier) + ALTER
    )
    before = _goose_versions(server_url)
    holding = holder(server_url, "items")
    try:
        migration = _up(
            directory, server_url, "--ddl-lock-timeout", _lock_timeout(server_url),
            "--ddl-lock-retries", "50",
        )  # fmt: skip
        migration.wait_for("retry 1 of 50")
        migration.popen.kill()
        migration.finish()
    finally:
        holding.send("")
        holding.finish()
    if server_url.startswith("postgresql"):
        # Transactional DDL: the try's CREATE and INSERT went with the savepoint.
        assert _query(server_url, "SELECT to_regclass('side')") == [(None,)]
        assert _query(server_url, "SELECT count(*) FROM items") == [(3,)]
    assert _columns(server_url) == ["id"]
    assert _goose_versions(server_url) == before
    again = run_cli(
        "migrate", "up", "--database-url", server_url, "--migrations-dir", str(directory)
    )
    if server_url.startswith("postgresql"):
        assert again.returncode == 0, again.stderr
        assert _columns(server_url) == ["id", "x"]


def test_mysql_does_not_retry_once_ddl_of_the_file_committed(
    mysql_url: str, tmp_path: Path
) -> None:
    directory = _project(tmp_path, mysql_url, alter="CREATE TABLE side (id int);\n" + ALTER)
    holding = holder(mysql_url, "items")
    try:
        migration = _up(directory, mysql_url, "--ddl-lock-timeout", "1s")
        assert migration.finish() == 1
    finally:
        holding.send("")
        holding.finish()
    stderr = migration.text("stderr")
    assert "retry" not in stderr
    assert "statement 2 gave up waiting for a lock on table items" in stderr
    assert "statements 1-1 stay applied (this database's DDL is not transactional)" in stderr


def test_the_file_line_overrides_the_flag_and_0_turns_it_off(
    postgres_url: str, tmp_path: Path
) -> None:
    directory = _project(tmp_path, postgres_url, extra="-- llm-proxy: lock-timeout 0\n")
    holding = holder(postgres_url, "items")
    try:
        migration = _up(
            directory, postgres_url, "--ddl-lock-timeout", "100ms", "--ddl-lock-retries", "0"
        )
        _alter_waiting(postgres_url, migration)
        time.sleep(0.5)  # several flag timeouts: the file's 0 keeps it waiting
        assert migration.popen.poll() is None
        holding.send("")
        assert migration.finish() == 0, migration.text()
    finally:
        holding.popen.kill()
    assert "retry" not in migration.text()
    # And a file's own timeout applies where the flag turned it off.
    (directory / "00003_more.sql").write_text(
        "-- llm-proxy: lock-timeout 100ms\n-- +goose Up\nALTER TABLE items ADD COLUMN y int;\n"
        "-- +goose Down\nSELECT 1;\n",
        encoding="utf-8",
    )
    holding = holder(postgres_url, "items")
    try:
        refused = _up(directory, postgres_url, "--ddl-lock-timeout", "0", "--ddl-lock-retries", "1")
        assert refused.finish() == 1
    finally:
        holding.send("")
        holding.finish()
    assert "Error: 00003_more.sql: statement 1 gave up" in refused.text("stderr")
    assert _columns(postgres_url) == ["id", "x"]


def test_no_transaction_file_retries_its_first_statement(postgres_url: str, tmp_path: Path) -> None:
    directory = _project(
        tmp_path, postgres_url, extra="-- +goose NO TRANSACTION\n",
        alter="ALTER TABLE items ADD y int;\nCREATE INDEX CONCURRENTLY items_id ON items (id);",
    )  # fmt: skip
    holding = holder(postgres_url, "items")
    try:
        migration = _up(
            directory, postgres_url, "--ddl-lock-timeout", "300ms", "--ddl-lock-retries", "30"
        )
        migration.wait_for("retry 1 of 30")
        holding.send("")
        assert migration.finish() == 0, migration.text()
    finally:
        holding.popen.kill()
    assert _columns(postgres_url) == ["id", "y"]
    assert _query(postgres_url, "SELECT count(*) FROM llm_proxy_partial_runs") == [(0,)]


@pytest.mark.parametrize("where", ["flag", "file"])
def test_statement_timeout_stops_a_long_statement_cleanly(
    server_url: str, tmp_path: Path, where: str
) -> None:
    sleep = "SELECT SLEEP(5);" if server_url.startswith("mysql") else "SELECT pg_sleep(5);"
    extra = "-- llm-proxy: statement-timeout 500ms\n" if where == "file" else ""
    directory = _project(
        tmp_path, server_url, alter="INSERT INTO items VALUES (9);\n" + sleep, extra=extra
    )
    before = _goose_versions(server_url)
    flags = ["--statement-timeout", "500ms"] if where == "flag" else []
    result = run_cli(
        "migrate", "up", "--database-url", server_url, "--migrations-dir", str(directory), *flags
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: 00002_alter.sql: statement 2 failed: ")
    assert "(statement timeout 0.5s: --statement-timeout" in lines[0]
    assert _goose_versions(server_url) == before
    assert _query(server_url, "SELECT count(*) FROM items") == [(3,)]
