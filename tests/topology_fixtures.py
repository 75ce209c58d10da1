"""Fixtures for the pooled and clustered topologies (a pytest plugin
loaded from conftest): a private PgBouncer in session and in transaction pooling,
a 3-node Galera cluster, and factories for dedicated instances that a fault test
may kill or restart. Unavailable software or a harness that cannot start skips
the test with the reason, except under CI=true, where it fails.

Every test using one of these gets the `topology` marker (pyproject), so a quick
local run can leave them out with `-m "not topology"`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from conftest import PG_ADMIN_URL, _unavailable
from galera_harness import GaleraCluster
from galera_harness import HarnessError as GaleraError
from pgbouncer_harness import HarnessError as PgBouncerError
from pgbouncer_harness import PgBouncer

TOPOLOGY_FIXTURES = {
    "pgbouncer_session",
    "pgbouncer_transaction",
    "galera",
    "make_pgbouncer",
    "make_galera",
    "galera_database",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if TOPOLOGY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.topology)


def _postgres_reachable() -> None:
    import psycopg

    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        _unavailable("PostgreSQL behind PgBouncer", " ".join(str(exc).split())[:200])


def _start_pgbouncer(pool_mode: str, pool_size: int) -> PgBouncer:
    _postgres_reachable()
    try:
        return PgBouncer(pool_mode, pool_size).start()
    except (PgBouncerError, OSError) as exc:
        _unavailable(f"PgBouncer ({pool_mode} pooling)", str(exc))
        raise  # unreachable: _unavailable skips or fails


@pytest.fixture(scope="session")
def pgbouncer_session() -> Iterator[PgBouncer]:
    bouncer = _start_pgbouncer("session", 4)
    try:
        yield bouncer
    finally:
        bouncer.close()


@pytest.fixture(scope="session")
def pgbouncer_transaction() -> Iterator[PgBouncer]:
    bouncer = _start_pgbouncer("transaction", 4)
    try:
        yield bouncer
    finally:
        bouncer.close()


@pytest.fixture
def make_pgbouncer() -> Iterator[Callable[..., PgBouncer]]:
    """A dedicated PgBouncer for a test that restarts or starves it."""
    started: list[PgBouncer] = []

    def make(pool_mode: str = "transaction", pool_size: int = 4) -> PgBouncer:
        bouncer = _start_pgbouncer(pool_mode, pool_size)
        started.append(bouncer)
        return bouncer

    try:
        yield make
    finally:
        for bouncer in started:
            bouncer.close()


def _start_galera() -> GaleraCluster:
    try:
        import pymysql  # noqa: F401
    except ImportError as exc:  # pragma: no cover - the test extra installs it
        _unavailable("MySQL driver", str(exc))
    try:
        return GaleraCluster().start()
    except (GaleraError, OSError) as exc:
        _unavailable("MariaDB Galera cluster", str(exc))
        raise


@pytest.fixture(scope="session")
def galera() -> Iterator[GaleraCluster]:
    cluster = _start_galera()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def make_galera() -> Iterator[Callable[[], GaleraCluster]]:
    """A dedicated cluster for a test that kills a node."""
    started: list[GaleraCluster] = []

    def make() -> GaleraCluster:
        cluster = _start_galera()
        started.append(cluster)
        return cluster

    try:
        yield make
    finally:
        for cluster in started:
            cluster.stop()


def create_galera_database(cluster: GaleraCluster) -> str:
    """A fresh database, created on node 1 (replicated to the others)."""
    from crowd import mysql_rows

    name = f"llmproxy_test_{uuid.uuid4().hex[:12]}"
    mysql_rows(cluster.url(1), f"CREATE DATABASE `{name}`")
    return name


def drop_galera_database(cluster: GaleraCluster, name: str) -> None:
    from crowd import mysql_rows

    for node in range(1, cluster.count + 1):
        if cluster.alive(node):
            mysql_rows(cluster.url(node), f"DROP DATABASE IF EXISTS `{name}`")
            return


@pytest.fixture
def galera_database(galera: GaleraCluster) -> Iterator[str]:
    name = create_galera_database(galera)
    try:
        yield name
    finally:
        drop_galera_database(galera, name)
