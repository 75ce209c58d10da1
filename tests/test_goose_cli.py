"""`llm-proxy goose ...` driven with goose's documented invocations, its output
compared with the lines goose prints (stderr, behind Go's log time stamp)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import SQL_DIR, cli, run_cli, sqlite_dump, sqlite_rows, write_migration
from stock_alembic import connected, table_names

from llm_proxy.cli.goose_args import FlagError, go_duration, parse_flags, read, redact_dbstring

STAMP = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ")
APPLIED_AT = re.compile(r"^    \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} -- ")
OK = re.compile(r"^OK   (\S+) \(\d+(\.\d+)?(ns|µs|ms|s)\)$")


def lines(stderr: str) -> list[str]:
    """goose's log lines without their time stamp (each must have one)."""
    found = stderr.splitlines()
    assert all(STAMP.match(line) for line in found), found
    return [STAMP.sub("", line) for line in found]


def names_ok(stderr: str) -> list[str]:
    return [m.group(1) for m in map(OK.match, lines(stderr)) if m]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with goose's `sql/` (the shipped SQLite files 1-3)."""
    (tmp_path / "sql").mkdir()
    for file in sorted(SQL_DIR.glob("0000[123]_*.sql")):
        shutil.copy(file, tmp_path / "sql" / file.name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


FILES = [
    "00001_initial_schema.sql",
    "00002_add_deactivated_at.sql",
    "00003_add_cache_hit_count.sql",
]


# ------------------------------------------------------------ goose's flag rules (pure)


@pytest.mark.parametrize(
    "argv,flags,positional",
    [
        (["-dir", "sql", "sqlite3", "x.db", "up"], {"dir": "sql"}, ["sqlite3", "x.db", "up"]),
        (["--dir=sql", "-v", "up"], {"dir": "sql", "v": True}, ["up"]),
        (["-allow-missing=false", "up"], {"allow-missing": False}, ["up"]),
        (["sqlite3", "x.db", "up", "-table", "t"], {"table": "t"}, ["sqlite3", "x.db", "up"]),
        (["-s", "--", "-v", "x"], {"s": True}, ["-v", "x"]),
        (["--help"], {"h": True}, []),
    ],
)
def test_go_flag_rules(argv: list[str], flags: dict, positional: list[str]) -> None:
    assert parse_flags(argv) == (flags, positional)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["-x"], "flag provided but not defined: -x"),
        (["-dir"], "flag needs an argument: -dir"),
        (["-v=maybe"], 'invalid boolean value "maybe" for -v: parse error'),
        (["-timeout", "5min"], 'invalid value "5min" for flag -timeout: parse error'),
    ],
)
def test_bad_flags_say_what_go_says(argv: list[str], message: str) -> None:
    with pytest.raises(FlagError, match=re.escape(message)):
        parse_flags(argv)


def test_environment_fills_in_as_goose_merges_it() -> None:
    env = {
        "GOOSE_DRIVER": "sqlite3",
        "GOOSE_DBSTRING": "./foo.db",
        "GOOSE_MIGRATION_DIR": "migrations",
        "GOOSE_TABLE": "custom_version",
    }
    invocation = read(["status"], env)
    assert invocation.positional == ("sqlite3", "./foo.db", "status")
    assert (invocation.command, invocation.directory, invocation.table) == (
        "status", "migrations", "custom_version",
    )  # fmt: skip
    flagged = read(["-dir", "sql", "-table", "t", "up-to", "3"], env)
    assert (flagged.directory, flagged.table, flagged.arguments) == ("sql", "t", ("3",))
    # create, fix, env and validate take no DRIVER and DBSTRING, even from the environment.
    create = read(["create", "add_x", "sql"], env)
    assert (create.command, create.arguments, create.needs_database) == (
        "create", ("add_x", "sql"), False,
    )  # fmt: skip


def test_dir_table_and_timeout_become_settings(tmp_path: Path) -> None:
    from llm_proxy.cli.goose import _settings

    db = tmp_path / "x.db"
    argv = ["-dir", "sql", "-table", "t", "-timeout", "1h13m", "sqlite3", str(db), "up"]
    settings = _settings(read(argv, {}))
    assert (settings.sqlite_path, settings.migrations_dir, settings.goose_table) == (
        db, Path("sql"), "t",
    )  # fmt: skip
    assert settings.statement_timeout == 4380


