"""`llm-proxy migrate validate`: the lint rules, the CLI, and the scratch-database round trip."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import (
    PG_ADMIN_URL,
    SQL_DIR,
    cli,
    run_cli,
    write_migration,
)

from llm_proxy import config as llm_config
from llm_proxy.validate import roundtrip
from llm_proxy.validate.lint import SourceFile, lint, lint_file

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "validate"
GUIDE_DROP = FIXTURES / "guide_drop_if_not_exists"
GUIDE_BEGIN = FIXTURES / "guide_begin_commit"
FINDING = re.compile(
    r"^(?P<path>.+?)(?::(?P<line>\d+))?: (?P<severity>error|warning): "
    r"(?P<message>.+) \[(?P<rule>[a-z-]+)\]$"
)
SCRATCH_NAME = re.compile(r"/(llmproxy_validate_[0-9a-f]+)")


def rules(text: str | bytes) -> list[tuple[int | None, str, str]]:
    """(line, severity, rule) of every finding for one file's text."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    found, _ = lint_file("m.sql", data)
    return sorted(((f.line, f.severity, f.rule) for f in found), key=lambda t: (t[0] or 0, t[2]))


def rule_names(text: str | bytes) -> set[str]:
    return {rule for _, _, rule in rules(text)}


def run_validate(*args: str, env: dict[str, str] | None = None):
    result = cli("migrate", "validate", *args, env=env)
    lines = result.stdout.splitlines()
    return result, [FINDING.match(line) for line in lines[:-1]], lines[-1] if lines else ""


def migration(up: str, down: str | None = "SELECT 1;", extra: str = "") -> str:
    text = f"{extra}-- +goose Up\n{up}\n"
    return text if down is None else f"{text}\n-- +goose Down\n{down}\n"


# ---------------------------------------------------------------- the guide's two mistakes


def test_guide_drop_if_not_exists_fails_validation() -> None:
    result, found, summary = run_validate("--migrations-dir", str(GUIDE_DROP))
    assert result.exit_code == 1, result.output
    assert all(found), result.stdout
    [finding] = found
    assert finding["path"].endswith("guide_drop_if_not_exists/00001_initial_schema.sql")
    assert (finding["line"], finding["severity"], finding["rule"]) == (
        "12",
        "error",
        "invalid-if-exists",
    )
    assert "1 error, 0 warnings" in summary


def test_guide_drop_if_not_exists_apply_fails_at_the_down_naming_file_and_statement() -> None:
    result, found, summary = run_validate("--migrations-dir", str(GUIDE_DROP), "--apply")
    assert result.exit_code == 1, result.output
    applied = [f for f in found if f and f["rule"] == "apply"]
    assert len(applied) == 1, result.stdout
    failure = applied[0]
    assert failure["path"].endswith("00001_initial_schema.sql")
    assert failure["line"] == "12"  # the Down's DROP, not the Up
    assert "down-to 0" in failure["message"]
    assert "DROP TABLE IF NOT EXISTS projects" in failure["message"]
    assert "failed" in summary


def test_guide_begin_commit_fails_validation_at_both_statements() -> None:
    result, found, _ = run_validate("--migrations-dir", str(GUIDE_BEGIN))
    assert result.exit_code == 1, result.output
    errors = [(f["path"].rsplit("/", 1)[1], f["line"]) for f in found if f["severity"] == "error"]
    assert errors == [
        ("00002_add_project_metadata.sql", "6"),
        ("00002_add_project_metadata.sql", "13"),
    ]
    assert {f["rule"] for f in found if f["severity"] == "error"} == {"transaction-statement"}


def test_guide_begin_commit_apply_fails_at_the_begin() -> None:
    result, found, _ = run_validate("--migrations-dir", str(GUIDE_BEGIN), "--apply")
    assert result.exit_code == 1
    [failure] = [f for f in found if f["rule"] == "apply"]
    assert failure["path"].endswith("00002_add_project_metadata.sql")
    assert failure["line"] == "6"
    assert "statement: BEGIN;" in failure["message"]


