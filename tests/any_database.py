"""One test body for SQLite, PostgreSQL and MySQL: the `database` fixture.

A test that takes `database` (its module imports `database_fixture`) runs
once per dialect against a fresh database (the server ones skip, with the
reason, when their server is unreachable).
`Database` names it on the command line, builds Settings for it, and reads or
writes its tables directly through the plain driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import settings_for

from llm_proxy.config import Settings
from llm_proxy.db import drivers

DIALECTS = ("sqlite", "postgresql", "mysql")


@dataclass(frozen=True)
class Database:
    """A fresh database of one dialect."""

    dialect: str
    target: str  # the SQLite path or the server URL

    @property
    def options(self) -> tuple[str, ...]:
        """The CLI options that name it."""
        if self.dialect == "sqlite":
            return ("--db", self.target)
        return ("--database-url", self.target)

    def settings(self, migrations_dir: Path | None = None) -> Settings:
        extra: dict[str, Any] = {}
        if migrations_dir is not None:
            extra["migrations_dir"] = str(migrations_dir)
        if self.dialect == "sqlite":
            return settings_for(db=self.target, **extra)
        return settings_for(database_url=self.target, **extra)

    def sql(self, statement: str) -> list[tuple[Any, ...]]:
        """Run one statement (autocommit); its rows."""
        with drivers.connection(self.settings(), create=True) as connection:
            return drivers.rows(connection, statement)

    def has_table(self, name: str) -> bool:
        if self.dialect == "sqlite":
            if not Path(self.target).exists():
                return False
            query = f"SELECT name FROM sqlite_master WHERE name = '{name}'"
        else:
            schema = "DATABASE()" if self.dialect == "mysql" else "current_schema()"
            query = (
                "SELECT table_name FROM information_schema.tables "
                f"WHERE table_schema = {schema} AND table_name = '{name}'"
            )
        return bool(self.sql(query))

    def goose_rows(self) -> list[tuple[int, bool]]:
        rows = self.sql("SELECT version_id, is_applied FROM goose_db_version ORDER BY id")
        return [(int(version), bool(applied)) for version, applied in rows]

    def alembic_heads(self) -> list[str]:
        return sorted(str(r[0]) for r in self.sql("SELECT version_num FROM alembic_version"))

    def journal(self) -> list[str]:
        return sorted(str(r[0]) for r in self.sql("SELECT revision FROM llm_proxy_migrations"))


@pytest.fixture(name="database", params=DIALECTS)
def database_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """Import `database_fixture` into a test module to use `database` there."""
    if request.param == "sqlite":
        return Database("sqlite", str(tmp_path / "db" / "llm-proxy.db"))
    fixture = "postgres_url" if request.param == "postgresql" else "mysql_url"
    return Database(request.param, request.getfixturevalue(fixture))
