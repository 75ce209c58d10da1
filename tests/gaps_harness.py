"""A database, a goose directory and the goose model, side by side.

Each goose file V creates table tV and writes ("up", V) into ran_log; its Down
drops tV and writes ("down", V). ran_log is created by the harness, not by a
migration, so it proves which migrations ran, in which order, and that none
ran twice. `goose(V)` does what the goose binary does for one file (its
statements and its goose_db_version row, in one transaction, and the same in the model), so
tests can let the two tools take turns. `check()` compares everything with the model.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conftest import cli, settings_for, write_migration
from goose_model import GooseError, GooseModel

from llm_proxy.config import Settings
from llm_proxy.db import drivers
from llm_proxy.goose.parser import parse
from llm_proxy.store import goose_table
from llm_proxy.store.tables import Session, Tables

LOG_TABLE = "ran_log"


def file_name(version: int) -> str:
    return f"{version:05d}_t{version}.sql"


def write_files(directory: Path, versions: tuple[int, ...]) -> None:
    for version in versions:
        write_migration(
            directory,
            file_name(version),
            f"CREATE TABLE t{version} (id INTEGER);\n"
            f"INSERT INTO {LOG_TABLE} (direction, version) VALUES ('up', {version});",
            f"DROP TABLE t{version};\n"
            f"INSERT INTO {LOG_TABLE} (direction, version) VALUES ('down', {version});",
        )


@dataclass
class Outcome:
    """What one command did: exit status and output, or the model's error."""

    failed: bool
    output: str = ""


