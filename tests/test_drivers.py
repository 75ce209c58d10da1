"""Plain driver connections: what a user sees when something is missing."""

from __future__ import annotations

import importlib

import pytest
from conftest import settings_for

from llm_proxy.db import drivers
from llm_proxy.errors import DatabaseUnavailable


@pytest.mark.parametrize(
    ("url", "module", "extra"),
    [
        ("postgres://app:secret@127.0.0.1:5432/llm", "psycopg", "postgres"),
        ("mysql://app:secret@127.0.0.1:3306/llm", "pymysql", "mysql"),
    ],
)
def test_missing_driver_names_the_extra(
    url: str, module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.import_module

    def without_driver(name: str, *args: object) -> object:
        if name == module:
            raise ModuleNotFoundError(f"No module named {module!r}")
        return real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib, "import_module", without_driver)
    with pytest.raises(DatabaseUnavailable) as caught:
        drivers.connect(settings_for(database_url=url))
    message = str(caught.value)
    assert message == f"the {module} driver is not installed: pip install 'llm-proxy[{extra}]'"
    assert "secret" not in message


# ---------------------------------------------------------------- SQLite statement strings


@pytest.mark.parametrize(
    ("statement", "pieces"),
    [
        ("SELECT 1;", ["SELECT 1;"]),
        ("SELECT 1", ["SELECT 1"]),
        ("SELECT 1; -- done; really", ["SELECT 1; -- done; really"]),
        ("SELECT 1; SELECT 2;", ["SELECT 1;", " SELECT 2;"]),
        ("SELECT 1;\nSELECT 2", ["SELECT 1;", "\nSELECT 2"]),
        ("SELECT ';'; SELECT 'it''s;';", ["SELECT ';';", " SELECT 'it''s;';"]),
        ('SELECT 1 AS ";"; SELECT 2 AS [a;b];', ['SELECT 1 AS ";";', " SELECT 2 AS [a;b];"]),
        ("SELECT `;`; SELECT 2;", ["SELECT `;`;", " SELECT 2;"]),
        ("SELECT 1 /* ; */; SELECT 2; /* tail */", ["SELECT 1 /* ; */;", " SELECT 2; /* tail */"]),
        ("SELECT 1 -- ;\n; SELECT 2;", ["SELECT 1 -- ;\n;", " SELECT 2;"]),
        (
            "CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE a SET x = 1; DELETE FROM b; END;"
            " CREATE TABLE c (x);",
            [
                "CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE a SET x = 1; DELETE FROM b; END;",
                " CREATE TABLE c (x);",
            ],
        ),
        ("SELECT 'unclosed;", ["SELECT 'unclosed;"]),
    ],
)
def test_sqlite_statement_string_is_cut_where_sqlite_ends_statements(
    statement: str, pieces: list[str]
) -> None:
    from llm_proxy import dialects

    assert dialects.SQLITE.split_for_driver(statement) == pieces


def test_sqlite_pieces_run_in_one_transaction() -> None:
    # executescript() would COMMIT first; the pieces run on the caller's transaction.
    import sqlite3

    from llm_proxy import dialects

    connection = sqlite3.connect(":memory:", isolation_level=None)
    run = drivers.statement_runner(connection)
    connection.execute("BEGIN")
    for piece in dialects.SQLITE.split_for_driver("CREATE TABLE a (x); INSERT INTO a VALUES (1);"):
        run(piece)
    assert connection.in_transaction
    connection.execute("ROLLBACK")
    assert connection.execute("SELECT name FROM sqlite_master").fetchall() == []


@pytest.mark.parametrize(
    ("sql", "found"),
    [
        ("SELECT 1", []),
        ("INSERT INTO p VALUES (:y, ?, ?7, @who, $v, #h)", [":y", "?", "?7", "@who", "$v", "#h"]),
        ("SELECT $a::b(c) FROM t", ["$a::b(c)"]),
        ("SELECT ':y', \"?\", `@w`, [$v] -- :c\n/* ?d */", []),
        ("SELECT price$ FROM t", []),  # "$" inside a name is part of it
        ("SELECT 'it''s :y' || :z", [":z"]),
    ],
)
def test_sqlite_parameters_outside_quotes_and_comments(sql: str, found: list[str]) -> None:
    from llm_proxy import dialects

    assert dialects.SQLITE.parameter_markers(sql) == found
    assert dialects.POSTGRESQL.parameter_markers(sql) == []
