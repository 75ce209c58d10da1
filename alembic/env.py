"""Alembic environment for llm-proxy.

All configuration lives in llm_proxy.migrate.environment so that the stock
`alembic` command and `llm-proxy migrate` run migrations the same way.
"""

from llm_proxy.migrate.environment import run

# Set to the application's MetaData to use `alembic revision --autogenerate`.
target_metadata = None

run(target_metadata)
