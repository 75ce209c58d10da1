"""Errors that used to surface as a bare exception or a line that did not say where.

Each must be one `Error:` line naming what is wrong and where (the setting, the file,
the table), exit non-zero and leave the database as it was.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SETTINGS_ENV, cli, settings_for, sqlite_dump, sqlite_rows, write_migration

from llm_proxy import migrate


def one_line_error(result) -> str:
    """The single `Error:` line of a failed in-process CLI run."""
    assert result.exit_code != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def notes_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    directory.mkdir()
    write_migration(
        directory, "00001_notes.sql", "CREATE TABLE notes (id INTEGER);", "DROP TABLE notes;"
    )
    return directory


@pytest.fixture
def migrated_db(tmp_path: Path, notes_dir: Path) -> Path:
    db = tmp_path / "db" / "app.db"
    migrate.up(settings_for(db=str(db), migrations_dir=str(notes_dir)))
    return db


# ---------------------------------------------------------------- URL parameters


def test_unknown_mysql_charset(mysql_url: str, notes_dir: Path) -> None:
    """PyMySQL failed with AttributeError: 'NoneType' object has no attribute 'encoding'."""
    import pymysql

    for command in ("status", "up"):
        result = cli(
            "migrate", command, "--database-url", f"{mysql_url}?charset=bogus",
            "--migrations-dir", str(notes_dir),
        )  # fmt: skip
        line = one_line_error(result)
        assert "charset" in line and "'bogus'" in line, line
        assert "AttributeError" not in line
    database = mysql_url.rsplit("/", 1)[1]
    connection = pymysql.connect(host="127.0.0.1", port=3306, user="root", database=database)
    try:
        with connection.cursor() as cursor:
            assert cursor.execute("SHOW TABLES") == 0
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("timeout=abc", "timeout=abc"),
        ("timeout=", "timeout="),
        ("detect_types=x", "detect_types=x"),
        ("cached_statements=1.5", "cached_statements=1.5"),
        ("check_same_thread=maybe", "check_same_thread=maybe"),
    ],
)
def test_sqlite_url_parameter_of_the_wrong_type(
    tmp_path: Path, notes_dir: Path, query: str, named: str
) -> None:
    """SQLAlchemy converted them only when the engine connected: ValueError: could not
    convert string to float, after the database file and its lock file were made."""
    db = tmp_path / "x.db"
    result = cli(
        "migrate", "up", "--database-url", f"sqlite:///{db}?{query}",
        "--migrations-dir", str(notes_dir),
    )  # fmt: skip
    line = one_line_error(result)
    assert named in line, line
    assert "ValueError" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["migrations"]


def test_sqlite_url_parameters_of_the_right_type_still_work(
    tmp_path: Path, notes_dir: Path
) -> None:
    db = tmp_path / "x.db"
    result = cli(
        "migrate", "up", "--database-url", f"sqlite:///{db}?timeout=2.5&check_same_thread=false",
        "--migrations-dir", str(notes_dir),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr


# ---------------------------------------------------------------- alembic_version's shape


def _replace_alembic_version_sqlite(db: Path) -> None:
    import sqlite3

    connection = sqlite3.connect(db, isolation_level=None)
    try:
        connection.execute("DROP TABLE alembic_version")
        connection.execute("CREATE TABLE alembic_version (revision TEXT, applied TEXT)")
        connection.execute("INSERT INTO alembic_version VALUES ('00001', 'yes')")
    finally:
        connection.close()


@pytest.mark.parametrize("command", ["status", "up", "down", "repair", "redo"])
def test_alembic_version_of_another_shape_sqlite(
    migrated_db: Path, notes_dir: Path, command: str
) -> None:
    """Used to be `OperationalError: no such column: version_num`."""
    write_migration(
        notes_dir, "00002_more.sql", "CREATE TABLE more (id INTEGER);", "DROP TABLE more;"
    )
    _replace_alembic_version_sqlite(migrated_db)
    before = sqlite_dump(migrated_db)
    result = cli("migrate", command, "--db", str(migrated_db), "--migrations-dir", str(notes_dir))
    line = one_line_error(result)
    assert "alembic_version" in line and "version_num" in line, line
    assert not line.startswith("Error: OperationalError")
    assert sqlite_dump(migrated_db) == before


def test_alembic_version_of_another_shape_postgres(postgres_url: str, notes_dir: Path) -> None:
    import psycopg

    migrate.up(settings_for(database_url=postgres_url, migrations_dir=str(notes_dir)))
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("ALTER TABLE alembic_version RENAME COLUMN version_num TO revision")
    for command in ("status", "up"):
        result = cli(
            "migrate", command, "--database-url", postgres_url, "--migrations-dir", str(notes_dir)
        )
        line = one_line_error(result)
        assert "alembic_version" in line and "version_num" in line, line


# ---------------------------------------------------------------- disk full


@pytest.fixture
def disk_of_pages(monkeypatch: pytest.MonkeyPatch):
    """Every SQLite connection llm-proxy opens may grow its file by `n` more pages only
    (PRAGMA max_page_count): SQLite then fails exactly as on a full disk (SQLITE_FULL)."""
    from llm_proxy.dialects.sqlite import SQLiteDialect

    real_connect = SQLiteDialect.connect
    room: dict[str, int] = {}

    def connect(self, target, **kwargs):  # type: ignore[no-untyped-def]
        connection = real_connect(self, target, **kwargs)
        if "pages" in room:  # set by the test, after its fixtures migrated freely
            pages = connection.execute("PRAGMA page_count").fetchone()[0]
            connection.execute(f"PRAGMA max_page_count = {max(pages + room['pages'], 1)}")
        return connection

    monkeypatch.setattr(SQLiteDialect, "connect", connect)

    def limit(pages: int) -> None:
        room["pages"] = pages

    return limit


def test_disk_full_while_a_migration_runs(
    disk_of_pages, migrated_db: Path, notes_dir: Path
) -> None:
    write_migration(
        notes_dir,
        "00002_blob.sql",
        "CREATE TABLE blobs (data BLOB);\nINSERT INTO blobs VALUES (zeroblob(2000000));",
        "DROP TABLE blobs;",
    )
    before = sqlite_dump(migrated_db)
    disk_of_pages(4)
    result = cli("migrate", "up", "--db", str(migrated_db), "--migrations-dir", str(notes_dir))
    line = one_line_error(result)
    assert str(migrated_db) in line and "full" in line, line
    assert "00002_blob.sql" in line  # where it happened
    assert sqlite_dump(migrated_db) == before


def test_disk_full_while_creating_the_version_tables(
    disk_of_pages, tmp_path: Path, notes_dir: Path
) -> None:
    db = tmp_path / "fresh.db"
    disk_of_pages(1)
    result = cli("migrate", "up", "--db", str(db), "--migrations-dir", str(notes_dir))
    line = one_line_error(result)
    assert str(db) in line and "full" in line, line
    assert sqlite_rows(db, "SELECT name FROM sqlite_master") == []  # nothing was kept


def test_disk_full_while_repair_records_checksums(
    disk_of_pages, migrated_db: Path, notes_dir: Path
) -> None:
    """repair writes outside Alembic: recreating our checksum table needs a page."""
    import sqlite3

    connection = sqlite3.connect(migrated_db)
    connection.execute("DROP TABLE llm_proxy_migrations")
    connection.commit()
    connection.execute("VACUUM")  # no free page left to reuse
    connection.close()
    before = sqlite_dump(migrated_db)
    disk_of_pages(0)
    result = cli("migrate", "repair", "--db", str(migrated_db), "--migrations-dir", str(notes_dir))
    line = one_line_error(result)
    assert str(migrated_db) in line and "full" in line, line
    assert sqlite_dump(migrated_db) == before


# ---------------------------------------------------------------- the file system


def test_symlink_loop_in_the_migrations_directory(tmp_path: Path, notes_dir: Path) -> None:
    (notes_dir / "00002_a.sql").symlink_to("00003_b.sql")
    (notes_dir / "00003_b.sql").symlink_to("00002_a.sql")
    db = tmp_path / "x.db"
    for command in ("up", "status"):
        result = cli("migrate", command, "--db", str(db), "--migrations-dir", str(notes_dir))
        line = one_line_error(result)
        assert str(notes_dir / "00002_a.sql") in line, line
        assert "symbolic links" in line
    assert not db.exists()
    result = cli("migrate", "validate", "--migrations-dir", str(notes_dir))
    assert result.exit_code == 1
    assert f"{notes_dir / '00002_a.sql'}: error: cannot read" in result.stdout, result.output


@pytest.mark.parametrize("command", [["migrate", "up"], ["setup"]])
def test_database_under_a_file_not_a_directory(tmp_path: Path, command: list[str]) -> None:
    """`--db /etc/passwd/x.db` said `File exists: /etc/passwd`."""
    blocker = tmp_path / "passwd"
    blocker.write_text("root:x:0:0\n")
    db = blocker / "sub" / "x.db"
    result = cli(*command, "--db", str(db))
    line = one_line_error(result)
    assert f"{blocker} is not a directory" in line, line
    assert str(db) in line
    assert blocker.read_text() == "root:x:0:0\n"


@pytest.fixture
def unwritable_lock_file(migrated_db: Path) -> Iterator[Path]:
    """The database's lock file, not writable by us although the database is. As root
    (file modes do not apply) it is made immutable with chattr."""
    lock = Path(f"{migrated_db}.migrate-lock")
    assert lock.exists()
    if os.geteuid() != 0:
        lock.chmod(0o444)
        yield lock
        lock.chmod(0o644)
        return
    made = subprocess.run(["chattr", "+i", str(lock)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"running as root and cannot chattr +i here: {made.stderr.strip()}")
    try:
        yield lock
    finally:
        subprocess.run(["chattr", "-i", str(lock)], capture_output=True)


def test_unwritable_lock_file_is_named(
    unwritable_lock_file: Path, migrated_db: Path, notes_dir: Path
) -> None:
    write_migration(
        notes_dir, "00002_more.sql", "CREATE TABLE more (id INTEGER);", "DROP TABLE more;"
    )
    assert os.access(migrated_db, os.W_OK)
    before = sqlite_dump(migrated_db)
    result = cli("migrate", "up", "--db", str(migrated_db), "--migrations-dir", str(notes_dir))
    line = one_line_error(result)
    assert str(unwritable_lock_file) in line, line
    assert f"SQLite database {migrated_db} is not writable" not in line  # it is writable
    assert sqlite_dump(migrated_db) == before


# ---------------------------------------------------------------- SIGTERM during validate --apply


def _validate_process(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    full_env.update(env)
    return subprocess.Popen(
        [sys.executable, "-m", "llm_proxy", "migrate", "validate", "--apply", *args],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition, process: subprocess.Popen[str], what: str) -> None:  # type: ignore[no-untyped-def]
    """Poll until `condition()` holds; fail (with the process's output) if it exits first."""
    deadline = time.monotonic() + 120
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"validate ended before {what}: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"never saw {what}")
        time.sleep(0.05)


def _stopped_by_sigterm(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    assert "SIGTERM" in lines[0]
    return lines[0]


def test_sigterm_during_validate_apply_removes_the_sqlite_scratch(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    # Many short statements: Python runs the signal handler between two of them.
    busy = "\n".join(
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 20000) "
        "INSERT INTO t SELECT x FROM c;"
        for _ in range(6000)
    )
    write_migration(
        migrations, "00001_busy.sql", f"CREATE TABLE t (x INTEGER);\n{busy}", "DROP TABLE t;"
    )
    scratch_parent = tmp_path / "tmp"
    scratch_parent.mkdir()
    process = _validate_process(
        ["--migrations-dir", str(migrations)], {"TMPDIR": str(scratch_parent)}
    )
    _wait_for(
        lambda: any(scratch_parent.glob("llmproxy_validate_*/scratch.db")),
        process,
        "the scratch database",
    )
    _stopped_by_sigterm(process)
    assert list(scratch_parent.iterdir()) == []


def test_sigterm_during_validate_apply_drops_the_postgres_scratch(
    postgres_url: str, tmp_path: Path
) -> None:
    import psycopg

    marker = f"llmproxy_sigterm_{uuid.uuid4().hex[:8]}"
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    write_migration(migrations, "00001_slow.sql", f"SELECT pg_sleep(120) AS {marker};", "SELECT 1;")
    process = _validate_process(
        ["--database-url", postgres_url, "--migrations-dir", str(migrations)], {}
    )
    admin = psycopg.connect(postgres_url, autocommit=True)
    scratch: list[str] = []
    try:

        def sleeping() -> bool:
            rows = admin.execute(
                "SELECT datname FROM pg_stat_activity "
                "WHERE query LIKE %s AND pid <> pg_backend_pid()",
                (f"%{marker}%",),
            ).fetchall()
            scratch[:] = [row[0] for row in rows]
            return bool(scratch)

        _wait_for(sleeping, process, "the migration running on the scratch database")
        assert scratch[0].startswith("llmproxy_validate_")
        _stopped_by_sigterm(process)
        left = admin.execute(
            "SELECT datname FROM pg_database WHERE datname = %s", (scratch[0],)
        ).fetchall()
        assert left == []
    finally:
        if process.poll() is None:
            process.kill()
        for name in scratch:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