def test_real_process_prints_findings_and_exits_1() -> None:
    completed = run_cli("migrate", "validate", "--migrations-dir", str(GUIDE_DROP))
    assert completed.returncode == 1
    assert "00001_initial_schema.sql:12: error: DROP TABLE IF NOT EXISTS" in completed.stdout
    assert completed.stderr == ""


# ---------------------------------------------------------------- shipped migrations


@pytest.mark.parametrize("subdir", ["", "postgres", "mysql"])
def test_shipped_migrations_are_clean_even_strict(subdir: str) -> None:
    directory = SQL_DIR / subdir if subdir else SQL_DIR
    result, found, summary = run_validate("--migrations-dir", str(directory), "--strict")
    assert result.exit_code == 0, result.stdout
    assert found == []
    assert summary.startswith("6 migration files in ")
    assert "0 errors, 0 warnings" in summary


def test_shipped_sqlite_round_trip_passes_without_touching_the_named_db(tmp_path: Path) -> None:
    user_db = tmp_path / "real.db"
    result, found, summary = run_validate(
        "--db", str(user_db), "--migrations-dir", str(SQL_DIR), "--apply", "--strict"
    )
    assert result.exit_code == 0, result.stdout
    assert found == []
    assert "up, down-to 0, up on a scratch SQLite database: passed" in summary
    assert not user_db.exists()  # the scratch database is never the user's


def _pg_databases(prefix: str) -> set[str]:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix + "%",)
        ).fetchall()
    return {row[0] for row in rows}


def _pg_tables(url: str) -> list[str]:
    import psycopg

    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return [row[0] for row in rows]


