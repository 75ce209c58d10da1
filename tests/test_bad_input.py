"""Bad input, table-driven: every case gives one line, a non-zero exit, an unchanged database.

Each case starts from a SQLite database with two small migrations applied (copied from a
template built once), adds files or changes the database as the case says, runs the real CLI
(in process; a handful also as real processes) and checks:

- stderr is exactly one line starting with "Error: " (no traceback), stdout has no JSON or
  half-written report, the exit code is non-zero;
- the message names the file, line, version or setting at fault where there is one;
- the database is unchanged: a full dump before and after are equal (raw bytes for a file
  that is not a SQLite database), and no stray database appeared in the working directory;
- no password from a URL appears anywhere in the output.

A case that exposes a defect in the core is marked `bug` (the whole case is a strict xfail)
or `message_bug` (one line, exit code and unchanged database are enforced; only the wording
is a strict xfail). Valid inputs that look like bad ones (legacy goose rollback rows, a
0-byte database file, a directory named like a migration, a database newer than the code
for `up`) have their own tests at the end, with the behaviour goose has.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    MYSQL_HOST,
    MYSQL_PORT,
    cli,
    goose_apply,
    run_cli,
    settings_for,
    sqlite_dump,
    sqlite_rows,
)

from llm_proxy import migrate

PASSWORD = "hunter2-secret"

BASE_FILES = {
    "00001_create_notes.sql": (
        "-- +goose Up\n"
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\n"
        "INSERT INTO notes (id, body) VALUES (1, 'kept across every failure');\n"
        "\n"
        "-- +goose Down\n"
        "DROP TABLE notes;\n"
    ),
    "00002_add_tags.sql": (
        "-- +goose Up\n"
        "CREATE TABLE tags (id INTEGER PRIMARY KEY, note_id INTEGER NOT NULL, name TEXT);\n"
        "INSERT INTO tags (id, note_id, name) VALUES (1, 1, 'first');\n"
        "\n"
        "-- +goose Down\n"
        "DROP TABLE tags;\n"
    ),
}


def up_file(body: str, down: str = "SELECT 1;") -> str:
    return f"-- +goose Up\n{body}\n\n-- +goose Down\n{down}\n"


# ---------------------------------------------------------------- the workspace


@dataclass(frozen=True)
class Workspace:
    root: Path  # the working directory of the command
    db: Path  # the SQLite database the case is about
    dir: Path  # its migrations directory

    def settings(self) -> Any:
        return settings_for(db=str(self.db), migrations_dir=str(self.dir))

    def sql(self, *statements: str) -> None:
        connection = sqlite3.connect(self.db, isolation_level=None)
        try:
            for statement in statements:
                connection.execute(statement)
        finally:
            connection.close()

    def fill(self, text: str) -> str:
        """`text` with {db}, {dir} and {tmp} replaced (other braces are left alone)."""
        for key, value in (("{db}", self.db), ("{dir}", self.dir), ("{tmp}", self.root)):
            text = text.replace(key, str(value))
        return text


def write_base(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in BASE_FILES.items():
        (directory / name).write_text(text, encoding="utf-8")


@pytest.fixture(scope="session")
def applied_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with BASE_FILES applied by the real code (both version tables, checksums)."""
    root = tmp_path_factory.mktemp("bad-input-template")
    write_base(root / "migrations")
    db = root / "template.db"
    migrate.up(settings_for(db=str(db), migrations_dir=str(root / "migrations")))
    assert sqlite_rows(db, "SELECT version_id FROM goose_db_version ORDER BY id") == [
        (0,),
        (1,),
        (2,),
    ]
    return db


