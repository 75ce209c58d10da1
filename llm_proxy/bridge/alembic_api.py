"""Every use of Alembic's private API, in one place.

Alembic offers no public way to list a script directory's Python revisions
before checking the graph they form, to create alembic_version on demand, to
change how `ScriptDirectory.from_config` builds a directory, or to ask which
command env.py is running and what it is about to do. Each helper below names
what it touches; all were checked against Alembic 1.18 to 1.20, the range
pyproject.toml allows (raise its upper bound only after checking these against
the new release; tests/test_stock_alembic.py exercises each of them).
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


# What the running command is. Alembic hands env.py the command's work function
# (``fn``) and options in ``EnvironmentContext.context_opts``, and offers no
# public way to ask which command runs; env.py needs to know before anything
# is written.

# Work functions of the commands that only read the database: `current` (which
# alone also says so, with ``dont_mutate``), `show current`, `history` showing
# the current revision, `edit current`, and `revision` with revision_environment.
_READ_ONLY_WORK = frozenset(
    {"display_version", "show_current", "_display_current_history", "edit_current", "nothing"}
)


def _command_options(context: Any) -> dict[str, Any]:
    """``context_opts`` of the running EnvironmentContext; `context` is it, or the
    ``alembic.context`` module that proxies it (``_proxy``)."""
    return getattr(context, "_proxy", context).context_opts


def reads_only(context: Any) -> bool:
    """Whether the running command only reads the database. A command not known
    here counts as one that writes."""
    options = _command_options(context)
    work = getattr(options.get("fn"), "__name__", "")
    return bool(options.get("dont_mutate")) or work in _READ_ONLY_WORK


def is_stamp(context: Any) -> bool:
    """Whether the running command is `stamp`: the one command that passes its
    ``purge`` flag (set or not) into context_opts."""
    return "purge" in _command_options(context)


def purges(context: Any) -> bool:
    """`stamp --purge`: alembic_version is emptied before stamping."""
    return bool(_command_options(context).get("purge"))


def planned_steps(context: Any, migration_context: Any, heads: Any) -> list[Any] | None:
    """What `upgrade`, `downgrade` or `stamp` will do starting from `heads`, as
    ``MigrationInfo`` objects, before it does anything. These commands name a
    destination (``destination_rev``) and their work function only computes
    steps from the revision map, so calling it early changes nothing. None for
    every other command."""
    options = _command_options(context)
    if "destination_rev" not in options or options.get("fn") is None:
        return None
    return [step.info for step in options["fn"](tuple(heads), migration_context)]