def test_shipped_postgres_round_trip_on_a_scratch_database(postgres_url: str) -> None:
    result, found, summary = run_validate(
        "--database-url", postgres_url, "--migrations-dir", str(SQL_DIR / "postgres"), "--apply"
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert found == []
    assert "passed" in summary
    scratch = SCRATCH_NAME.search(summary)
    assert scratch, summary
    assert scratch.group(1) not in _pg_databases("llmproxy_validate_")
    assert _pg_tables(postgres_url) == []  # the named database is only used to create the scratch


def test_postgres_scratch_database_is_dropped_when_the_round_trip_fails(postgres_url: str) -> None:
    result, found, summary = run_validate(
        "--database-url", postgres_url, "--migrations-dir", str(GUIDE_DROP), "--apply"
    )
    assert result.exit_code == 1
    [failure] = [f for f in found if f["rule"] == "apply"]
    assert failure["line"] == "12"
    assert "DROP TABLE IF NOT EXISTS projects" in failure["message"]
    scratch = SCRATCH_NAME.search(summary)
    assert scratch, summary
    assert scratch.group(1) not in _pg_databases("llmproxy_validate_")


def test_shipped_mysql_round_trip_on_a_scratch_database(mysql_url: str) -> None:
    import pymysql

    result, found, summary = run_validate(
        "--database-url", mysql_url, "--migrations-dir", str(SQL_DIR / "mysql"), "--apply"
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert found == []
    scratch = SCRATCH_NAME.search(summary)
    assert scratch, summary
    connection = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW DATABASES LIKE %s", (scratch.group(1),))
            assert cursor.fetchall() == ()
            cursor.execute(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = %s",
                (mysql_url.rsplit("/", 1)[1],),
            )
            assert cursor.fetchone()[0] == 0
    finally:
        connection.close()


# ---------------------------------------------------------------- each rule: fails / passes

FAILING = {
    "transaction-statement": migration("BEGIN;\nUPDATE t SET a = 1;\nCOMMIT;"),
    "invalid-if-exists": migration("SELECT 1;", "DROP TABLE IF NOT EXISTS projects;"),
    "not-idempotent": migration("CREATE TABLE t (id INT);", "DROP TABLE t;"),
    "missing-down": migration("CREATE TABLE IF NOT EXISTS t (id INT);", down=None),
    "empty-down": migration("CREATE TABLE IF NOT EXISTS t (id INT);", down=""),
    "down-not-reverse": migration(
        "CREATE TABLE IF NOT EXISTS t (id INT);", "DROP TABLE IF EXISTS other;"
    ),
    "bom": "\ufeff" + migration("SELECT 1;"),
    "parse": migration("-- +goose StatementBegin\nSELECT 1;"),
    "encoding": migration("SELECT 'caf\udcff';").encode("utf-8", "surrogateescape"),
}
PASSING = {
    "transaction-statement": migration("UPDATE t SET a = 1;"),
    "invalid-if-exists": migration("SELECT 1;", "DROP TABLE IF EXISTS projects;"),
    "not-idempotent": migration(
        "CREATE TABLE IF NOT EXISTS t (id INT);", "DROP TABLE IF EXISTS t;"
    ),
    "missing-down": migration("CREATE TABLE IF NOT EXISTS t (id INT);", "DROP TABLE IF EXISTS t;"),
    "empty-down": migration("CREATE TABLE IF NOT EXISTS t (id INT);", "DROP TABLE IF EXISTS t;"),
    "down-not-reverse": migration(
        "CREATE TABLE IF NOT EXISTS t (id INT);", "DROP TABLE IF EXISTS t;"
    ),
    "bom": migration("SELECT 1;"),
    "parse": migration("-- +goose StatementBegin\nSELECT 1;\n-- +goose StatementEnd"),
    "encoding": migration("SELECT 'café';"),
}


@pytest.mark.parametrize("rule", sorted(FAILING))
def test_rule_fails_on_its_mistake_and_passes_when_fixed(rule: str) -> None:
    assert rule in rule_names(FAILING[rule])
    assert rules(PASSING[rule]) == []


def test_findings_carry_lines_and_severities() -> None:
    text = migration(
        "-- a comment\nCREATE TABLE t (\n    id INT\n);\nBEGIN;",
        "-- comment\nDROP TABLE IF NOT EXISTS t;",
    )
    assert rules(text) == [
        (3, "warning", "not-idempotent"),
        (6, "error", "transaction-statement"),
        (10, "error", "invalid-if-exists"),
    ]


@pytest.mark.parametrize(
    "up",
    [
        "START TRANSACTION;",
        "ROLLBACK;",
        "END;",
        "ABORT;",
        "BEGIN TRANSACTION;",
        "UPDATE t SET a = 1; COMMIT;",  # one goose statement holding two SQL statements
        "-- +goose StatementBegin\nUPDATE t SET a = 1;\nCOMMIT;\n-- +goose StatementEnd",
    ],
)
def test_transaction_control_statements_are_errors(up: str) -> None:
    assert ("error", "transaction-statement") in {(s, r) for _, s, r in rules(migration(up))}


@pytest.mark.parametrize(
    "up",
    [
        # SQLite trigger: BEGIN ... END is the trigger body.
        "-- +goose StatementBegin\nCREATE TRIGGER IF NOT EXISTS t_touch AFTER UPDATE ON t\n"
        "BEGIN\n    UPDATE t SET n = n + 1 WHERE id = NEW.id;\nEND;\n-- +goose StatementEnd",
        # PL/pgSQL DO block: BEGIN ... END inside dollar quotes.
        "-- +goose StatementBegin\nDO $$\nBEGIN\n    IF true THEN\n        PERFORM 1;\n"
        "    END IF;\nEND\n$$;\n-- +goose StatementEnd",
        # MySQL procedure: compound statements, END IF and END CASE inside.
        "-- +goose StatementBegin\nCREATE PROCEDURE IF NOT EXISTS p()\nBEGIN\n"
        "  IF 1 = 1 THEN SELECT 1; END IF;\n  CASE WHEN 1 THEN SELECT 2; END CASE;\nEND;\n"
        "-- +goose StatementEnd",
        # A function body in a string, and a savepoint rollback (stays in the transaction).
        "CREATE OR REPLACE FUNCTION f() RETURNS int AS 'BEGIN RETURN 1; END;' LANGUAGE plpgsql;",
        "SAVEPOINT s;\nROLLBACK TO SAVEPOINT s;\nRELEASE SAVEPOINT s;",
        "INSERT INTO log (word) VALUES ('BEGIN'), ('COMMIT');",
    ],
)
def test_begin_inside_bodies_is_not_a_transaction_statement(up: str) -> None:
    assert "transaction-statement" not in rule_names(migration(up, "SELECT 1;"))


def test_no_transaction_files_may_control_their_own_transaction() -> None:
    text = migration("BEGIN;\nUPDATE t SET a = 1;\nCOMMIT;", extra="-- +goose NO TRANSACTION\n")
    assert "transaction-statement" not in rule_names(text)


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE IF EXISTS t (id INT);",
        "CREATE INDEX IF EXISTS i ON t (id);",
        "DROP INDEX IF NOT EXISTS i;",
        "DROP VIEW IF NOT EXISTS v;",
        "ALTER TABLE t ADD COLUMN IF EXISTS c INT;",
        "ALTER TABLE t DROP COLUMN IF NOT EXISTS c;",
    ],
)
def test_if_clause_on_the_wrong_verb_is_an_error(statement: str) -> None:
    assert ("error", "invalid-if-exists") in {(s, r) for _, s, r in rules(migration(statement))}


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE INDEX i ON t (id);",
        "CREATE UNIQUE INDEX i ON t (id);",
        "CREATE VIEW v AS SELECT 1;",
        "CREATE SEQUENCE s;",
        "DROP VIEW v;",
        "DROP INDEX i ON t;",
        "DROP TABLE a, b;",
    ],
)
def test_ddl_without_if_exists_is_a_warning(statement: str) -> None:
    assert ("warning", "not-idempotent") in {(s, r) for _, s, r in rules(migration(statement))}


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE OR REPLACE VIEW v AS SELECT 1;",
        "CREATE TEMP TABLE scratch (id INT);",
        "CREATE TYPE mood AS ENUM ('ok');",  # PostgreSQL has no IF NOT EXISTS for types
        "CREATE INDEX IF NOT EXISTS i ON t (id);",
        "DROP INDEX IF EXISTS i;",
        "CREATE TABLE x AS SELECT 1;".replace("TABLE x", "TABLE IF NOT EXISTS x"),
    ],
)
def test_idempotent_ddl_passes(statement: str) -> None:
    assert "not-idempotent" not in rule_names(migration(statement))


