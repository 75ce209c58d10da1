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