def test_go_durations() -> None:
    assert go_duration("1h13m") == 4380
    assert go_duration("1.5s") == 1.5
    assert go_duration("300ms") == 0.3
    with pytest.raises(FlagError):
        go_duration("5 minutes")


@pytest.mark.parametrize(
    "dbstring,shown",
    [
        ("postgres://u:hunter2@h/db", "postgres://u:***@h/db"),
        ("user=u password=hunter2 dbname=d", "user=u password=*** dbname=d"),
        ("user=u password='hun ter2' dbname=d", "user=u password=*** dbname=d"),
        ("u:hunter2@tcp(h:3306)/db", "u:***@tcp(h:3306)/db"),
        ("./foo.db", "./foo.db"),
    ],
)
def test_a_dbstring_is_shown_without_its_password(dbstring: str, shown: str) -> None:
    assert redact_dbstring(dbstring) == shown


# ------------------------------------------------------------ goose's documented invocations


def test_goose_dir_sql_sqlite3_foo_db_status(project: Path) -> None:
    result = cli("goose", "-dir", "sql", "sqlite3", "./foo.db", "status")
    assert result.exit_code == 0 and result.stdout == ""
    assert lines(result.stderr) == [
        "    Applied At                  Migration",
        "    =======================================",
        *(f"    Pending                  -- {name}" for name in FILES),
    ]
    cli("goose", "-dir", "sql", "sqlite3", "./foo.db", "up-to", "2")
    shown = lines(cli("goose", "-dir", "sql", "sqlite3", "./foo.db", "status").stderr)
    assert [APPLIED_AT.sub("    <when> -- ", line) for line in shown[2:]] == [
        f"    <when> -- {FILES[0]}",
        f"    <when> -- {FILES[1]}",
        f"    Pending                  -- {FILES[2]}",
    ]


def test_up_then_up_again_prints_goose_lines(project: Path) -> None:
    first = cli("goose", "-dir", "sql", "sqlite3", "./foo.db", "up")
    assert first.exit_code == 0, first.stderr
    assert names_ok(first.stderr) == FILES
    assert lines(first.stderr)[-1] == "goose: successfully migrated database to version: 3"
    again = cli("goose", "-dir", "sql", "sqlite3", "./foo.db", "up")
    assert lines(again.stderr) == ["goose: no migrations to run. current version: 3"]
    assert lines(cli("goose", "-dir", "sql", "sqlite3", "./foo.db", "version").stderr) == [
        "goose: version 3"
    ]
    assert sqlite_rows(project / "foo.db", "SELECT version_id FROM goose_db_version") == [
        (0,), (1,), (2,), (3,),
    ]  # fmt: skip


def test_rolling_back_prints_goose_lines(project: Path) -> None:
    goose = ("goose", "-dir", "sql", "sqlite3", "./foo.db")
    cli(*goose, "up")
    down = cli(*goose, "down")
    assert down.exit_code == 0 and names_ok(down.stderr) == [FILES[2]]
    redo = cli(*goose, "redo")
    assert redo.exit_code == 0 and names_ok(redo.stderr) == [FILES[1], FILES[1]]
    down_to = cli(*goose, "down-to", "1")
    assert names_ok(down_to.stderr) == [FILES[1]]
    assert lines(down_to.stderr)[-1] == "goose: no migrations to run. current version: 1"
    reset = cli(*goose, "reset")
    assert reset.exit_code == 0 and names_ok(reset.stderr) == [FILES[0]]
    assert lines(cli(*goose, "version").stderr) == ["goose: version 0"]


def test_up_by_one_and_its_error_when_nothing_is_left(project: Path) -> None:
    goose = ("goose", "-dir", "sql", "sqlite3", "./foo.db")
    for name in FILES:
        step = cli(*goose, "up-by-one")
        assert step.exit_code == 0 and names_ok(step.stderr) == [name]
    last = cli(*goose, "up-by-one")
    assert last.exit_code == 1
    assert lines(last.stderr) == [
        "goose: no migrations to run. current version: 3",
        "goose run: no next version found",
    ]