def test_sqlite_rebuild_idiom_is_not_flagged() -> None:
    rebuild = (
        "CREATE TABLE t_new (id TEXT NOT NULL PRIMARY KEY);\n"
        "INSERT INTO t_new (id) SELECT id FROM t;\n"
        "DROP TABLE t;\n"
        "ALTER TABLE t_new RENAME TO t;\n"
        "CREATE INDEX IF NOT EXISTS idx_t ON t (id);"
    )
    assert rules(migration(rebuild, rebuild.replace("idx_t", "idx_t_old"))) == []


@pytest.mark.parametrize(
    ("up", "down", "expected"),
    [
        ("CREATE TABLE IF NOT EXISTS a (id INT);", "SELECT 1;", "creates table a"),
        ("CREATE INDEX IF NOT EXISTS i ON t (c);", "SELECT 1;", "creates index i"),
        ("CREATE VIEW IF NOT EXISTS v AS SELECT 1;", "DROP TABLE IF EXISTS v;", "creates view v"),
        ("ALTER TABLE t ADD COLUMN c INT;", "SELECT 1;", "adds column c to t"),
        ("ALTER TABLE t ADD c INT, ADD CONSTRAINT k CHECK (c > 0);", "SELECT 1;", "column c"),
        ("ALTER TABLE t ADD CONSTRAINT k CHECK (c > 0);", "SELECT 1;", "adds constraint k"),
        ("ALTER TABLE t RENAME COLUMN a TO b;", "SELECT 1;", "renames a to b"),
        ("ALTER TABLE t RENAME TO u;", "SELECT 1;", "renames table t to u"),
    ],
)
def test_down_that_does_not_undo_the_up_is_a_warning(up: str, down: str, expected: str) -> None:
    found, _ = lint_file("m.sql", migration(up, down).encode())
    reverse = [f for f in found if f.rule == "down-not-reverse"]
    assert reverse and expected in reverse[0].message
    assert reverse[0].line == 2 and reverse[0].severity == "warning"