@pytest.fixture
def workspace(tmp_path: Path, applied_template: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    ws = Workspace(root=tmp_path, db=tmp_path / "db" / "app.db", dir=tmp_path / "migrations")
    write_base(ws.dir)
    ws.db.parent.mkdir()
    shutil.copy(applied_template, ws.db)
    monkeypatch.chdir(tmp_path)  # a default-path database would land here, and be noticed
    monkeypatch.delenv("LLM_PROXY_TEST_UNSET", raising=False)
    return ws


def snapshot(path: Path) -> str:
    """A full dump of a SQLite database; raw bytes for anything else at that path."""
    if path.is_dir():
        return "<directory> " + " ".join(sorted(p.name for p in path.iterdir()))
    if not path.exists():
        return "<no file>"
    try:
        return sqlite_dump(path)
    except sqlite3.DatabaseError:
        return "<raw> " + hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------- database states


def no_database(ws: Workspace) -> None:
    ws.db.unlink()


def at_version_zero(ws: Workspace) -> None:
    migrate.reset(ws.settings())
    assert sqlite_rows(ws.db, "SELECT version_id FROM goose_db_version") == [(0,)]


def newer_than_code(ws: Workspace) -> None:
    """goose (newer code) applied version 9; this code's files end at 00002."""
    ws.sql("INSERT INTO goose_db_version (version_id, is_applied) VALUES (9, 1)")


def corrupt_version_table(ws: Workspace) -> None:
    """A goose_db_version that is not goose's: same name, other columns."""
    ws.sql(
        "DROP TABLE goose_db_version",
        "CREATE TABLE goose_db_version (version TEXT, applied TEXT)",
        "INSERT INTO goose_db_version VALUES ('2', 'yes')",
    )


def unknown_alembic_head(ws: Workspace) -> None:
    ws.sql("UPDATE alembic_version SET version_num = 'f00dcafe'")


def not_sqlite(ws: Workspace) -> None:
    ws.db.write_bytes(b"this is a text file, not a SQLite database\n" * 64)


def edited_applied_file(ws: Workspace) -> None:
    path = ws.dir / "00001_create_notes.sql"
    path.write_text(path.read_text(encoding="utf-8") + "-- edited after it ran\n", "utf-8")


def broken_down_section(ws: Workspace) -> None:
    """00002 is applied; its Down was broken afterwards (line 6: no final ';')."""
    (ws.dir / "00002_add_tags.sql").write_text(
        BASE_FILES["00002_add_tags.sql"].replace("DROP TABLE tags;", "DROP TABLE tags"), "utf-8"
    )


def goose_applied_00004(ws: Workspace) -> None:
    """goose (with allow-missing habits elsewhere) applied 00004; 00003 comes later."""
    path = ws.dir / "00004_more.sql"
    path.write_text(up_file("CREATE TABLE more (id INTEGER);", "DROP TABLE more;"), "utf-8")
    goose_apply(ws.db, path, "up")


def legacy_rollback_of_00001(ws: Workspace) -> None:
    """Old goose recorded a rollback as a row with is_applied = false: 00001's newest row
    says not applied while 00002 is, so 00001 is missing below the current version."""
    ws.sql("INSERT INTO goose_db_version (version_id, is_applied) VALUES (1, 0)")


# ---------------------------------------------------------------- the table


ON = ("--db", "{db}", "--migrations-dir", "{dir}")


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]  # after "migrate"; {db}, {dir}, {tmp} are filled in
    expect: tuple[str, ...] = ()  # substrings of the error line (placeholders allowed)
    files: Mapping[str, str | bytes] = field(default_factory=dict)  # added to the directory
    state: Callable[[Workspace], None] | None = None  # run before the files are added
    env: Mapping[str, str] = field(default_factory=dict)
    bug: str | None = None  # the whole case fails today (strict xfail)
    message_bug: str | None = None  # only the wording fails today (strict xfail)


UNSET = "LLM_PROXY_TEST_UNSET"
HALF_FAILING = up_file(
    "CREATE TABLE half_a (id INTEGER);\n"
    "INSERT INTO no_such_table VALUES (1);\n"
    "CREATE TABLE half_b (id INTEGER);"
)