def test_environment_variables_replace_driver_dbstring_and_dir(project: Path) -> None:
    env = {"GOOSE_DRIVER": "sqlite3", "GOOSE_DBSTRING": "./foo.db", "GOOSE_MIGRATION_DIR": "sql"}
    result = run_cli("goose", "up", cwd=project, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and names_ok(result.stderr) == FILES


def test_exit_codes_and_usage(project: Path) -> None:
    bad_flag = cli("goose", "-frobnicate", "up")
    assert bad_flag.exit_code == 2
    assert bad_flag.stderr.splitlines()[0] == "flag provided but not defined: -frobnicate"
    missing = cli("goose", "sqlite3", "./foo.db")
    assert missing.exit_code == 1 and missing.stdout.startswith("Usage: llm-proxy goose")
    helped = cli("goose", "-h")
    assert helped.exit_code == 0 and "up-by-one" in helped.stdout
    version = cli("goose", "-version")
    assert version.exit_code == 0 and version.stdout.startswith("goose version: llm-proxy ")
    before = sqlite_dump(project / "foo.db")
    for argv, message in [
        (("up-to",), "goose run: up-to must be of form: goose [OPTIONS] DRIVER DBSTRING up-to"),
        (("up-to", "two"), "goose run: version must be a number (got 'two')"),
        (("-no-versioning", "up"), "goose run: -no-versioning is not supported"),
        (("frob",), 'goose run: "frob": no such command'),
        (("-env", ".env", "up"), "goose run: -env .env: llm-proxy reads no .env file"),
        (
            ("-table", "public.t", "up"),
            "goose run: -table='public.t': a schema-qualified table is not supported",
        ),
    ]:
        result = cli("goose", "-dir", "sql", "sqlite3", "./foo.db", *argv)
        assert result.exit_code == 1, argv
        assert len(lines(result.stderr)) == 1 and lines(result.stderr)[0].startswith(message)
    assert sqlite_dump(project / "foo.db") == before


def test_a_failing_migration_is_goose_run_and_exit_1(project: Path) -> None:
    write_migration(project / "sql", "00004_broken.sql", "CREATE TABLE t (;")
    result = cli("goose", "-dir", "sql", "sqlite3", "./foo.db", "up")
    assert result.exit_code == 1
    last = lines(result.stderr)[-1]
    assert last.startswith("goose run: ") and "00004_broken.sql" in last
    assert sqlite_rows(project / "foo.db", "SELECT max(version_id) FROM goose_db_version") == [(3,)]


def test_create_fix_validate_and_env(project: Path) -> None:
    stamped = cli("goose", "-dir", "sql", "create", "add_thing", "sql")
    assert stamped.exit_code == 0, stamped.stderr
    created = lines(stamped.stderr)[0]
    assert re.fullmatch(r"Created new file: .*sql/\d{14}_add_thing\.sql", created)
    refused = cli("goose", "-dir", "sql", "create", "add_go")
    assert refused.exit_code == 1 and "writes sql migrations only" in refused.stderr
    fixed = cli("goose", "-dir", "sql", "fix")
    assert fixed.exit_code == 0
    assert re.fullmatch(
        r"RENAMED \d{14}_add_thing\.sql => 00004_add_thing\.sql", lines(fixed.stderr)[0]
    )
    sequential = cli("goose", "-s", "-dir", "sql", "create", "more", "sql")
    assert lines(sequential.stderr)[0].endswith("sql/00005_more.sql")
    quiet = cli("goose", "-dir", "sql", "validate")
    assert quiet.exit_code == 0 and quiet.stdout == quiet.stderr == ""
    verbose = cli("goose", "-v", "-dir", "sql", "validate")
    assert verbose.stdout.splitlines()[:3] == [
        "Type   Txn   Up   Down   Name                            ",
        "────   ───   ──   ────   ────                            ",
        "sql    ✔     14   3      00001_initial_schema.sql        ",
    ]
    write_migration(
        project / "sql", "00006_bad.sql", "SELECT 1;", extra="-- +goose StatementBegin\n"
    )
    invalid = cli("goose", "-dir", "sql", "validate")
    assert invalid.exit_code == 1 and lines(invalid.stderr)[0].startswith("goose validate: ")
    env = {"GOOSE_DRIVER": "postgres", "GOOSE_DBSTRING": "user=u password=hunter2 dbname=d"}
    shown = cli("goose", "env", env=env)
    assert shown.exit_code == 0 and "hunter2" not in shown.stdout
    assert shown.stdout.splitlines() == [
        'GOOSE_DRIVER="postgres"',
        'GOOSE_DBSTRING="user=u password=*** dbname=d"',
        'GOOSE_MIGRATION_DIR="."',
        'GOOSE_TABLE="goose_db_version"',
    ]


def test_a_connection_failure_never_shows_the_password(project: Path) -> None:
    result = cli(
        "goose", "-dir", "sql", "postgres",
        "host=127.0.0.1 port=1 user=u password=hunter2 dbname=d connect_timeout=2", "status",
    )  # fmt: skip
    assert result.exit_code == 1 and "hunter2" not in result.output + result.stderr
    assert lines(result.stderr)[0].startswith("goose run: ")


# ------------------------------------------------------------ all three databases


def postgres_dsn(url: str) -> str:
    """The fixture's database as libpq's key=value string, goose's documented form."""
    parts = urlsplit(url)
    return (
        f"host={parts.hostname} port={parts.port or 5432} user={parts.username} "
        f"dbname={parts.path.lstrip('/')} sslmode=disable"
    )


def mysql_dsn(url: str) -> str:
    """The fixture's database as Go's MySQL DSN."""
    parts = urlsplit(url)
    database = parts.path.lstrip("/")
    return f"{parts.username}@tcp({parts.hostname}:{parts.port})/{database}?parseTime=true"


@pytest.fixture(params=["sqlite3", "postgres", "mysql"])
def goose_database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str, str, Path]:
    """(DRIVER, DBSTRING, SQLAlchemy URL, goose directory) for each database."""
    from stock_alembic import sqlalchemy_url

    driver = request.param
    if driver == "sqlite3":
        path = tmp_path / "foo.db"
        return driver, str(path), f"sqlite:///{path}", SQL_DIR
    url = request.getfixturevalue("postgres_url" if driver == "postgres" else "mysql_url")
    dsn = postgres_dsn(url) if driver == "postgres" else mysql_dsn(url)
    subdirectory = "postgres" if driver == "postgres" else "mysql"
    return driver, dsn, sqlalchemy_url(url), SQL_DIR / subdirectory