@pytest.mark.parametrize(
    ("up", "down"),
    [
        (
            "CREATE TABLE IF NOT EXISTS a (id INT);\nCREATE INDEX IF NOT EXISTS i ON a (id);",
            "DROP TABLE IF EXISTS a;",  # dropping the table drops its index
        ),
        ("CREATE INDEX IF NOT EXISTS i ON t (c);", "DROP INDEX IF EXISTS i;"),
        ("ALTER TABLE t ADD COLUMN c INT;", "ALTER TABLE t DROP COLUMN c;"),
        ("ALTER TABLE t RENAME COLUMN a TO b;", "ALTER TABLE t RENAME COLUMN b TO a;"),
        ("ALTER TABLE t RENAME TO u;", "ALTER TABLE u RENAME TO t;"),
        # Dynamic SQL in a DO block counts as undoing what it names.
        (
            "CREATE TABLE IF NOT EXISTS a (id INT);",
            "-- +goose StatementBegin\nDO $$ BEGIN EXECUTE 'DROP TABLE a'; END $$;\n"
            "-- +goose StatementEnd",
        ),
    ],
)
def test_down_that_undoes_the_up_passes(up: str, down: str) -> None:
    assert "down-not-reverse" not in rule_names(migration(up, down))


def test_statement_lines_follow_comments_blocks_and_crlf() -> None:
    text = (
        "-- +goose Up\r\n-- c\r\nCREATE TABLE IF NOT EXISTS a (\r\n  id INT\r\n);\r\n"
        "-- +goose StatementBegin\r\n-- leading comment\r\nSELECT 1;\r\nSELECT 2;\r\n"
        "-- +goose StatementEnd\r\n-- +goose Down\r\n\r\nDROP TABLE IF EXISTS a;\r\n"
    )
    found, lines = lint_file("m.sql", text.encode())
    assert found == []
    assert lines == ([3, 8], [13])


# ---------------------------------------------------------------- names, versions, directory


def test_names_and_versions_are_checked_and_all_reported() -> None:
    good = migration("SELECT 1;").encode()
    sources = [
        SourceFile(f"d/{name}", good)
        for name in (
            "00000_zero.sql",
            "00001_a.sql",
            "1_b.sql",
            "abc_x.sql",
            "00002.sql",
            "00003_ok.sql",
        )
    ]
    report = lint(sources, directory="d")
    found = {(f.path, f.rule) for f in report.findings}
    assert found == {
        ("d/00000_zero.sql", "filename"),
        ("d/00001_a.sql", "duplicate-version"),
        ("d/1_b.sql", "duplicate-version"),
        ("d/abc_x.sql", "filename"),
        ("d/00002.sql", "filename"),
    }
    assert not report.loadable
    duplicate = next(f for f in report.findings if f.path == "d/00001_a.sql")
    assert "1_b.sql" in duplicate.message