FILE_CASES = [
    Case(
        "empty_file",
        ("up", *ON),
        ("{dir}/00003_empty.sql", "no '-- +goose Up'"),
        files={"00003_empty.sql": ""},
    ),
    Case(
        "only_down",
        ("up", *ON),
        ("00003_only_down.sql:1:", "'-- +goose Down' before '-- +goose Up'"),
        files={"00003_only_down.sql": "-- +goose Down\nDROP TABLE notes;\n"},
    ),
    Case(
        "down_before_up",
        ("up", *ON),
        ("00003_swapped.sql:2:", "Down' before"),
        files={"00003_swapped.sql": "\n-- +goose Down\nSELECT 1;\n-- +goose Up\nSELECT 2;\n"},
    ),
    Case(
        "duplicate_up",
        ("up", *ON),
        ("00003_twice.sql:3:", "duplicate '-- +goose Up' (the first is on line 1)"),
        files={"00003_twice.sql": "-- +goose Up\nSELECT 1;\n-- +goose Up\nSELECT 2;\n"},
    ),
    Case(
        "duplicate_version",
        ("up", *ON),
        ("duplicate migration version 2", "00002_add_tags.sql", "00002_again.sql"),
        files={"00002_again.sql": up_file("SELECT 1;")},
    ),
    Case(
        "version_zero",
        ("up", *ON),
        ("00000_zero.sql", "greater than 0"),
        files={"00000_zero.sql": up_file("SELECT 1;")},
    ),
    Case(
        "non_numeric_prefix",
        ("up", *ON),
        ("v3_add_users.sql", "'v3' is not a positive integer"),
        files={"v3_add_users.sql": up_file("SELECT 1;")},
    ),
    Case(
        "negative_version",
        ("up", *ON),
        ("-3_back.sql", "not a positive integer"),
        files={"-3_back.sql": up_file("SELECT 1;")},
    ),
    Case(
        "version_beyond_int64",
        ("up", *ON),
        ("99999999999999999999_big.sql", "64-bit"),
        files={"99999999999999999999_big.sql": up_file("SELECT 1;")},
    ),
    Case(
        "name_without_underscore",
        ("up", *ON),
        ("00003.sql", "no '_' after the version"),
        files={"00003.sql": up_file("SELECT 1;")},
    ),
    Case(
        "unterminated_statement_begin",
        ("up", *ON),
        ("00003_fn.sql:2:", "StatementBegin' without a matching StatementEnd"),
        files={"00003_fn.sql": "-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\nSELECT 2;\n"},
    ),
    Case(
        "statement_end_without_begin",
        ("up", *ON),
        ("00003_end.sql:3:", "StatementEnd' without a matching StatementBegin"),
        files={"00003_end.sql": "-- +goose Up\nSELECT 1;\n-- +goose StatementEnd\n"},
    ),
    Case(
        "statement_begin_inside_block",
        ("up", *ON),
        ("00003_nest.sql:3:", "inside the block opened on line 2"),
        files={
            "00003_nest.sql": "-- +goose Up\n-- +goose StatementBegin\n-- +goose StatementBegin\n"
        },
    ),
    Case(
        "unknown_annotation",
        ("up", *ON),
        ("00003_odd.sql:3:", "unknown annotation '-- +goose Sideways'"),
        files={"00003_odd.sql": "-- +goose Up\nSELECT 1;\n-- +goose Sideways\n"},
    ),
    Case(
        "annotation_with_leading_whitespace",
        ("up", *ON),
        ("00003_indent.sql:3:", "column 1"),
        files={"00003_indent.sql": "-- +goose Up\nSELECT 1;\n  -- +goose Down\nSELECT 2;\n"},
    ),
    Case(
        "plus_goose_twice",
        ("up", *ON),
        ("00003_dup.sql:1:", "more than once"),
        files={"00003_dup.sql": "-- +goose Up +goose\nSELECT 1;\n"},
    ),
    Case(
        "empty_annotation",
        ("up", *ON),
        ("00003_bare.sql:2:", "empty annotation"),
        files={"00003_bare.sql": "-- +goose Up\n-- +goose\nSELECT 1;\n"},
    ),
    Case(
        "sql_before_up",
        ("up", *ON),
        ("00003_early.sql:1:", "SQL before '-- +goose Up'"),
        files={"00003_early.sql": "CREATE TABLE early (id INTEGER);\n-- +goose Up\nSELECT 1;\n"},
    ),
    Case(
        "unfinished_statement_at_eof",
        ("up", *ON),
        ("00003_open.sql:2:", "unfinished statement"),
        files={"00003_open.sql": "-- +goose Up\nCREATE TABLE open_ended (id INTEGER)\n"},
    ),
    Case(
        "unfinished_statement_before_down",
        ("up", *ON),
        ("00003_open.sql:3:", "unfinished statement", "Down"),
        files={"00003_open.sql": "-- +goose Up\nSELECT 1;\nSELECT 2\n-- +goose Down\n"},
    ),
    Case(
        "envsub_required_variable_unset",
        ("up", *ON),
        ("00003_env.sql:3:", "ENVSUB", UNSET, "set the tenant first"),
        files={
            "00003_env.sql": (
                "-- +goose Up\n-- +goose ENVSUB ON\n"
                f"INSERT INTO notes (id, body) VALUES (2, '${{{UNSET}?set the tenant first}}');\n"
            )
        },
    ),
    Case(
        "envsub_unclosed_brace",
        ("up", *ON),
        ("00003_env.sql:3:", "ENVSUB", "'${TENANT'"),
        files={
            "00003_env.sql": "-- +goose Up\n-- +goose ENVSUB ON\nSELECT '${TENANT';\n",
        },
    ),
    Case(
        "invalid_utf8",
        ("up", *ON),
        ("{dir}/00003_latin1.sql", "not valid UTF-8"),
        files={"00003_latin1.sql": b"-- +goose Up\nINSERT INTO notes VALUES (2, 'caf\xe9');\n"},
    ),
    Case(
        "after_marker_names_unknown_revision",
        ("up", *ON),
        ("00003_after.sql", "00042", "names no known revision"),
        files={"00003_after.sql": "-- llm-proxy: after 00042\n" + up_file("SELECT 1;")},
    ),
    Case(
        "after_marker_malformed",
        ("up", *ON),
        ("00003_after.sql:1:", "expected '-- llm-proxy: after REVISION"),
        files={"00003_after.sql": "-- llm-proxy: before 00002\n" + up_file("SELECT 1;")},
    ),
    Case(
        "failing_statement_in_the_middle",
        ("up", *ON),
        ("00003_half.sql", "statement 2 failed", "no_such_table"),
        files={"00003_half.sql": HALF_FAILING},
    ),
    Case(
        "malformed_down_section_on_down",
        ("down", *ON),
        ("00002_add_tags.sql:6:", "unfinished statement"),
        state=broken_down_section,
    ),
    Case(
        "file_edited_after_it_was_applied",
        ("up", *ON),
        ("00001_create_notes.sql changed after it was applied", "migrate repair"),
        state=edited_applied_file,
        files={"00003_next.sql": up_file("CREATE TABLE next_one (id INTEGER);")},
    ),
    Case(
        "missing_migration_below_current",
        ("up", *ON),
        ("found 1 missing migrations before current version 4", "00003_late.sql"),
        state=goose_applied_00004,
        files={"00003_late.sql": up_file("CREATE TABLE late (id INTEGER);")},
    ),
]

