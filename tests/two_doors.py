"""Both doors on one database: the stock `alembic` command and `llm-proxy migrate`.

A project here is alembic.ini, alembic/ (env.py, no Python revision) and a goose
directory whose files only log that they ran: file N's Up inserts ('up', N)
into the table `ran_log`, its Down inserts ('down', N). So a test sees exactly
which migrations ran, in which order, and can compare with tests/goose_model.py.

Both doors run in this process (the stock command through Alembic's own
command-line class, so its refusals print `FAILED: ...` as in a shell) and
read the database from DATABASE_PATH / DATABASE_URL, as they would in a shell.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, cli, settings_for

from llm_proxy.config import Settings
from llm_proxy.db import drivers

RAN_LOG_DDL = {
    "sqlite": "CREATE TABLE ran_log (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "direction VARCHAR(4) NOT NULL, version INTEGER NOT NULL)",
    "postgresql": "CREATE TABLE ran_log (id SERIAL PRIMARY KEY, "
    "direction VARCHAR(4) NOT NULL, version INTEGER NOT NULL)",
    "mysql": "CREATE TABLE ran_log (id INTEGER AUTO_INCREMENT PRIMARY KEY, "
    "direction VARCHAR(4) NOT NULL, version INTEGER NOT NULL)",
}
DIALECTS = tuple(RAN_LOG_DDL)

PYTHON_REVISION = """\
\"\"\"logged\"\"\"
from alembic import op

revision = "{revision}"
down_revision = "{parent}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("INSERT INTO ran_log (direction, version) VALUES ('up', {logged_as})")


def downgrade() -> None:
    op.execute("INSERT INTO ran_log (direction, version) VALUES ('down', {logged_as})")
"""


def logging_migration(version: int) -> str:
    return (
        "-- +goose Up\n"
        f"INSERT INTO ran_log (direction, version) VALUES ('up', {version});\n\n"
        "-- +goose Down\n"
        f"INSERT INTO ran_log (direction, version) VALUES ('down', {version});\n"
    )


def make_project(root: Path, versions: int) -> Path:
    """alembic.ini and alembic/ of the repository, with `versions` logging goose
    files in migrations/ (the goose directory for every dialect)."""
    root.mkdir(parents=True, exist_ok=True)
    ini = (REPO / "alembic.ini").read_text(encoding="utf-8")
    lines = [
        "goose_directory = %(here)s/migrations" if line.startswith("goose_directory =") else line
        for line in ini.splitlines()
        if not line.startswith("goose_directory_")
    ]
    (root / "alembic.ini").write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.copytree(
        REPO / "alembic", root / "alembic", ignore=shutil.ignore_patterns("__pycache__", "*.py[co]")
    )
    versions_dir = root / "alembic" / "versions"
    versions_dir.mkdir(exist_ok=True)
    for stale in versions_dir.glob("*.py"):
        stale.unlink()
    migrations = root / "migrations"
    migrations.mkdir()
    for version in range(1, versions + 1):
        (migrations / f"{version:05d}_step_{version}.sql").write_text(
            logging_migration(version), encoding="utf-8"
        )
    return root


@dataclass
class Database:
    """One test database and what its tables say."""

    kind: str  # a key of RAN_LOG_DDL
    env: dict[str, str]  # DATABASE_PATH or DATABASE_URL
    settings: Settings

    @contextlib.contextmanager
    def _connection(self) -> Iterator[Any]:
        with drivers.connection(self.settings, create=True) as connection:
            yield connection

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self._connection() as connection:
            return drivers.rows(connection, sql)

    def execute(self, *statements: str) -> None:
        with self._connection() as connection:
            for sql in statements:
                drivers.rows(connection, sql)

    def tables(self) -> set[str]:
        sql = self.settings.dialect.existing_tables_sql(
            ("goose_db_version", "alembic_version", "llm_proxy_migrations", "ran_log"), None
        )
        return {str(r[0]) for r in self.rows(sql)}

    def goose_versions(self) -> list[int] | None:
        """goose_db_version's versions in id order; None when the table is absent."""
        if "goose_db_version" not in self.tables():
            return None
        return [int(r[0]) for r in self.rows("SELECT version_id FROM goose_db_version ORDER BY id")]

    def alembic_heads(self) -> list[str]:
        if "alembic_version" not in self.tables():
            return []
        return sorted(str(r[0]) for r in self.rows("SELECT version_num FROM alembic_version"))

    def journal(self) -> list[str]:
        """Revisions llm_proxy_migrations holds a checksum for."""
        if "llm_proxy_migrations" not in self.tables():
            return []
        return sorted(str(r[0]) for r in self.rows("SELECT revision FROM llm_proxy_migrations"))

    def ran(self) -> list[tuple[str, int]]:
        return [
            (str(r[0]), int(r[1]))
            for r in self.rows("SELECT direction, version FROM ran_log ORDER BY id")
        ]