def test_every_problem_in_every_file_is_reported_at_once(migrations_dir: Path) -> None:
    write_migration(migrations_dir, "00001_a.sql", "CREATE TABLE t (id INT);", "DROP TABLE t;")
    (migrations_dir / "00002_b.sql").write_text("-- +goose Up\nSELECT 1\n", encoding="utf-8")
    (migrations_dir / "00003_c.sql").write_text(
        "-- +goose Up\n-- +goose StatementBegin\nSELECT 1;\n", encoding="utf-8"
    )
    write_migration(migrations_dir, "00004_d.sql", "BEGIN;\nCOMMIT;", "SELECT 1;")
    (migrations_dir / "00005_e.sql").write_bytes(b"-- +goose Up\nSELECT '\xff';\n")
    write_migration(migrations_dir, "00005_f.sql", "SELECT 1;", "SELECT 1;")
    (migrations_dir / "00006_dir.sql").mkdir()
    (migrations_dir / "notes.txt").write_text("not a migration", encoding="utf-8")

    result, found, summary = run_validate("--migrations-dir", str(migrations_dir), "--apply")
    assert result.exit_code == 1
    assert all(found), result.stdout
    got = {(Path(f["path"]).name, f["rule"]) for f in found}
    assert got == {
        ("00001_a.sql", "not-idempotent"),
        ("00002_b.sql", "parse"),
        ("00003_c.sql", "parse"),
        ("00004_d.sql", "transaction-statement"),
        ("00005_e.sql", "encoding"),
        ("00005_e.sql", "duplicate-version"),
        ("00005_f.sql", "duplicate-version"),
        ("00006_dir.sql", "not-a-file"),
    }
    assert "--apply skipped" in summary
    assert re.search(r"6 migration files in .*: 7 errors, 3 warnings", summary), summary


def test_empty_directory_is_a_warning(migrations_dir: Path) -> None:
    result, found, _ = run_validate("--migrations-dir", str(migrations_dir))
    assert result.exit_code == 0
    assert [f["rule"] for f in found] == ["no-migrations"]


# ---------------------------------------------------------------- exit codes and --strict


def test_strict_turns_warnings_into_failure(migrations_dir: Path) -> None:
    write_migration(migrations_dir, "00001_a.sql", "CREATE TABLE IF NOT EXISTS t (id INT);", "")
    plain, found, summary = run_validate("--migrations-dir", str(migrations_dir))
    assert plain.exit_code == 0
    assert [(f["severity"], f["rule"]) for f in found] == [("warning", "empty-down")]
    strict, _, strict_summary = run_validate("--migrations-dir", str(migrations_dir), "--strict")
    assert strict.exit_code == 1
    assert "--strict" in strict_summary


