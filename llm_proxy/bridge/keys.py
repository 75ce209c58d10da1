"""The names under which things travel in an Alembic Config's ``attributes``.

A module of its own (importing nothing) so that the plugin can look for them
in any project's Config without importing the rest of llm-proxy.
"""

RUN_KEY = "llm_proxy_run"  # an llm-proxy command's Run; also in the migration context's opts
GIVEN_CONNECTION_KEY = "connection"  # Alembic's cookbook: a Connection or Engine of the caller's
