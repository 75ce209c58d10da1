"""Many llm-proxy processes migrating one PostgreSQL database through PgBouncer:
the migration lock must hold whatever the pooling.

The database is created and read directly on 5432; only the migrators go
through the pooler (pool of 4 server connections for 16 clients). Each test is
repeated over seeded rounds: spawn order and start jitter come from the seed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import PG_ADMIN_URL
from crowd import (
    SEEDS,
    Result,
    crowd_migrations,
    crowd_problems,
    pg_advisory_locks,
    pg_reader,
    run_crowd,
    run_server_crowd,
)
from pgbouncer_harness import PgBouncer

pytestmark = pytest.mark.topology

MIGRATORS = 16
SERVERS = 8


def _database(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _assert_clean_outcome(postgres_url: str, results: list[Result]) -> None:
    problems = crowd_problems(results, pg_reader(postgres_url))
    left = pg_advisory_locks(PG_ADMIN_URL, _database(postgres_url))
    if left:
        problems.append(f"advisory locks left (pid, key, granted, state, app): {left}")
    assert problems == [], "\n".join(problems)


@pytest.fixture(params=["session", "transaction"])
def bouncer(request: pytest.FixtureRequest) -> PgBouncer:
    return request.getfixturevalue(f"pgbouncer_{request.param}")


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed{s}")
def test_sixteen_migrators_through_pgbouncer(
    bouncer: PgBouncer, postgres_url: str, tmp_path: Path, seed: int
) -> None:
    migrations = crowd_migrations(tmp_path / "migrations", "postgresql")
    pooled = bouncer.url(_database(postgres_url))
    command = ["migrate", "up", "--database-url", pooled, "--migrations-dir", str(migrations)]
    results = run_crowd(tmp_path / "crowd", [command] * MIGRATORS, seed)
    _assert_clean_outcome(postgres_url, results)


@pytest.mark.parametrize("pool_mode", ["session", "transaction"])
@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed{s}")
def test_eight_servers_start_through_pgbouncer(
    make_pgbouncer: Callable[..., PgBouncer],
    pool_mode: str,
    postgres_url: str,
    tmp_path: Path,
    seed: int,
) -> None:
    # A PgBouncer of its own: on main, a stuck server crowd left the shared instance
    # timing out later logins (to other databases) for the tests after it.
    bouncer = make_pgbouncer(pool_mode, 4)
    migrations = crowd_migrations(tmp_path / "migrations", "postgresql")
    pooled = bouncer.url(_database(postgres_url))
    results = run_server_crowd(
        tmp_path / "servers",
        SERVERS,
        ["--migrations-dir", str(migrations)],
        seed,
        env={"DATABASE_URL": pooled},
    )
    _assert_clean_outcome(postgres_url, results)


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed{s}")
def test_lock_url_bypasses_transaction_pooling(
    pgbouncer_transaction: PgBouncer, postgres_url: str, tmp_path: Path, seed: int
) -> None:
    """The advisory lock held on a direct connection (--lock-url, 5432) while the
    migration itself runs through transaction pooling."""
    migrations = crowd_migrations(tmp_path / "migrations", "postgresql")
    pooled = pgbouncer_transaction.url(_database(postgres_url))
    command = [
        "migrate",
        "up",
        "--database-url",
        pooled,
        "--migrations-dir",
        str(migrations),
        "--lock-strategy",
        "advisory",
        "--lock-url",
        postgres_url,
    ]
    results = run_crowd(tmp_path / "crowd", [command] * MIGRATORS, seed)
    _assert_clean_outcome(postgres_url, results)


@pytest.mark.parametrize("seed", SEEDS[:1], ids=lambda s: f"seed{s}")
def test_lock_url_from_the_environment(
    pgbouncer_transaction: PgBouncer, postgres_url: str, tmp_path: Path, seed: int
) -> None:
    """The same through LLM_PROXY_MIGRATION_DATABASE_URL and LLM_PROXY_LOCK_STRATEGY."""
    migrations = crowd_migrations(tmp_path / "migrations", "postgresql")
    pooled = pgbouncer_transaction.url(_database(postgres_url))
    command = ["migrate", "up", "--database-url", pooled, "--migrations-dir", str(migrations)]
    env = {
        "LLM_PROXY_MIGRATION_DATABASE_URL": postgres_url,
        "LLM_PROXY_LOCK_STRATEGY": "advisory",
    }
    results = run_crowd(tmp_path / "crowd", [command] * MIGRATORS, seed, env=env)
    _assert_clean_outcome(postgres_url, results)


def test_a_lock_url_through_the_pooler_is_refused(
    pgbouncer_transaction: PgBouncer, postgres_url: str, tmp_path: Path
) -> None:
    """A session lock taken through the pooler would protect nothing: the lock URL
    must reach the server itself. Nothing runs."""
    from conftest import run_cli

    migrations = crowd_migrations(tmp_path / "migrations", "postgresql")
    pooled = pgbouncer_transaction.url(_database(postgres_url))
    result = run_cli(
        "migrate", "up", "--database-url", postgres_url, "--lock-url", pooled,
        "--migrations-dir", str(migrations),
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("Error: --lock-url must reach the database server directly")
    assert len(result.stderr.strip().splitlines()) == 1
    assert pg_reader(postgres_url)("SELECT to_regclass('goose_db_version')") == [(None,)]


def test_auto_finds_the_pooler_and_takes_the_lease(
    pgbouncer_session: PgBouncer, postgres_url: str, tmp_path: Path
) -> None:
    """Even session pooling (where an advisory lock on one connection would hold)
    is told apart from a direct connection: the lease's table is made (a direct
    connection keeps the advisory lock and makes none: tests/test_lock_strategy.py)."""
    from conftest import run_cli

    migrations = crowd_migrations(tmp_path / "migrations", "postgresql")
    pooled = pgbouncer_session.url(_database(postgres_url))
    result = run_cli("migrate", "up", "--database-url", pooled, "--migrations-dir", str(migrations))
    assert result.returncode == 0, result.stderr
    read = pg_reader(postgres_url)
    assert read("SELECT count(*) FROM llm_proxy_migration_lock") == [(0,)]


def test_no_transaction_file_behind_the_pooler_runs_without_session_limits(
    pgbouncer_transaction: PgBouncer, postgres_url: str, tmp_path: Path
) -> None:
    """A NO TRANSACTION file's timeouts would be session settings, which transaction
    pooling hands to other clients: behind the pooler it runs without them and says
    so; on a direct connection it keeps them, silently."""
    from conftest import run_cli

    migrations = crowd_migrations(tmp_path / "migrations", "postgresql")
    pooled = pgbouncer_transaction.url(_database(postgres_url))
    result = run_cli("migrate", "up", "--database-url", pooled, "--migrations-dir", str(migrations))
    assert result.returncode == 0, result.stderr
    warning = "warning: 00003_t3_no_transaction.sql runs without --ddl-lock-timeout"
    assert [line for line in result.stderr.splitlines() if line.startswith("warning:")] == [
        line for line in result.stderr.splitlines() if line.startswith(warning)
    ]
    assert warning in result.stderr
    reset = run_cli(
        "migrate", "reset", "--database-url", postgres_url, "--migrations-dir", str(migrations)
    )
    assert reset.returncode == 0, reset.stderr
    direct = run_cli(
        "migrate", "up", "--database-url", postgres_url, "--migrations-dir", str(migrations)
    )
    assert direct.returncode == 0, direct.stderr
    assert "00003_t3_no_transaction.sql" in direct.stdout  # it ran again, directly
    assert "warning:" not in direct.stderr