def test_goose_env_up_and_custom_table_on_every_database(
    goose_database: tuple[str, str, str, Path], tmp_path: Path
) -> None:
    driver, dbstring, url, directory = goose_database
    env = {"GOOSE_DRIVER": driver, "GOOSE_DBSTRING": dbstring}
    up = run_cli("goose", "-dir", str(directory), "-table", "custom_version", "up", env=env)
    assert up.returncode == 0, up.stderr
    assert lines(up.stderr)[-1] == "goose: successfully migrated database to version: 6"
    assert len(names_ok(up.stderr)) == 6
    assert "goose_db_version" not in table_names(url)
    with connected(url) as connection:
        rows = connection.exec_driver_sql("SELECT version_id FROM custom_version ORDER BY id")
        assert [int(r[0]) for r in rows] == [0, 1, 2, 3, 4, 5, 6]
    env["GOOSE_TABLE"] = "custom_version"
    status = run_cli("goose", "-dir", str(directory), "status", env=env)
    assert status.returncode == 0 and "Pending" not in status.stderr
    # The same database through the plain migrate command and the same table name.
    version = cli("migrate", "version", "--database-url", url, "--goose-table", "custom_version")
    assert "Current migration version: 6" in version.output
    down = run_cli("goose", "-dir", str(directory), "down-to", "0", env=env)
    assert down.returncode == 0, down.stderr
    assert lines(down.stderr)[-1] == "goose: no migrations to run. current version: 0"