PATH_CASES = [
    Case(
        "missing_migrations_directory",
        ("up", "--db", "{db}", "--migrations-dir", "{tmp}/no-such-dir"),
        ("migrations directory not found", "{tmp}/no-such-dir"),
    ),
    Case(
        "migrations_path_is_a_file",
        ("up", "--db", "{db}", "--migrations-dir", "{dir}/00001_create_notes.sql"),
        ("{dir}/00001_create_notes.sql",),
    ),
    Case(
        "migrations_dir_flag_empty",
        ("up", "--db", "{db}", "--migrations-dir", ""),
        ("--migrations-dir",),
    ),
    Case(
        "db_flag_empty",
        ("up", "--db", "", "--migrations-dir", "{dir}"),
        ("--db",),
    ),
    Case(
        "database_path_is_a_directory",
        ("up", "--db", "{dir}", "--migrations-dir", "{dir}"),
        ("cannot open SQLite database {dir}",),
    ),
]

DATABASE_CASES = [
    Case(
        "not_a_sqlite_file",
        ("up", *ON),
        ("cannot open SQLite database {db}", "not a database"),
        state=not_sqlite,
    ),
    Case(
        "not_a_sqlite_file_status",
        ("status", *ON),
        ("cannot open SQLite database {db}",),
        state=not_sqlite,
    ),
    Case(
        "newer_than_code_down",
        ("down", *ON),
        ("version 9",),
        state=newer_than_code,
    ),
    Case(
        "newer_than_code_down_to",
        ("down-to", "1", *ON),
        ("version 9",),
        state=newer_than_code,
    ),
    Case(
        "newer_than_code_redo",
        ("redo", *ON),
        ("version 9",),
        state=newer_than_code,
    ),
    Case(
        "corrupted_version_table_up",
        ("up", *ON),
        ("goose_db_version",),
        state=corrupt_version_table,
    ),
    Case(
        "corrupted_version_table_status_json",
        ("status", "--json", *ON),
        ("goose_db_version",),
        state=corrupt_version_table,
    ),
    Case(
        "corrupted_version_table_version",
        ("version", *ON),
        ("goose_db_version",),
        state=corrupt_version_table,
    ),
    Case(
        "legacy_rollback_row_makes_a_missing_migration",
        ("up", *ON),
        ("found 1 missing migrations before current version 2", "00001_create_notes.sql"),
        state=legacy_rollback_of_00001,
        files={"00003_next.sql": up_file("CREATE TABLE next_one (id INTEGER);")},
    ),
    Case(
        "alembic_version_names_unknown_revision_up",
        ("up", *ON),
        ("f00dcafe", "no migration file defines"),
        state=unknown_alembic_head,
    ),
    Case(
        "alembic_version_names_unknown_revision_down",
        ("down", *ON),
        ("f00dcafe",),
        state=unknown_alembic_head,
    ),
    Case(
        "down_at_version_zero",
        ("down", *ON),
        ("version 0",),
        state=at_version_zero,
    ),
    Case(
        "down_on_a_missing_database",
        ("down", *ON),
        ("version 0",),
        state=no_database,
    ),
    Case(
        "redo_at_version_zero",
        ("redo", *ON),
        ("version 0",),
        state=at_version_zero,
    ),
    Case(
        "repair_on_a_missing_database",
        ("repair", *ON),
        ("{db}", "does not exist"),
        state=no_database,
    ),
]

TARGET_CASES = [
    # A number needs no file of its own (goose reads it as "every file up to it"),
    # but up-to needs at least one file at or below it.
    Case("up_to_zero", ("up-to", "0", *ON), ("no migration files found at or below version 0",)),
    Case("down_to_garbage", ("down-to", "two", *ON), ("'two'",)),
    Case("up_to_superscript_digit", ("up-to", "²", *ON), ("no migration with version '²'",)),
    Case("up_to_garbage", ("up-to", "3rd", *ON), ("'3rd'",)),
    Case(
        "up_sql_from_unknown_version",
        ("up", "--sql", "--from", "nonexistent", *ON),
        ("'nonexistent'",),
    ),
    Case(
        "down_sql_from_unknown_version",
        ("down", "--sql", "--from", "77", *ON),
        ("'77'",),
    ),
]

