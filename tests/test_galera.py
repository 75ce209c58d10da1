"""Fifteen llm-proxy processes migrating one database on a 3-node MariaDB Galera
cluster, five per node: GET_LOCK is node-local there, so the lock
must be something every node sees. Every node must agree on the outcome.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from crowd import (
    SEEDS,
    Result,
    crowd_migrations,
    mysql_reader,
    process_problems,
    run_crowd,
    state_problems,
)
from galera_harness import GaleraCluster

pytestmark = pytest.mark.topology

PER_NODE = 5


def node_commands(cluster: GaleraCluster, database: str, migrations: Path) -> list[list[str]]:
    return [
        [
            "migrate",
            "up",
            "--database-url",
            cluster.url(node, database),
            "--migrations-dir",
            str(migrations),
        ]
        for node in range(1, cluster.count + 1)
        for _ in range(PER_NODE)
    ]


def node_problems(
    cluster: GaleraCluster, database: str, results: list[Result], allow_failures: bool = False
) -> list[str]:
    """Failed processes, then each live node's view of the outcome."""
    problems = process_problems(results, allow_failures=allow_failures)
    for node in range(1, cluster.count + 1):
        if cluster.alive(node):
            found = state_problems(mysql_reader(cluster.url(node, database)))
            problems.extend(f"node{node}: {p}" for p in found)
    return problems


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed{s}")
def test_fifteen_migrators_on_three_galera_nodes(
    galera: GaleraCluster, galera_database: str, tmp_path: Path, seed: int
) -> None:
    migrations = crowd_migrations(tmp_path / "migrations", "mysql")
    commands = node_commands(galera, galera_database, migrations)
    results = run_crowd(tmp_path / "crowd", commands, seed)
    problems = node_problems(galera, galera_database, results)
    assert problems == [], "\n".join(problems)
