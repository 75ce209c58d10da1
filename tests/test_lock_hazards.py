"""`migrate validate`'s lock-hazard rules: each rule flagged, its safe form passed, silenced by
an allow comment, and no hazard on a table created earlier (same file, or a file not deployed
yet), for PostgreSQL and MySQL; the allow comments' own checks; the CLI's lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import SQL_DIR, cli, write_migration

from llm_proxy import dialects
from llm_proxy.validate.hazards import RULES
from llm_proxy.validate.lint import SourceFile, lint

PG = dialects.POSTGRESQL
MY = dialects.MYSQL
CREATE_T = "CREATE TABLE IF NOT EXISTS t (id INT, c INT, d INT);"
OWN_RULES = set(RULES) | {"allow-invalid", "allow-unused"}


def goose_file(up: str, down: str = "SELECT 1;", *, no_tx: bool = False) -> bytes:
    head = "-- +goose NO TRANSACTION\n" if no_tx else ""
    return f"{head}-- +goose Up\n{up}\n\n-- +goose Down\n{down}\n".encode()


def hazards(
    up: str,
    dialect: dialects.Dialect = PG,
    *,
    earlier: str | None = None,
    deployed_through: int = 0,
    no_tx: bool = False,
    down: str = "SELECT 1;",
) -> list[tuple[int | None, str, str]]:
    """(line, severity, rule) of the lock-hazard findings of a file 00002, after a file 00001
    whose Up is ``earlier`` (when given)."""
    sources = [SourceFile("00002_b.sql", goose_file(up, down, no_tx=no_tx))]
    if earlier is not None:
        sources.insert(0, SourceFile("00001_a.sql", goose_file(earlier)))
    report = lint(sources, dialect=dialect, deployed_through=deployed_through)
    return [
        (f.line, f.severity, f.rule)
        for f in report.findings
        if f.path == "00002_b.sql" and f.rule in OWN_RULES
    ]


def rules_of(found: list[tuple[int | None, str, str]]) -> set[str]:
    return {rule for _, _, rule in found}


# (rule, dialect, statement on table t that is a hazard, its safe form). t exists with rows
# unless the test creates it.
CASES = [
    ("index-not-concurrent", PG, "CREATE INDEX IF NOT EXISTS i ON t (c);", None),
    ("index-not-concurrent", PG, "CREATE UNIQUE INDEX i ON ONLY public.t (c);", None),
    ("drop-index-not-concurrent", PG, "DROP INDEX IF EXISTS i;", None),
    (
        "constraint-not-valid",
        PG,
        "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (c) REFERENCES p (id);",
        "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (c) REFERENCES p (id) NOT VALID;",
    ),
    (
        "constraint-not-valid",
        PG,
        "ALTER TABLE t ADD CONSTRAINT chk CHECK (c > 0);",
        "ALTER TABLE t ADD CONSTRAINT chk CHECK (c > 0) NOT VALID;",
    ),
    (
        "constraint-not-valid",
        PG,
        "ALTER TABLE t ADD FOREIGN KEY (c) REFERENCES p (id);",
        "ALTER TABLE t VALIDATE CONSTRAINT fk;",
    ),
    (
        "column-type-rewrite",
        PG,
        "ALTER TABLE t ALTER COLUMN c TYPE BIGINT;",
        "ALTER TABLE t ALTER COLUMN c SET DEFAULT 0;",
    ),
    (
        "column-type-rewrite",
        PG,
        "ALTER TABLE t ALTER c SET DATA TYPE TEXT USING c::text;",
        None,
    ),
    (
        "set-not-null",
        PG,
        "ALTER TABLE t ALTER COLUMN c SET NOT NULL;",
        "ALTER TABLE t ALTER COLUMN c DROP NOT NULL;",
    ),
    (
        "volatile-default",
        PG,
        "ALTER TABLE t ADD COLUMN u UUID NOT NULL DEFAULT gen_random_uuid();",
        "ALTER TABLE t ADD COLUMN u TIMESTAMPTZ NOT NULL DEFAULT now();",
    ),
    (
        "volatile-default",
        PG,
        "ALTER TABLE t ADD COLUMN IF NOT EXISTS r FLOAT DEFAULT random();",
        "ALTER TABLE t ADD COLUMN r FLOAT DEFAULT 0.5;",
    ),
    (
        "volatile-default",
        PG,
        "ALTER TABLE t ADD COLUMN s TIMESTAMPTZ DEFAULT clock_timestamp();",
        "ALTER TABLE t ADD COLUMN s TIMESTAMPTZ DEFAULT CURRENT_TIMESTAMP;",
    ),
    ("volatile-default", PG, "ALTER TABLE t ADD COLUMN n BIGSERIAL;", None),
    (
        "add-column-not-null",
        PG,
        "ALTER TABLE t ADD COLUMN n INT NOT NULL;",
        "ALTER TABLE t ADD COLUMN n INT NOT NULL DEFAULT 0;",
    ),
    (
        "rename",
        PG,
        "ALTER TABLE t RENAME COLUMN c TO c2;",
        "ALTER TABLE t ADD COLUMN c2 INT;",
    ),
    ("rename", PG, "ALTER TABLE IF EXISTS t RENAME TO t2;", None),
    (
        "online-ddl",
        MY,
        "ALTER TABLE t ADD COLUMN n INT NULL;",
        "ALTER TABLE t ADD COLUMN n INT NULL, ALGORITHM=INSTANT;",
    ),
    (
        "online-ddl",
        MY,
        "ALTER TABLE t MODIFY COLUMN c BIGINT, ALGORITHM=INPLACE;",
        "ALTER TABLE t ADD INDEX i (c), ALGORITHM=INPLACE, LOCK=NONE;",
    ),
    (
        "online-ddl",
        MY,
        "CREATE INDEX i ON t (c);",
        "CREATE INDEX i ON t (c) ALGORITHM = INPLACE LOCK = NONE;",
    ),
    (
        "add-column-not-null",
        MY,
        "ALTER TABLE t ADD COLUMN n INT NOT NULL, ALGORITHM=INSTANT;",
        "ALTER TABLE t ADD COLUMN n INT NOT NULL DEFAULT 0, ALGORITHM=INSTANT;",
    ),
    (
        "rename",
        MY,
        "ALTER TABLE t RENAME COLUMN c TO c2, ALGORITHM=INSTANT;",
        "ALTER TABLE t RENAME INDEX i TO i2, ALGORITHM=INSTANT;",
    ),
    (
        "rename",
        MY,
        "ALTER TABLE t CHANGE COLUMN c c2 INT, ALGORITHM=INPLACE, LOCK=NONE;",
        "ALTER TABLE t CHANGE COLUMN c c BIGINT, ALGORITHM=INPLACE, LOCK=NONE;",
    ),
    ("rename", MY, "RENAME TABLE t TO t2;", None),
]
IDS = [f"{d.name}-{rule}-{i}" for i, (rule, d, _, _) in enumerate(CASES)]
SAFE_CASES = [(case, name) for case, name in zip(CASES, IDS, strict=True) if case[3]]


@pytest.mark.parametrize("rule,dialect,hazard,safe", CASES, ids=IDS)
def test_rule_flags_a_hazard_on_an_existing_table(
    rule: str, dialect: dialects.Dialect, hazard: str, safe: str | None
) -> None:
    found = hazards(f"-- a comment\n{hazard}", dialect)
    assert (3, "warning", rule) in found, found


@pytest.mark.parametrize(
    "rule,dialect,hazard,safe", [c for c, _ in SAFE_CASES], ids=[n for _, n in SAFE_CASES]
)
def test_safe_form_is_not_flagged(
    rule: str, dialect: dialects.Dialect, hazard: str, safe: str
) -> None:
    assert rule not in rules_of(hazards(safe, dialect))


@pytest.mark.parametrize("rule,dialect,hazard,safe", CASES, ids=IDS)
def test_allow_comment_silences_the_finding(
    rule: str, dialect: dialects.Dialect, hazard: str, safe: str | None
) -> None:
    up = f"-- llm-proxy: allow {rule} the table holds ten rows\n-- why, at length\n{hazard}"
    found = hazards(up, dialect)
    assert rule not in rules_of(found)
    assert not rules_of(found) & {"allow-invalid", "allow-unused"}, found


@pytest.mark.parametrize("rule,dialect,hazard,safe", CASES, ids=IDS)
def test_no_hazard_on_a_table_created_earlier(
    rule: str, dialect: dialects.Dialect, hazard: str, safe: str | None
) -> None:
    index = "CREATE INDEX i ON t (c);" if "INDEX" in hazard and dialect is PG else ""
    # In the same file.
    assert rule not in rules_of(hazards(f"{CREATE_T}\n{index}\n{hazard}", dialect))
    # In an earlier file that no deployed database has run yet: the same `up` creates it.
    assert rule not in rules_of(hazards(hazard, dialect, earlier=f"{CREATE_T}\n{index}"))
    # In a deployed file: the table has rows by now.
    found = hazards(hazard, dialect, earlier=f"{CREATE_T}\n{index}", deployed_through=1)
    assert rule in rules_of(found)


def test_rules_are_per_dialect() -> None:
    postgres_only = "ALTER TABLE t ALTER COLUMN c TYPE BIGINT;\nCREATE INDEX i ON t (c);"
    assert rules_of(hazards(postgres_only, MY)) == {"online-ddl"}
    assert "online-ddl" not in rules_of(hazards("ALTER TABLE t ADD COLUMN n INT;", PG))
    for dialect in (dialects.SQLITE, None):
        report = lint([SourceFile("00001_a.sql", goose_file(postgres_only))], dialect=dialect)
        assert not {f.rule for f in report.findings} & OWN_RULES


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (c);",
        "DROP INDEX CONCURRENTLY IF EXISTS i;",
        "REINDEX INDEX CONCURRENTLY i;",
        "VACUUM ANALYZE t;",
    ],
)
def test_statements_that_cannot_run_in_a_transaction_are_errors(statement: str) -> None:
    assert hazards(statement) == [(2, "error", "needs-no-transaction")]
    # Even on a new table: the statement fails whatever the table holds.
    if "ON t" in statement:
        assert hazards(f"{CREATE_T}\n{statement}") == [(3, "error", "needs-no-transaction")]
    assert hazards(statement, no_tx=True) == []
    # MySQL has no such statements in a transaction (its DDL commits by itself).
    assert "needs-no-transaction" not in rules_of(hazards(statement, MY))


def test_alter_type_add_value_in_a_transaction_is_a_warning() -> None:
    statement = "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'meh';"
    assert hazards(statement) == [(2, "warning", "needs-no-transaction")]
    assert hazards(statement, no_tx=True) == []


def test_validate_constraint_in_the_transaction_that_added_it_is_flagged() -> None:
    up = (
        "ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (c) REFERENCES p (id) NOT VALID;\n"
        "ALTER TABLE t VALIDATE CONSTRAINT fk;"
    )
    assert hazards(up) == [(3, "warning", "constraint-not-valid")]
    assert hazards(up, no_tx=True) == []
    # Validated in a later migration: the expand/contract way.
    later = "ALTER TABLE t VALIDATE CONSTRAINT fk;"
    assert hazards(later, earlier=up.splitlines()[0]) == []


def test_set_not_null_after_a_validated_check_is_not_flagged() -> None:
    check = "ALTER TABLE t ADD CONSTRAINT c_nn CHECK (c IS NOT NULL) NOT VALID;"
    validate = "ALTER TABLE t VALIDATE CONSTRAINT c_nn;"
    set_not_null = "ALTER TABLE t ALTER COLUMN c SET NOT NULL;"
    assert hazards(f"{validate}\n{set_not_null}", earlier=check) == []
    # Not validated: the scan still happens under the lock.
    assert rules_of(hazards(set_not_null, earlier=check)) == {"set-not-null"}
    # Another column's check does not count.
    other = "ALTER TABLE t ALTER COLUMN d SET NOT NULL;"
    assert rules_of(hazards(f"{validate}\n{other}", earlier=check)) == {"set-not-null"}


def test_down_sections_are_checked_too() -> None:
    found = hazards("SELECT 1;", down="DROP INDEX IF EXISTS i;")
    assert found == [(5, "warning", "drop-index-not-concurrent")]
    # An index the Up created on a new table is new for the Down as well.
    up = f"{CREATE_T}\nCREATE INDEX i ON t (c);"
    assert hazards("SELECT 1;", earlier=up, down="DROP INDEX IF EXISTS i;") == []


def test_files_are_read_in_version_order_for_the_history(tmp_path: Path) -> None:
    # 9 sorts after 10 by name; goose applies 9 first, so t is new for 10.
    write_migration(tmp_path, "9_create.sql", CREATE_T, "DROP TABLE IF EXISTS t;")
    write_migration(tmp_path, "10_index.sql", "CREATE INDEX IF NOT EXISTS i ON t (c);", "SELECT 1;")
    from llm_proxy.validate.lint import iter_directory

    report = lint(iter_directory(tmp_path), dialect=PG)
    assert not {f.rule for f in report.findings} & OWN_RULES, report.findings


# ---------------------------------------------------------------- allow comments


def test_allow_without_a_reason_silences_nothing_and_is_flagged() -> None:
    found = hazards("-- llm-proxy: allow rename\nALTER TABLE t RENAME TO t2;")
    assert found == [(2, "warning", "allow-invalid"), (3, "warning", "rename")]


def test_allow_of_an_unknown_rule_is_flagged() -> None:
    found = hazards("-- llm-proxy: allow renames old code is gone\nALTER TABLE t RENAME TO t2;")
    assert found == [(2, "warning", "allow-invalid"), (3, "warning", "rename")]


def test_allow_that_silences_nothing_is_flagged() -> None:
    up = "-- llm-proxy: allow rename nothing to rename here\nALTER TABLE t ADD COLUMN n INT;"
    assert hazards(up) == [(2, "warning", "allow-unused")]
    # At the end of the section, with no statement after it.
    assert hazards("SELECT 1;\n-- llm-proxy: allow rename stray") == [
        (3, "warning", "allow-unused")
    ]


def test_allow_covers_only_the_next_statement_and_only_its_rule() -> None:
    up = (
        "-- llm-proxy: allow rename the old binary never reads t\n"
        "ALTER TABLE t RENAME COLUMN c TO c2;\n"
        "ALTER TABLE t RENAME COLUMN d TO d2;\n"
        "-- llm-proxy: allow rename both names are read by the code\n"
        "ALTER TABLE t ALTER COLUMN c2 TYPE BIGINT, RENAME COLUMN c2 TO c3;"
    )
    assert hazards(up) == [(4, "warning", "rename"), (6, "warning", "column-type-rewrite")]


def test_allows_are_not_checked_without_a_dialect() -> None:
    # The rules did not run: an allow cannot be called unused.
    text = goose_file("-- llm-proxy: allow rename reason\nALTER TABLE t RENAME TO t2;")
    report = lint([SourceFile("00001_a.sql", text)], dialect=None)
    assert not {f.rule for f in report.findings} & OWN_RULES


# ---------------------------------------------------------------- the command


def run_validate(*args: str) -> tuple[int, list[str]]:
    result = cli("migrate", "validate", *args)
    return result.exit_code, result.stdout.splitlines()


PG_URL = "postgres://postgres@127.0.0.1:5432/postgres"  # names the dialect; never opened
MY_URL = "mysql://root@127.0.0.1:3306/mysql"


def test_cli_prints_one_line_per_hazard(tmp_path: Path) -> None:
    write_migration(tmp_path, "00001_t.sql", CREATE_T, "DROP TABLE IF EXISTS t;")
    write_migration(
        tmp_path,
        "00002_index.sql",
        "CREATE INDEX IF NOT EXISTS i ON t (c);\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS j ON t (d);",
        "DROP INDEX IF EXISTS j;\nDROP INDEX IF EXISTS i;",
    )
    args = ("--migrations-dir", str(tmp_path), "--database-url", PG_URL)
    code, lines = run_validate(*args, "--deployed-through", "1")
    path = tmp_path / "00002_index.sql"
    assert lines == [
        f"{path}:2: warning: CREATE INDEX on existing table t takes a SHARE lock that blocks "
        "its writes for the whole build: use CREATE INDEX CONCURRENTLY in a file marked "
        "'-- +goose NO TRANSACTION' [index-not-concurrent]",
        f"{path}:3: error: CREATE INDEX CONCURRENTLY cannot run inside a transaction, and goose "
        "runs this file in one: put it in a file of its own marked '-- +goose NO TRANSACTION' "
        "[needs-no-transaction]",
        f"{path}:6: warning: DROP INDEX j takes an ACCESS EXCLUSIVE lock on its table, queueing "
        "every reader behind it: use DROP INDEX CONCURRENTLY in a file marked "
        "'-- +goose NO TRANSACTION' [drop-index-not-concurrent]",
        f"{path}:7: warning: DROP INDEX i takes an ACCESS EXCLUSIVE lock on its table, queueing "
        "every reader behind it: use DROP INDEX CONCURRENTLY in a file marked "
        "'-- +goose NO TRANSACTION' [drop-index-not-concurrent]",
        f"2 migration files in {tmp_path}: 1 error, 3 warnings",
    ]
    assert code == 1
    # Nothing deployed yet: t is created by the same `up`; only the error stays.
    code, lines = run_validate(*args)
    assert [line.rsplit("[", 1)[-1] for line in lines[:-1]] == ["needs-no-transaction]"]
    assert code == 1


def test_cli_warnings_fail_only_under_strict(tmp_path: Path) -> None:
    write_migration(tmp_path, "00001_r.sql", "RENAME TABLE t TO t2;", "RENAME TABLE t2 TO t;")
    args = ("--migrations-dir", str(tmp_path), "--database-url", MY_URL)
    code, lines = run_validate(*args)
    assert code == 0
    assert lines[-1].endswith("0 errors, 2 warnings")
    assert {line.rsplit(" [", 1)[-1] for line in lines[:-1]} == {"rename]"}
    code, _ = run_validate(*args, "--strict")
    assert code == 1


@pytest.mark.parametrize("subdir,url", [("postgres", PG_URL), ("mysql", MY_URL)])
@pytest.mark.parametrize("deployed", [None, "6"])
def test_shipped_migrations_pass_the_hazard_rules_strict(
    subdir: str, url: str, deployed: str | None
) -> None:
    args = ["--migrations-dir", str(SQL_DIR / subdir), "--database-url", url, "--strict"]
    if deployed:
        args += ["--deployed-through", deployed]
    code, lines = run_validate(*args)
    assert code == 0, lines
    assert lines == [f"6 migration files in {SQL_DIR / subdir}: 0 errors, 0 warnings"]


def test_zero_downtime_guide_example_passes_every_rule(tmp_path: Path) -> None:
    # docs/zero-downtime.md's expand/contract files, after the shipped 00001-00004.
    doc = (SQL_DIR.parent / "docs" / "zero-downtime.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in doc.split("```sql\n")[1:]]
    examples = [b for b in blocks if b.startswith("-- 0000")]
    assert len(examples) == 3
    for source in sorted((SQL_DIR / "postgres").glob("0000[1-4]_*.sql")):
        (tmp_path / source.name).write_bytes(source.read_bytes())
    for block in examples:
        name = block.split()[1]
        body = block[block.index("-- +goose") :]
        (tmp_path / name).write_text(body, encoding="utf-8")
    args = ("--migrations-dir", str(tmp_path), "--database-url", PG_URL, "--strict")
    code, lines = run_validate(*args, "--deployed-through", "4")
    assert (code, lines) == (0, [f"7 migration files in {tmp_path}: 0 errors, 0 warnings"])


def test_an_allow_line_at_the_top_of_a_file_does_not_stop_up(tmp_path: Path) -> None:
    from conftest import cli

    # The allow comment may stand before the first statement, where the
    # `-- llm-proxy: after` reader also looks: it is not a parent line.
    migrations = tmp_path / "m"
    migrations.mkdir()
    (migrations / "00001_a.sql").write_text(
        "-- llm-proxy: allow rename the old name is unused since 2.3\n"
        "-- +goose Up\nCREATE TABLE a (x int);\n-- +goose Down\nDROP TABLE a;\n",
        encoding="utf-8",
    )
    result = cli(
        "migrate", "up", "--db", str(tmp_path / "x.db"), "--migrations-dir", str(migrations)
    )
    assert result.exit_code == 0, result.output