@dataclass
class Harness:
    """One database (SQLite file or PostgreSQL database), one goose directory."""

    settings: Settings
    args: tuple[str, ...]  # the CLI's database and directory options
    directory: Path
    model: GooseModel = field(default_factory=lambda: GooseModel(()))

    @classmethod
    def sqlite(cls, tmp_path: Path, versions: tuple[int, ...]) -> Harness:
        directory = tmp_path / f"migrations-{uuid.uuid4().hex[:6]}"
        directory.mkdir()
        path = directory.parent / f"{directory.name}.db"
        args = ("--db", str(path), "--migrations-dir", str(directory))
        return cls._made(settings_for(db=str(path), migrations_dir=str(directory)), args, versions)

    @classmethod
    def postgres(
        cls, url: str, tmp_path: Path, versions: tuple[int, ...], fresh_schema: bool = False
    ) -> Harness:
        """`fresh_schema`: empty the database's public schema first (one database
        serves many examples of a property test)."""
        directory = tmp_path / f"migrations-{uuid.uuid4().hex[:6]}"
        directory.mkdir()
        args = ("--database-url", url, "--migrations-dir", str(directory))
        settings = settings_for(database_url=url, migrations_dir=str(directory))
        if fresh_schema:
            with drivers.connection(settings) as connection:
                drivers.rows(connection, "DROP SCHEMA public CASCADE")
                drivers.rows(connection, "CREATE SCHEMA public")
        return cls._made(settings, args, versions)

    @classmethod
    def _made(cls, settings: Settings, args: tuple[str, ...], versions: tuple[int, ...]) -> Harness:
        harness = cls(settings, args, settings.migrations_dir, GooseModel(versions))
        write_files(harness.directory, versions)
        serial = (
            "INTEGER PRIMARY KEY AUTOINCREMENT"
            if settings.dialect.name == "sqlite"
            else ("SERIAL PRIMARY KEY")
        )
        harness.sql(f"CREATE TABLE {LOG_TABLE} (id {serial}, direction VARCHAR(4), version BIGINT)")
        return harness

    # ------------------------------------------------------------ the database

    @contextmanager
    def connection(self) -> Iterator[Any]:
        with drivers.connection(self.settings, create=True) as connection:
            yield connection

    def sql(self, *statements: str) -> list[tuple[Any, ...]]:
        result: list[tuple[Any, ...]] = []
        with self.connection() as connection:
            for statement in statements:
                result = drivers.rows(connection, statement)
        return result

    def versions_by_id(self) -> list[int] | None:
        """goose_db_version's versions in id order; None without the table."""
        with self.connection() as connection:
            session = Session(drivers.executor(connection), Tables.of(self.settings))
            if not session.exists("goose_db_version"):
                return None
            rows = drivers.rows(connection, "SELECT version_id FROM goose_db_version ORDER BY id")
        return [int(row[0]) for row in rows]

    def ran(self) -> list[tuple[str, int]]:
        rows = self.sql(f"SELECT direction, version FROM {LOG_TABLE} ORDER BY id")
        return [(str(d), int(v)) for d, v in rows]

    def version_tables(self) -> set[int]:
        """The versions whose table tV exists (the schema the files built)."""
        if self.settings.dialect.name == "sqlite":
            names = self.sql("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            names = self.sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {int(n[0][1:]) for n in names if n[0][0] == "t" and n[0][1:].isdigit()}

    def alembic_heads(self) -> list[str]:
        with self.connection() as connection:
            session = Session(drivers.executor(connection), Tables.of(self.settings))
            if not session.exists("alembic_version"):
                return []
            rows = drivers.rows(connection, "SELECT version_num FROM alembic_version")
        return sorted(str(row[0]) for row in rows)

    def reconciled_heads(self) -> list[str]:
        """The heads alembic_version should hold for what goose_db_version says."""
        from llm_proxy.migrate.project import Project

        return sorted(Project.load(self.settings).read_state().view.alembic_heads)

    # ------------------------------------------------------------ acting

    def cli(self, *args: str) -> Outcome:
        result = cli("migrate", *args, *self.args)
        return Outcome(result.exit_code != 0, result.stdout + result.stderr)

    def goose(self, version: int, direction: str = "up") -> None:
        """What the goose binary does for one file: the section's statements and
        goose's row change, in one transaction (the table created first if missing)."""
        path = self.directory / file_name(version)
        section = parse(path.read_text(encoding="utf-8"), direction)
        tables = Tables.of(self.settings)
        with self.connection() as connection:
            execute = drivers.executor(connection)
            if not Session(execute, tables).exists("goose_db_version"):
                execute(goose_table.create_sql(tables))
                execute(goose_table.insert_sql(tables, 0))
            execute("BEGIN")
            for statement in section.statements:
                execute(statement)
            change = goose_table.insert_sql if direction == "up" else goose_table.delete_sql
            execute(change(tables, version))
            execute("COMMIT")
        if direction == "up":
            self.model.apply_one(version)
        else:
            self.model.roll_back_one(version)

    def create_goose_table(self) -> None:
        """goose_db_version with goose's initial row, as goose creates it (and the model)."""
        with self.connection() as connection:
            goose_table.ensure(Session(drivers.executor(connection), Tables.of(self.settings)))
        self.model = GooseModel.with_rows(self.model.files, (0,))

    def model_runs(self, action: str, *arguments: Any) -> Outcome:
        """Run a model command; its GooseError is the expected failure."""
        try:
            getattr(self.model, action)(*arguments)
        except GooseError as error:
            return Outcome(True, str(error))
        return Outcome(False)

    # ------------------------------------------------------------ comparing

    def check(self) -> None:
        """The database agrees with the model: rows in id order, what ran, the schema."""
        rows = self.versions_by_id()
        expected_rows = self.model.versions_by_id if self.model.rows is not None else None
        assert rows == expected_rows, f"goose_db_version {rows} != model {expected_rows}"
        assert self.ran() == self.model.ran
        assert self.version_tables() == self.model.applied()

    def check_alembic(self) -> None:
        """alembic_version names the heads goose_db_version implies."""
        assert self.alembic_heads() == self.reconciled_heads()

    def check_alembic_claims_nothing_unapplied(self) -> None:
        """Whatever alembic_version holds, the goose versions it implies are applied."""
        from llm_proxy.migrate.project import Project

        graph = Project.load(self.settings).graph
        heads = [h for h in self.alembic_heads() if h in graph.nodes]
        implied = graph.ancestors(heads) if heads else set()
        claimed = {graph.nodes[r].goose_version for r in implied}
        assert claimed - {None} <= self.model.applied()