def database_for(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """A fresh database of `kind` with an empty ran_log (servers skip when unreachable)."""
    if kind == "sqlite":
        path = tmp_path / "db" / "doors.db"
        database = Database(kind, {"DATABASE_PATH": str(path)}, settings_for(db=str(path)))
    else:
        fixture = "postgres_url" if kind == "postgresql" else "mysql_url"
        url = request.getfixturevalue(fixture)
        database = Database(kind, {"DATABASE_URL": url}, settings_for(database_url=url))
    database.execute(RAN_LOG_DDL[kind])
    return database


@dataclass(frozen=True)
class Outcome:
    """What one command did: its exit code and what it printed."""

    code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.code == 0


@dataclass
class Doors:
    """The two ways into one project and database."""

    project: Path
    database: Database

    @property
    def ini(self) -> Path:
        return self.project / "alembic.ini"

    def alembic(self, *argv: str) -> Outcome:
        """`alembic -c alembic.ini ARGV...` as the stock command runs it."""
        from alembic.config import CommandLine, Config

        from llm_proxy.bridge import plugin

        plugin.setup()  # what the installed entry point does on `import alembic`
        line = CommandLine(prog="alembic")
        options = line.parser.parse_args(["-c", str(self.ini), *argv])
        out, err = io.StringIO(), io.StringIO()
        config = Config(file_=str(self.ini), ini_section=options.name, cmd_opts=options, stdout=out)
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                line.run_cmd(config, options)
            except SystemExit as exc:  # Alembic's `FAILED: ...` for a CommandError
                code = 1 if exc.code else 0
        return Outcome(code, out.getvalue(), err.getvalue())

    def goose(self, direction: str, version: int) -> None:
        """What the goose binary does for one file: create its table if missing,
        run the file's statements, then its row change (insert on up, delete on
        down)."""
        from llm_proxy.goose.files import discover
        from llm_proxy.goose.parser import parse
        from llm_proxy.store import goose_table
        from llm_proxy.store.tables import Tables

        (migration,) = [f for f in discover(self.project / "migrations") if f.version == version]
        section = parse(migration.path.read_text(encoding="utf-8"), direction)
        tables = Tables(self.database.settings.dialect)
        record = (
            goose_table.insert_sql(tables, version)
            if direction == "up"
            else goose_table.delete_sql(tables, version)
        )
        if self.database.goose_versions() is None:
            self.database.execute(goose_table.create_sql(tables), goose_table.insert_sql(tables, 0))
        self.database.execute(*section.statements, record)

    def add_python_revision(self, revision: str, parent: str, logged_as: int) -> None:
        """A Python revision after `parent` that logs ('up'|'down', `logged_as`)."""
        path = self.project / "alembic" / "versions" / f"{revision}_logged.py"
        path.write_text(
            PYTHON_REVISION.format(revision=revision, parent=parent, logged_as=logged_as),
            encoding="utf-8",
        )

    def llm_proxy(self, *argv: str) -> Outcome:
        """`llm-proxy migrate ARGV...` from the project directory."""
        result = cli("migrate", *argv)
        return Outcome(result.exit_code, result.stdout, result.stderr)


def open_doors(
    kind: str,
    *,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    versions: int = 6,
) -> Doors:
    """A project with `versions` logging goose files and a fresh database of
    `kind`; the working directory and environment point both doors at them."""
    project = make_project(tmp_path / "project", versions)
    database = database_for(kind, request, tmp_path)
    monkeypatch.chdir(project)
    for name, value in database.env.items():
        monkeypatch.setenv(name, value)
    return Doors(project, database)