def test_missing_directory_cannot_run(tmp_path: Path) -> None:
    result = cli("migrate", "validate", "--migrations-dir", str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"Error: migrations directory not found: {tmp_path / 'nope'}"


def test_apply_uses_a_server_only_when_named_on_the_command_line() -> None:
    env = {"DATABASE_URL": "postgres://postgres:secret@127.0.0.1:5432/postgres"}
    result = cli("migrate", "validate", "--apply", env=env)
    assert result.exit_code == 2
    assert "--database-url" in result.stderr
    assert "secret" not in result.stderr + result.stdout


def test_unreachable_scratch_server_cannot_run() -> None:
    url = "postgres://someone:hunter2@127.0.0.1:1/postgres"
    result = cli(
        "migrate",
        "validate",
        "--apply",
        "--database-url",
        url,
        "--migrations-dir",
        str(SQL_DIR / "postgres"),
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "hunter2" not in result.stderr + result.stdout


def test_round_trip_reports_tables_a_rollback_leaves_behind(migrations_dir: Path) -> None:
    write_migration(
        migrations_dir,
        "00001_a.sql",
        "CREATE TABLE IF NOT EXISTS kept (id INT);",
        "DROP TABLE IF EXISTS keep;",  # a typo: the table survives the rollback
    )
    result, found, summary = run_validate("--migrations-dir", str(migrations_dir), "--apply")
    assert result.exit_code == 0  # warnings only
    assert ("warning", "apply-leftover") in {(f["severity"], f["rule"]) for f in found}
    assert any("kept" in f["message"] for f in found if f["rule"] == "apply-leftover")
    assert "passed" in summary


def test_round_trip_failure_on_second_up_is_reported(migrations_dir: Path) -> None:
    # The Down leaves the table, so the second up's plain CREATE TABLE fails.
    write_migration(migrations_dir, "00001_a.sql", "CREATE TABLE t (id INT);", "SELECT 1;")
    result, found, _ = run_validate("--migrations-dir", str(migrations_dir), "--apply")
    assert result.exit_code == 1
    [failure] = [f for f in found if f["rule"] == "apply"]
    assert failure["line"] == "2"
    assert "again" in failure["message"] and "already exists" in failure["message"]


def test_scratch_sqlite_directory_is_removed() -> None:
    seen: list[Path] = []
    settings = llm_config.resolve(migrations_dir=str(SQL_DIR), env={})
    with roundtrip.scratch_database(settings) as scratch:
        assert scratch.sqlite_path is not None
        seen.append(scratch.sqlite_path.parent)
        assert seen[0].name.startswith("llmproxy_validate_")
    assert not seen[0].exists()


# ---------------------------------------------------------------- parameters in SQL


def test_sqlite_parameters_are_a_warning_for_sqlite_only() -> None:
    from llm_proxy import dialects

    text = migration(
        "CREATE TABLE IF NOT EXISTS p (v TEXT);\n"
        "-- a :comment? is no parameter\n"
        "INSERT INTO p VALUES (':x', '?', \"@y\", [$z]);\n"
        "INSERT INTO p VALUES (:y);\n"
        "INSERT INTO p SELECT v FROM p WHERE v = ?2;",
        "DROP TABLE IF EXISTS p;",
    ).encode()
    found, _ = lint_file("m.sql", text, dialect=dialects.SQLITE)
    params = [(f.line, f.severity, f.rule, f.message) for f in found if f.rule == "sql-parameter"]
    assert [(line, severity) for line, severity, _, _ in params] == [(5, "warning"), (6, "warning")]
    assert params[0][3].startswith("SQLite reads :y as a parameter")
    assert "?2" in params[1][3]
    for dialect in (dialects.POSTGRESQL, dialects.MYSQL, None):
        found, _ = lint_file("m.sql", text, dialect=dialect)
        assert "sql-parameter" not in {f.rule for f in found}


def test_validate_cli_warns_about_a_sqlite_parameter(migrations_dir: Path, tmp_path: Path) -> None:
    write_migration(
        migrations_dir,
        "00001_p.sql",
        "CREATE TABLE IF NOT EXISTS p (v TEXT);\nINSERT INTO p VALUES (:y);",
        "DROP TABLE IF EXISTS p;",
    )
    db = str(tmp_path / "never.db")
    result, found, summary = run_validate("--db", db, "--migrations-dir", str(migrations_dir))
    assert result.exit_code == 0, result.output
    assert [(m["line"], m["rule"]) for m in found if m] == [("3", "sql-parameter")]
    assert summary.endswith("0 errors, 1 warning")


WARNING_NOT_IDEMPOTENT = ("warning", "not-idempotent")


@pytest.mark.parametrize(
    "up",
    [
        "-- +goose StatementBegin\nINSERT INTO a VALUES (1); CREATE TABLE x (i INT);\n"
        "-- +goose StatementEnd",
        "-- +goose StatementBegin\nINSERT INTO a VALUES (1);\nCREATE TABLE x (i INT)\n"
        "-- +goose StatementEnd",
        "INSERT INTO a VALUES ('a;b'); CREATE TABLE x (i INT); -- c",
        "/* note */ CREATE TABLE x (i INT);",
    ],
)
def test_rules_still_read_ddl_behind_data_statements(up: str) -> None:
    # Data statements are skipped unread only when they surely hold nothing else.
    found = rules(migration(up, "DROP TABLE IF EXISTS x;"))
    assert WARNING_NOT_IDEMPOTENT in {(severity, rule) for _, severity, rule in found}, found