FLAG_CASES = [
    Case("lock_timeout_negative", ("up", *ON, "--lock-timeout", "-5"), ("cannot be negative",)),
    Case("lock_timeout_not_a_number", ("up", *ON, "--lock-timeout", "soon"), ("'soon'",)),
    Case(
        "lock_timeout_nan",
        ("up", *ON, "--lock-timeout", "nan"),
        ("'nan'",),
        files={"00003_next.sql": up_file("CREATE TABLE next_one (id INTEGER);")},
    ),
    Case("schema_on_sqlite", ("up", *ON, "--schema", "tenant"), ("--schema", "PostgreSQL only")),
    Case(
        "db_and_database_url_together",
        ("up", *ON, "--database-url", f"postgres://u:{PASSWORD}@127.0.0.1:1/x"),
        ("--db and --database-url",),
    ),
    Case(
        "db_driver_unknown",
        ("up", *ON),
        ("DB_DRIVER", "'oracle'"),
        env={"DB_DRIVER": "oracle"},
    ),
    Case(
        "db_driver_contradicts_url",
        (
            "up",
            "--database-url",
            f"postgres://u:{PASSWORD}@127.0.0.1:1/x",
            "--migrations-dir",
            "{dir}",
        ),
        ("DB_DRIVER=mysql does not match", "127.0.0.1:1/x"),
        env={"DB_DRIVER": "mysql"},
    ),
    Case(
        "db_driver_sqlite_contradicts_url",
        (
            "up",
            "--database-url",
            f"postgres://u:{PASSWORD}@127.0.0.1:1/x",
            "--migrations-dir",
            "{dir}",
        ),
        ("DB_DRIVER=sqlite", "does not match"),
        env={"DB_DRIVER": "sqlite"},
    ),
    Case(
        "db_driver_postgres_without_url",
        ("up", "--migrations-dir", "{dir}"),
        ("DB_DRIVER=postgres needs DATABASE_URL",),
        env={"DB_DRIVER": "postgres"},
    ),
    Case(
        "url_unsupported_scheme",
        ("up", "--database-url", f"oracle://scott:{PASSWORD}@db/orcl"),
        ("unsupported database URL scheme 'oracle'",),
    ),
    Case("url_without_scheme", ("up", "--database-url", "db.example.com"), ("no scheme",)),
    Case(
        "url_unsupported_driver",
        ("up", "--database-url", f"postgresql+asyncpg://u:{PASSWORD}@127.0.0.1:1/x"),
        ("'asyncpg'", "psycopg"),
    ),
    Case(
        "url_port_not_a_number",
        ("up", "--database-url", f"postgres://u:{PASSWORD}@127.0.0.1:fivefour/x"),
        ("port",),
    ),
    Case(
        "url_broken_ipv6_host",
        ("up", "--database-url", f"postgres://u:{PASSWORD}@[::1/x"),
        ("database URL",),
    ),
    Case(
        "mysql_url_without_database",
        ("up", "--database-url", f"mysql://root:{PASSWORD}@127.0.0.1:1"),
        ("names no database",),
    ),
    Case(
        "url_search_path_with_two_schemas",
        ("up", "--database-url", f"postgres://u:{PASSWORD}@127.0.0.1:1/x?search_path=a,b"),
        ("search_path", "one schema"),
    ),
    Case(
        "auto_migrate_not_a_boolean",
        ("up", *ON),
        ("LLM_PROXY_AUTO_MIGRATE", "'maybe'"),
        env={"LLM_PROXY_AUTO_MIGRATE": "maybe"},
    ),
    Case(
        "alembic_ini_missing",
        ("up", *ON),
        ("LLM_PROXY_ALEMBIC_INI", "{tmp}/nowhere.ini"),
        env={"LLM_PROXY_ALEMBIC_INI": "{tmp}/nowhere.ini"},
    ),
    Case(
        "usage_missing_version_argument",
        ("up-to", *ON),
        ("VERSION",),
    ),
    Case(
        "usage_unknown_option",
        ("up", *ON, "--lock-timeuot", "5"),
        ("--lock-timeuot",),
    ),
]

CASES = FILE_CASES + PATH_CASES + DATABASE_CASES + TARGET_CASES + FLAG_CASES


def _param(case: Case) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else []
    return pytest.param(case, id=case.id, marks=marks)


