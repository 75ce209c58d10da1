"""SQLite foreign keys reflected with their ON DELETE / ON UPDATE actions.

SQLAlchemy's SQLite reflection reads the actions only from table-level
``FOREIGN KEY (...) REFERENCES ...`` clauses; for a column-level
``project_id TEXT REFERENCES projects(id) ON DELETE CASCADE`` (how the goose
files write it) it reports no action. Two things go wrong without this fix:
`alembic check` sees a changed foreign key on every SQLite database, and an
Alembic batch migration that rebuilds `tokens` would recreate the key without
its CASCADE. SQLite itself knows the actions (PRAGMA foreign_key_list); this
fills them in where SQLAlchemy left them out.
"""

from __future__ import annotations

from typing import Any

_INSTALLED_FLAG = "_llm_proxy_fk_actions"
_NO_ACTION = ("", "NO ACTION")


def install() -> None:
    """Wrap SQLiteDialect.get_foreign_keys once per process; idempotent."""
    from sqlalchemy.dialects.sqlite.base import SQLiteDialect

    if getattr(SQLiteDialect, _INSTALLED_FLAG, False):
        return
    original = SQLiteDialect.get_foreign_keys

    def get_foreign_keys(
        self: Any, connection: Any, table_name: str, schema: str | None = None, **kw: Any
    ) -> list[dict[str, Any]]:
        keys = original(self, connection, table_name, schema=schema, **kw)
        return with_pragma_actions(keys, _pragma_rows(connection, table_name, schema))

    SQLiteDialect.get_foreign_keys = get_foreign_keys  # type: ignore[method-assign]
    setattr(SQLiteDialect, _INSTALLED_FLAG, True)


def _pragma_rows(connection: Any, table_name: str, schema: str | None) -> list[tuple[Any, ...]]:
    quoted = '"' + table_name.replace('"', '""') + '"'
    prefix = '"' + schema.replace('"', '""') + '".' if schema else ""
    return list(connection.exec_driver_sql(f"PRAGMA {prefix}foreign_key_list({quoted})"))


def with_pragma_actions(
    keys: list[dict[str, Any]], pragma_rows: list[tuple[Any, ...]]
) -> list[dict[str, Any]]:
    """`keys` as reflected, each given the ondelete/onupdate PRAGMA reports for
    the same columns and table when reflection found none. Pure."""
    # PRAGMA foreign_key_list rows: id, seq, table, from, to, on_update, on_delete, match.
    by_id: dict[int, dict[str, Any]] = {}
    for row in pragma_rows:
        entry = by_id.setdefault(
            row[0], {"table": row[2], "columns": [], "on_update": row[5], "on_delete": row[6]}
        )
        entry["columns"].append(row[3])
    actions = {
        (tuple(e["columns"]), e["table"]): (e["on_delete"], e["on_update"]) for e in by_id.values()
    }
    fixed = []
    for key in keys:
        found = actions.get((tuple(key["constrained_columns"]), key["referred_table"]))
        options = dict(key.get("options") or {})
        if found:
            on_delete, on_update = (str(a or "").upper() for a in found)
            if "ondelete" not in options and on_delete not in _NO_ACTION:
                options["ondelete"] = on_delete
            if "onupdate" not in options and on_update not in _NO_ACTION:
                options["onupdate"] = on_update
        fixed.append({**key, "options": options})
    return fixed
