"""`llm-proxy goose [goose's flags] DRIVER DBSTRING COMMAND [ARGS]`: goose's own
command line over the llm_proxy.migrate API, so that a script calling goose
switches by changing one word.

goose logs through Go's standard logger: every line goes to stderr behind a
`YYYY/MM/DD HH:MM:SS ` stamp, and a failure is `goose run: <error>` with exit
code 1; a bad flag is exit 2, missing arguments print the usage and exit 1.
Only `env` and the usage go to stdout, as goose prints them.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import click

from llm_proxy.errors import ConfigError, LlmProxyError, NoNextVersion, describe_unexpected

from . import output
from .common import debugging
from .goose_args import (
    DEFAULT_TABLE,
    FlagError,
    Invocation,
    go_duration,
    read,
    redact_dbstring,
)

USAGE = """Usage: llm-proxy goose [OPTIONS] DRIVER DBSTRING COMMAND

or

Set environment key
GOOSE_DRIVER=DRIVER
GOOSE_DBSTRING=DBSTRING
GOOSE_MIGRATION_DIR=MIGRATION_DIR
GOOSE_TABLE=TABLE

Usage: llm-proxy goose [OPTIONS] COMMAND

Drivers:
    postgres (pgx)
    mysql
    sqlite3 (sqlite)

Examples:
    llm-proxy goose sqlite3 ./foo.db status
    llm-proxy goose sqlite3 ./foo.db create add_some_column sql
    llm-proxy goose postgres "user=postgres dbname=postgres sslmode=disable" up
    llm-proxy goose mysql "user:password@tcp(127.0.0.1:3306)/dbname" status
    GOOSE_DRIVER=sqlite3 GOOSE_DBSTRING=./foo.db llm-proxy goose status

Options:
  -dir string          directory with migration files (default ".")
  -table string        migrations table name (default "goose_db_version")
  -allow-missing       applies missing (out-of-order) migrations
  -s                   use sequential numbering for new migrations
  -timeout duration    maximum allowed duration for queries to run; e.g., 1h13m
  -v                   enable verbose mode (validate: the table of files)
  -h                   print help
  -version             print version
  -no-color            accepted (llm-proxy prints no colours)
  -no-versioning       refused: llm-proxy always records what it runs
  -certfile string     root CA file in PEM format (mysql only: TLS)
  -ssl-cert string     client certificate in PEM format (mysql only)
  -ssl-key string      client key in PEM format (mysql only)
  -env string          only "none" (llm-proxy reads no .env file)

Commands:
    up                   Migrate the DB to the most recent version available
    up-by-one            Migrate the DB up by 1
    up-to VERSION        Migrate the DB to a specific VERSION
    down                 Roll back the version by 1
    down-to VERSION      Roll back to a specific VERSION
    redo                 Re-run the latest migration
    reset                Roll back all migrations
    status               Dump the migration status for the current DB
    version              Print the current version of the database
    create NAME [sql]    Creates new migration file with the current timestamp
    fix                  Apply sequential ordering to migrations
    validate             Check migration files without running them
    env                  Print the goose environment variables"""

EXIT_FAILED = 1  # log.Fatalf
EXIT_BAD_FLAG = 2  # Go's flag.ExitOnError


def log(line: str) -> None:
    """One line as Go's standard logger writes it: local time stamp, stderr."""
    click.echo(f"{time.strftime('%Y/%m/%d %H:%M:%S')} {line}", err=True)


def fatal(message: str) -> NoReturn:
    log(f"goose run: {message}")
    sys.exit(EXIT_FAILED)


@click.command(
    "goose",
    context_settings={"ignore_unknown_options": True, "help_option_names": []},
    add_help_option=False,
)
@click.argument("argv", nargs=-1, type=click.UNPROCESSED)
def goose_command(argv: tuple[str, ...]) -> None:
    """goose's own command line: [goose flags] DRIVER DBSTRING COMMAND [ARGS] (-h for more)."""
    try:
        invocation = read(argv, os.environ)
    except FlagError as exc:
        click.echo(str(exc), err=True)
        click.echo(USAGE, err=True)
        sys.exit(EXIT_BAD_FLAG)
    if invocation.flag("version"):
        from importlib.metadata import version

        click.echo(f"goose version: llm-proxy {version('llm-proxy')}")
        return
    if invocation.flag("h"):
        click.echo(USAGE)
        return
    if invocation.command is None:
        click.echo(USAGE)
        sys.exit(EXIT_FAILED)
    try:
        _run(invocation)
    except (click.exceptions.Exit, SystemExit):
        raise
    except NoNextVersion as exc:
        log(output.NO_MIGRATIONS.format(version=exc.version))
        fatal("no next version found")
    except LlmProxyError as exc:
        fatal(str(exc))
    except Exception as exc:
        if debugging():
            raise
        fatal(describe_unexpected(exc))