def prepare(case: Case, ws: Workspace) -> tuple[list[str], dict[str, str], str]:
    """Apply the case's state and files; (argv, env, snapshot before)."""
    if case.state is not None:
        case.state(ws)
    for name, content in case.files.items():
        path = ws.dir / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    env = {k: ws.fill(v) for k, v in case.env.items()}
    return ["migrate", *map(ws.fill, case.args)], env, snapshot(ws.db)


def outcome(result: Any) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a click Result or a CompletedProcess."""
    code = result.exit_code if hasattr(result, "exit_code") else result.returncode
    return code, result.stdout, result.stderr


def check(
    case: Case,
    ws: Workspace,
    result: tuple[int, str, str],
    before: str,
    after: Callable[[], str],
) -> None:
    """The one-line contract; `after` dumps the database again to compare with `before`."""
    exit_code, stdout, stderr = result
    lines = stderr.splitlines()
    assert exit_code != 0, f"exit code 0; stdout={stdout!r}"
    assert "Traceback" not in stderr
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    line = lines[0]
    assert line.startswith("Error: "), line
    assert not stdout.strip(), f"nothing should be reported on stdout: {stdout!r}"
    assert PASSWORD not in stdout + stderr
    assert after() == before, "the database changed"
    assert not (ws.root / "data").exists(), "a default-path database was created"
    wanted = [ws.fill(s) for s in case.expect]
    absent = [s for s in wanted if s not in line]
    if case.message_bug:
        if not absent:
            pytest.fail(f"[XPASS(strict)] message fixed; drop message_bug: {line}")
        pytest.xfail(case.message_bug)
    assert not absent, f"{absent} not in {line!r}"


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input(case: Case, workspace: Workspace) -> None:
    argv, env, before = prepare(case, workspace)
    result = cli(*argv, env=env)
    check(case, workspace, outcome(result), before, lambda: snapshot(workspace.db))


# A handful through a real `python -m llm_proxy` process: the exit code and stderr the
# shell sees, with no traceback from anything the in-process runner might hide.
PROCESS_CASES = [
    "empty_file",
    "missing_migrations_directory",
    "not_a_sqlite_file",
    "failing_statement_in_the_middle",
    "corrupted_version_table_up",
    "db_driver_contradicts_url",
    "url_broken_ipv6_host",
]


@pytest.mark.parametrize("case", [_param(c) for c in CASES if c.id in PROCESS_CASES])
def test_bad_input_in_a_real_process(case: Case, workspace: Workspace) -> None:
    argv, env, before = prepare(case, workspace)
    result = run_cli(*argv, cwd=workspace.root, env=env)
    assert result.returncode == 1
    check(case, workspace, outcome(result), before, lambda: snapshot(workspace.db))


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 40
    assert len({case.id for case in CASES}) == len(CASES)


# ---------------------------------------------------------------- read-only database


@pytest.fixture
def read_only_workspace(workspace: Workspace) -> Iterator[tuple[Workspace, Path]]:
    """(workspace, the same database seen through a read-only bind mount). Root ignores file
    modes, so as root a read-only mount is the honest way; otherwise chmod does it."""
    view = workspace.root / "ro"
    view.mkdir()
    if os.geteuid() != 0:
        workspace.db.chmod(0o444)
        workspace.db.parent.chmod(0o555)
        try:
            yield workspace, workspace.db
        finally:
            workspace.db.parent.chmod(0o755)
        return
    mounted = subprocess.run(
        ["mount", "--bind", str(workspace.db.parent), str(view)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {mounted.stderr.decode().strip()}")
    try:
        remount = subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], capture_output=True)
        if remount.returncode != 0:
            pytest.skip(f"cannot remount read-only: {remount.stderr.decode().strip()}")
        yield workspace, view / workspace.db.name
    finally:
        subprocess.run(["umount", str(view)], capture_output=True)


@pytest.mark.parametrize("command", ["up", "down", "redo", "repair"])
def test_read_only_database(read_only_workspace: tuple[Workspace, Path], command: str) -> None:
    ws, read_only = read_only_workspace
    if command == "repair":
        edited_applied_file(ws)  # something to re-record
    (ws.dir / "00003_next.sql").write_text(up_file("CREATE TABLE next_one (id INTEGER);"))
    before = snapshot(ws.db)
    result = cli("migrate", command, "--db", str(read_only), "--migrations-dir", str(ws.dir))
    case = Case(f"read_only_{command}", (), (f"SQLite database {read_only}", "not writable"))
    check(case, ws, outcome(result), before, lambda: snapshot(ws.db))


# ---------------------------------------------------------------- PostgreSQL and MySQL


def pg_dump(url: str) -> str:
    """Enough of pg_dump to prove nothing changed: every schema, column, constraint, index
    and row outside the system schemas, in a stable order."""
    import psycopg

    system = "('pg_catalog', 'information_schema', 'pg_toast')"
    catalog = (
        "SELECT schema_name FROM information_schema.schemata "
        f"WHERE schema_name NOT IN {system} AND schema_name NOT LIKE 'pg_%' ORDER BY 1",
        "SELECT table_schema, table_name, column_name, data_type, is_nullable, "
        "column_default, is_identity FROM information_schema.columns "
        f"WHERE table_schema NOT IN {system} ORDER BY 1, 2, ordinal_position",
        "SELECT n.nspname, c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) "
        "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
        f"WHERE n.nspname NOT IN {system} ORDER BY 1, 2, 3",
        f"SELECT schemaname, indexname, indexdef FROM pg_indexes "
        f"WHERE schemaname NOT IN {system} ORDER BY 1, 2",
    )
    out: list[str] = []
    with psycopg.connect(url, autocommit=True) as connection:
        for sql in catalog:
            out.extend(repr(row) for row in connection.execute(sql).fetchall())
        tables = connection.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            f"WHERE table_schema NOT IN {system} AND table_type = 'BASE TABLE' ORDER BY 1, 2"
        ).fetchall()
        for schema, table in tables:
            rows = connection.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall()
            out.append(f"{schema}.{table}: {sorted(map(repr, rows))!r}")
    return "\n".join(out)


def pg_sql(url: str, *statements: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement)


def with_password(url: str) -> str:
    """The URL with a password added (this server trusts 127.0.0.1, so it still connects):
    errors after connecting must not show it either."""
    return url.replace("postgres@", f"postgres:{PASSWORD}@", 1)


@pytest.fixture
def pg_workspace(workspace: Workspace, postgres_url: str) -> tuple[Workspace, str]:
    """BASE_FILES applied to a fresh PostgreSQL database."""
    on = ("--database-url", postgres_url, "--migrations-dir", str(workspace.dir))
    result = cli("migrate", "up", *on)
    assert result.exit_code == 0, result.output
    return workspace, postgres_url


PG_CASES = [
    Case(
        "pg_failing_statement_in_the_middle",
        ("up",),
        ("00003_half.sql", "statement 2 failed", "no_such_table"),
        files={"00003_half.sql": HALF_FAILING},
    ),
    Case(
        "pg_corrupted_version_table",
        ("up",),
        ("goose_db_version",),
    ),
    Case("pg_up_to_zero", ("up-to", "0"), ("no migration files found at or below version 0",)),
    Case(
        "pg_newer_than_code_down",
        ("down",),
        ("version 9",),
    ),
]
PG_STATE = {
    "pg_corrupted_version_table": (
        "DROP TABLE goose_db_version",
        "CREATE TABLE goose_db_version (version text, applied text)",
        "INSERT INTO goose_db_version VALUES ('2', 'yes')",
    ),
    "pg_newer_than_code_down": (
        "INSERT INTO goose_db_version (version_id, is_applied) VALUES (9, true)",
    ),
}


@pytest.mark.parametrize("case", [_param(c) for c in PG_CASES])
def test_bad_input_on_postgres(case: Case, pg_workspace: tuple[Workspace, str]) -> None:
    ws, url = pg_workspace
    pg_sql(url, *PG_STATE.get(case.id, ()))
    prepare(case, ws)
    before = pg_dump(url)
    on = ("--database-url", with_password(url), "--migrations-dir", str(ws.dir))
    result = cli("migrate", *case.args, *on)
    check(case, ws, outcome(result), before, lambda: pg_dump(url))


def test_unreachable_postgres_names_host_and_port_not_password(workspace: Workspace) -> None:
    url = f"postgres://llm:{PASSWORD}@127.0.0.1:1/llm_proxy"
    result = run_cli("migrate", "up", "--database-url", url, cwd=workspace.root)
    assert result.returncode == 1
    case = Case("pg_unreachable", (), ("cannot connect to PostgreSQL at 127.0.0.1:1/llm_proxy",))
    before = snapshot(workspace.db)
    check(case, workspace, outcome(result), before, lambda: snapshot(workspace.db))


def test_wrong_postgres_credentials_never_print_the_password(
    workspace: Workspace, postgres_url: str
) -> None:
    # The test server trusts 127.0.0.1, so a wrong password alone would connect; a role that
    # does not exist takes the same authentication-failure path.
    role = f"nobody_{uuid.uuid4().hex[:8]}"
    url = postgres_url.replace("postgres@", f"{role}:{PASSWORD}@", 1)
    before = pg_dump(postgres_url)
    result = cli("migrate", "up", "--database-url", url, "--migrations-dir", str(workspace.dir))
    case = Case("pg_wrong_credentials", (), ("at 127.0.0.1:5432/", role))
    check(case, workspace, outcome(result), before, lambda: pg_dump(postgres_url))


def mysql_databases(pattern: str) -> list[str]:
    import pymysql

    admin = pymysql.connect(host=MYSQL_HOST, port=MYSQL_PORT, user="root", password="")
    try:
        with admin.cursor() as cursor:
            cursor.execute("SHOW DATABASES LIKE %s", (pattern,))
            return [row[0] for row in cursor.fetchall()]
    finally:
        admin.close()


def test_mysql_url_with_an_unknown_database(workspace: Workspace, mysql_url: str) -> None:
    name = f"no_such_db_{uuid.uuid4().hex[:8]}"
    url = mysql_url.rsplit("/", 1)[0] + f"/{name}"
    result = cli("migrate", "up", "--database-url", url, "--migrations-dir", str(workspace.dir))
    case = Case("mysql_unknown_database", (), ("cannot connect to MySQL at 127.0.0.1:", name))
    check(case, workspace, outcome(result), "[]", lambda: repr(mysql_databases(name)))


def test_mysql_wrong_password_is_not_printed(workspace: Workspace, mysql_url: str) -> None:
    url = mysql_url.replace("root@", f"root:{PASSWORD}@", 1)
    database = mysql_url.rsplit("/", 1)[1]
    before = repr(mysql_databases(database))
    result = cli("migrate", "up", "--database-url", url, "--migrations-dir", str(workspace.dir))
    case = Case("mysql_wrong_password", (), ("cannot connect to MySQL at 127.0.0.1:", "root"))
    check(case, workspace, outcome(result), before, lambda: repr(mysql_databases(database)))


# ---------------------------------------------------------------- valid inputs that look bad


def goose_only_database(ws: Workspace) -> Path:
    """A database migrated by goose alone, then rolled back the old-goose way (a second
    row for 00002 with is_applied = false, schema undone)."""
    db = ws.root / "goose.db"
    for name in BASE_FILES:
        goose_apply(db, ws.dir / name, "up")
    connection = sqlite3.connect(db, isolation_level=None)
    try:
        connection.execute("DROP TABLE tags")
        connection.execute("INSERT INTO goose_db_version (version_id, is_applied) VALUES (2, 0)")
    finally:
        connection.close()
    return db


def test_legacy_is_applied_false_row_means_not_applied(workspace: Workspace) -> None:
    db = goose_only_database(workspace)
    on = ("--db", str(db), "--migrations-dir", str(workspace.dir))
    assert cli("migrate", "version", *on).stdout == "Current migration version: 1\n"
    status = cli("migrate", "status", *on).stdout.splitlines()
    assert status[-2].split() == ["Pending", "--", "00002_add_tags.sql"]
    # goose's `up` would not re-apply 2 (it counts any row): status says so.
    assert status[-1].startswith("warning: version 2 was rolled back by an older goose")

    result = cli("migrate", "up", *on)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("OK   00002_add_tags.sql (")
    # goose appends a new row and keeps the history; the newest row decides.
    assert sqlite_rows(db, "SELECT version_id, is_applied FROM goose_db_version ORDER BY id") == [
        (0, 1),
        (1, 1),
        (2, 1),
        (2, 0),
        (2, 1),
    ]
    assert sqlite_rows(db, "SELECT name FROM tags") == [("first",)]
    assert cli("migrate", "version", *on).stdout == "Current migration version: 2\n"


def test_zero_byte_database_file_is_an_empty_database(workspace: Workspace) -> None:
    # SQLite itself treats a 0-byte file as an empty database; so does goose's driver.
    workspace.db.write_bytes(b"")
    result = cli("migrate", "up", *map(workspace.fill, ON))
    assert result.exit_code == 0, result.output
    assert sqlite_rows(workspace.db, "SELECT version_id FROM goose_db_version ORDER BY id") == [
        (0,),
        (1,),
        (2,),
    ]


def test_directory_named_like_a_migration_is_ignored(workspace: Workspace) -> None:
    # goose lists only files; files.discover skips directories (and does not recurse).
    (workspace.dir / "00003_dir.sql").mkdir()
    (workspace.dir / "00003_dir.sql" / "00004_inside.sql").write_text(up_file("SELECT 1;"))
    before = snapshot(workspace.db)
    result = cli("migrate", "up", *map(workspace.fill, ON))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("goose: no migrations to run. current version: 2")
    assert snapshot(workspace.db) == before
    status = cli("migrate", "status", *map(workspace.fill, ON)).stdout
    assert "00003_dir.sql" not in status and "00004_inside.sql" not in status


def test_up_on_a_database_newer_than_the_code_changes_nothing(workspace: Workspace) -> None:
    # goose (and Flyway, whose default ignores "future" migrations) does not refuse here:
    # during a rolling deploy older instances start against a database newer code migrated.
    newer_than_code(workspace)
    before = snapshot(workspace.db)
    result = cli("migrate", "up", *map(workspace.fill, ON))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("goose: no migrations to run. current version: 9\n")
    assert snapshot(workspace.db) == before
