"""Every use of Alembic's private API, in one place.

Alembic offers no public way to list a script directory's Python revisions
before checking the graph they form, to create alembic_version on demand, or
to change how `ScriptDirectory.from_config` builds a directory. Each helper
below names what it touches; all were checked against Alembic 1.13 to 1.20.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def load_python_scripts(directory: Any) -> list[Any]:
    """The Script objects of the .py revisions (``ScriptDirectory._load_revisions``),
    duplicates and unknown parents included: the graph is checked by the caller."""
    return list(directory._load_revisions())


def ensure_version_table(migration_context: Any) -> None:
    """Create alembic_version as Alembic would (``MigrationContext._ensure_version_table``)."""
    migration_context._ensure_version_table()


def migration_transaction(migration_context: Any) -> Any:
    """The transaction Alembic gives each migration when ``transaction_per_migration``
    is set (``MigrationContext.begin_transaction(_per_migration=True)``): the one a
    migration's ``autocommit_block()`` knows how to leave and re-enter."""
    return migration_context.begin_transaction(_per_migration=True)


def original_from_config() -> Callable[[Any, Any], Any]:
    """The function behind the classmethod ``ScriptDirectory.from_config``, as
    Alembic defines it (before any patch of ours)."""
    from alembic.script.base import ScriptDirectory

    current = ScriptDirectory.from_config.__func__  # type: ignore[attr-defined]
    return getattr(current, "__wrapped__", current)


def replace_from_config(function: Callable[[Any, Any], Any]) -> None:
    """Install `function(cls, config)` as ``ScriptDirectory.from_config``."""
    from alembic.script.base import ScriptDirectory

    function.__wrapped__ = original_from_config()  # type: ignore[attr-defined]
    ScriptDirectory.from_config = classmethod(function)  # type: ignore[method-assign,assignment]