def _settings(invocation: Invocation) -> Any:
    """Settings for the invocation: its database (if it names one), -dir, -table, -timeout."""
    from llm_proxy import config, dialects

    url = None
    if invocation.needs_database:
        driver, dbstring = invocation.positional[0], invocation.positional[1]
        tls_files = {
            kind: str(invocation.flags[flag])
            for flag, kind in (("certfile", "ca"), ("ssl-cert", "cert"), ("ssl-key", "key"))
            if invocation.flags.get(flag)
        }
        _, url = dialects.from_goose(driver, dbstring, tls_files)
        if invocation.flag("no-versioning"):
            raise ConfigError(
                "-no-versioning is not supported: llm-proxy records every migration it runs "
                "in the version table (for SQL without bookkeeping use "
                "`llm-proxy migrate up --sql`)"
            )
    if invocation.table != DEFAULT_TABLE:  # named as the user named it
        config.check_goose_table(
            invocation.table, "-table" if "table" in invocation.flags else "GOOSE_TABLE"
        )
    env_file = invocation.flags.get("env")
    if env_file not in (None, "none"):
        raise ConfigError(f"-env {env_file}: llm-proxy reads no .env file; export the variables")
    timeout = invocation.flags.get("timeout")
    statement_timeout = go_duration(str(timeout)) if timeout is not None else None
    return config.resolve(
        database_url=url,
        db=None if url else os.devnull,  # create/fix/validate/env open no database
        migrations_dir=invocation.directory,
        goose_table=invocation.table,
        statement_timeout=statement_timeout,
        env={},  # goose reads only its own variables (read() applied them)
    )


def _version_argument(invocation: Invocation, command: str) -> str:
    if not invocation.arguments:
        raise ConfigError(
            f"{command} must be of form: goose [OPTIONS] DRIVER DBSTRING {command} VERSION"
        )
    version = invocation.arguments[0]
    try:
        int(version)
    except ValueError:
        raise ConfigError(f"version must be a number (got '{version}')") from None
    return version


def _run(invocation: Invocation) -> None:
    from llm_proxy import migrate

    command = invocation.command
    if command == "env":
        _print_env(invocation)
        return
    settings = _settings(invocation)
    allow_missing = invocation.flag("allow-missing")
    if command in ("up", "up-to"):
        to = _version_argument(invocation, command) if command == "up-to" else None
        result = migrate.up(settings, to=to, allow_missing=allow_missing, report=log)
        _after_up(result.applied, result.version)
    elif command == "up-by-one":
        migrate.up_by_one(settings, allow_missing=allow_missing, report=log)
    elif command == "down":
        migrate.down(settings, report=log)
    elif command == "down-to":
        current = migrate.down_to(settings, _version_argument(invocation, command), report=log)
        log(output.NO_MIGRATIONS.format(version=current))
    elif command == "redo":
        migrate.redo(settings, report=log)
    elif command == "reset":
        migrate.reset(settings, report=log)
    elif command == "status":
        for line in output.status_lines(migrate.status(settings)):
            log(line)
    elif command == "version":
        log(f"goose: version {migrate.version(settings)}")
    elif command == "create":
        _create(invocation, settings)
    elif command == "fix":
        for old, new in migrate.fix(settings).renamed:
            log(f"RENAMED {Path(old).name} => {Path(new).name}")  # goose shows base names
    elif command == "validate":
        _validate(settings, invocation.flag("v"))
    else:
        raise ConfigError(f'"{command}": no such command')


def _after_up(applied: list[str], version: int) -> None:
    if applied:
        log(f"goose: successfully migrated database to version: {version}")
    else:
        log(output.NO_MIGRATIONS.format(version=version))


def _create(invocation: Invocation, settings: Any) -> None:
    from llm_proxy.migrate import authoring

    arguments = invocation.arguments
    if not arguments:
        raise ConfigError("create must be of form: goose [OPTIONS] DRIVER DBSTRING create NAME sql")
    kind = arguments[1] if len(arguments) > 1 else "go"  # goose's default type
    if kind != "sql":
        raise ConfigError(
            f"create {arguments[0]} {kind}: llm-proxy writes sql migrations only (add `sql`; "
            "a Python revision is `llm-proxy migrate create --python`)"
        )
    numbering = authoring.SEQUENTIAL if invocation.flag("s") else authoring.TIMESTAMP
    created = authoring.create(settings, arguments[0], kind=authoring.SQL, numbering=numbering)
    log(f"Created new file: {created.path}")


def _validate(settings: Any, verbose: bool) -> None:
    from llm_proxy.validate import lint

    report = lint.lint(
        lint.iter_directory(settings.migrations_dir),
        os.environ,
        directory=str(settings.migrations_dir),
    )
    errors = [f for f in report.findings if f.severity == lint.ERROR]
    if errors:
        log(f"goose validate: {errors[0].render()}")
        sys.exit(EXIT_FAILED)
    if verbose:
        click.echo("\n".join(validate_table(settings.migrations_dir)))


def validate_table(directory: Path) -> list[str]:
    """goose's `validate -v` table: type, transaction, Up and Down statement counts,
    file name; columns padded as Go's tabwriter pads them (3 spaces, last one too)."""
    from llm_proxy.goose.files import discover
    from llm_proxy.goose.migration import GooseMigration

    rows = [("Type", "Txn", "Up", "Down", "Name"), ("────", "───", "──", "────", "────")]
    for found in discover(directory):
        up, down = GooseMigration(found).sections()
        txn = "✔" if up.use_tx else "✘"
        rows.append(("sql", txn, str(len(up.statements)), str(len(down.statements)), found.name))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return ["".join(cell.ljust(w + 3) for cell, w in zip(row, widths, strict=True)) for row in rows]


def _print_env(invocation: Invocation) -> None:
    """goose's `env`: its variables as NAME="value", the password masked."""
    driver = os.environ.get("GOOSE_DRIVER", "")
    dbstring = redact_dbstring(os.environ.get("GOOSE_DBSTRING", ""))
    values = (
        ("GOOSE_DRIVER", driver),
        ("GOOSE_DBSTRING", dbstring),
        ("GOOSE_MIGRATION_DIR", invocation.directory),
        ("GOOSE_TABLE", invocation.table),
    )
    for name, value in values:
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        click.echo(f'{name}="{escaped}"')
