"""Alembic environment for llm-proxy.

All configuration lives in llm_proxy.bridge.env so that the stock `alembic`
command and `llm-proxy migrate` run migrations the same way.
"""

from llm_proxy.bridge.env import run
from llm_proxy.db import sqlite_reflection
from llm_proxy.models import Base

# The models `alembic revision --autogenerate` and `alembic check` compare with
# the database. Edit llm_proxy/models.py, then autogenerate a revision.
# Types are compared (Alembic's default). Server defaults are not: Alembic's
# comparison misreads some (on MariaDB any default of a string column is taken
# for a quoted literal, so `DEFAULT (UUID())` always differs); tests/test_models.py
# checks the models' defaults against SQLite and PostgreSQL instead.
target_metadata = Base.metadata

# SQLite reports ON DELETE of column-level REFERENCES only through a PRAGMA.
sqlite_reflection.install()

run(target_metadata)
