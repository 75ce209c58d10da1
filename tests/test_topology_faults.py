"""Faults under the pooled and clustered topologies: the lock
holder killed (-9) and taken over once its lease expires, PgBouncer restarted
mid-run, a Galera node killed mid-run. Each test starts its own PgBouncer or
cluster, since it kills or restarts it.

Outcomes only: who exited how, and what the database holds (every version run
exactly once; a transactional file's table exists iff its goose row does).
Where a kill lands is drawn from the seed.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from crowd import (
    SEEDS,
    Crowd,
    Result,
    assert_one_line_errors,
    crowd,
    crowd_migrations,
    mysql_reader,
    mysql_rows,
    partial_reruns,
    pg_reader,
    process_problems,
    run_crowd,
    state_problems,
    wait_until,
)
from galera_harness import GaleraCluster
from pgbouncer_harness import PgBouncer
from topology_fixtures import create_galera_database, drop_galera_database

pytestmark = pytest.mark.topology

LEASE = "3"
GALERA_NODE_LOSS_LEASE = "15"
# Files 1 and 3 are not transactional on every database (3 is NO TRANSACTION;
# MySQL commits DDL at once): "table iff goose row" is checked for the others.
TRANSACTIONAL = (2, 4, 5)


def _database(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def first_ok(group: Crowd) -> Callable[[], int | None]:
    """The process that printed goose's first `OK` line (the lock holder), if any."""

    def find() -> int | None:
        for n in group.processes:
            if "\nOK   " in "\n" + group.stdout(n):
                return n
        return None

    return find


def anyone_exited(group: Crowd) -> bool:
    return any(p.poll() is not None for p in group.processes.values())


def wait_for_holder(group: Crowd) -> int:
    find = first_ok(group)
    wait_until(
        lambda: find() is not None or anyone_exited(group),
        "a process to finish its first migration",
    )
    holder = find()
    assert holder is not None, "a process exited before any migration ran: " + "; ".join(
        group.result(n).describe() for n in group.processes
    )
    return holder


def half_applied(rows: Callable[[str], list], table_exists: Callable[[str], bool]) -> list[str]:
    """Transactional files whose table and goose row disagree."""
    goose = {int(r[0]) for r in rows("SELECT version_id FROM goose_db_version")}
    return [
        f"00{v:03d}: table t{v} {'exists' if table_exists(f't{v}') else 'missing'}, "
        f"goose row {'present' if v in goose else 'absent'}"
        for v in TRANSACTIONAL
        if table_exists(f"t{v}") != (v in goose)
    ]


def pg_table_exists(url: str) -> Callable[[str], bool]:
    reader = pg_reader(url)
    return lambda name: reader(f"SELECT to_regclass('public.{name}')")[0][0] is not None


def mysql_table_exists(url: str) -> Callable[[str], bool]:
    return lambda name: bool(
        mysql_rows(
            url,
            "SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() "
            "AND table_name = %s",
            (name,),
        )
    )


def takeover_problems(results: list[Result], killed: int) -> list[str]:
    """The killed holder died by SIGKILL, every other process exited 0, and one of
    them ran what the holder left."""
    problems = []
    if results[killed].returncode != -signal.SIGKILL:
        problems.append(f"the holder was not killed: {results[killed].describe()}")
    others = [r for r in results if r.index != killed]
    problems.extend(process_problems(others))
    if not any("OK   " in r.stdout for r in others):
        problems.append("no other process ran a migration after the holder was killed")
    return problems


# ---------------------------------------------------------------- lease takeover


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed{s}")
def test_killed_holder_is_taken_over_through_pgbouncer(
    make_pgbouncer: Callable[..., PgBouncer], postgres_url: str, tmp_path: Path, seed: int
) -> None:
    bouncer = make_pgbouncer("transaction", 4)
    # File 2 (transactional) sleeps long enough to be killed in the middle of.
    migrations = crowd_migrations(tmp_path / "migrations", "postgresql", slow={2: 2.0})
    pooled = bouncer.url(_database(postgres_url))
    command = [
        "migrate", "up", "--database-url", pooled, "--migrations-dir", str(migrations),
        "--lock-strategy", "table", "--lock-lease", LEASE,
    ]  # fmt: skip
    rng = random.Random(f"kill-holder-pgbouncer:{seed}")
    with crowd(tmp_path / "crowd", [command] * 6, seed) as group:
        group.release()
        holder = wait_for_holder(group)
        time.sleep(rng.uniform(0.0, 1.0))  # somewhere inside file 2's sleep
        group.signal(holder, signal.SIGKILL)
        results = group.finish()
    problems = takeover_problems(results, holder)
    problems.extend(state_problems(pg_reader(postgres_url)))
    problems.extend(half_applied(pg_reader(postgres_url), pg_table_exists(postgres_url)))
    assert problems == [], "\n".join(problems)


def _galera_commands(
    cluster: GaleraCluster, database: str, migrations: Path, per_node: int
) -> tuple[list[list[str]], list[int]]:
    commands, nodes = [], []
    for node in range(1, cluster.count + 1):
        for _ in range(per_node):
            commands.append(
                ["migrate", "up", "--database-url", cluster.url(node, database),
                 "--migrations-dir", str(migrations)]
            )  # fmt: skip
            nodes.append(node)
    return commands, nodes


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed{s}")
def test_killed_holder_is_taken_over_on_galera(
    make_galera: Callable[[], GaleraCluster], tmp_path: Path, seed: int
) -> None:
    cluster = make_galera()
    database = create_galera_database(cluster)
    migrations = crowd_migrations(tmp_path / "migrations", "mysql", slow={2: 2.0})
    commands, _ = _galera_commands(cluster, database, migrations, per_node=2)
    # Through the environment this time (the flags are the PgBouncer test's).
    env = {"LLM_PROXY_LOCK_STRATEGY": "table", "LLM_PROXY_LOCK_LEASE": LEASE}
    rng = random.Random(f"kill-holder-galera:{seed}")
    with crowd(tmp_path / "crowd", commands, seed, env=env) as group:
        group.release()
        holder = wait_for_holder(group)
        time.sleep(rng.uniform(0.0, 1.0))
        group.signal(holder, signal.SIGKILL)
        results = group.finish()
    problems = takeover_problems(results, holder)
    for node in range(1, cluster.count + 1):
        url = cluster.url(node, database)
        found = state_problems(mysql_reader(url))
        found += half_applied(mysql_reader(url), mysql_table_exists(url))
        problems.extend(f"node{node}: {p}" for p in found)
    drop_galera_database(cluster, database)
    assert problems == [], "\n".join(problems)


# ---------------------------------------------------------------- PgBouncer restarted


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed{s}")
def test_pgbouncer_restarted_mid_run(
    make_pgbouncer: Callable[..., PgBouncer], postgres_url: str, tmp_path: Path, seed: int
) -> None:
    bouncer = make_pgbouncer("transaction", 4)
    migrations = crowd_migrations(tmp_path / "migrations", "postgresql")
    pooled = bouncer.url(_database(postgres_url))
    command = ["migrate", "up", "--database-url", pooled, "--migrations-dir", str(migrations)]
    env = {"LLM_PROXY_LOCK_LEASE": LEASE}
    rng = random.Random(f"restart-pgbouncer:{seed}")
    with crowd(tmp_path / "crowd", [command] * 8, seed, env=env) as group:
        group.release()
        wait_for_holder(group)
        time.sleep(rng.uniform(0.0, 0.6))
        bouncer.restart()
        results = group.finish()
    # Each process either finished or failed with one line naming the trouble.
    assert_one_line_errors(results)
    problems = process_problems(results, allow_failures=True)
    retry = run_crowd(tmp_path / "retry", [command], seed, env=env)
    problems.extend(process_problems(retry))
    may_rerun = partial_reruns(results, retry)
    problems.extend(state_problems(pg_reader(postgres_url), may_rerun=may_rerun))
    assert problems == [], "\n".join(problems)


# ---------------------------------------------------------------- Galera node killed


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed{s}")
def test_galera_node_killed_mid_run(
    make_galera: Callable[[], GaleraCluster], tmp_path: Path, seed: int
) -> None:
    cluster = make_galera()
    database = create_galera_database(cluster)
    migrations = crowd_migrations(tmp_path / "migrations", "mysql")
    commands, nodes = _galera_commands(cluster, database, migrations, per_node=5)
    # Longer than the pause the survivors go through while the cluster notices the
    # dead node (evs.suspect_timeout, 5 s): with 3 s, a holder on a live node lost
    # its lease during that pause although nothing was wrong with it.
    env = {"LLM_PROXY_LOCK_LEASE": GALERA_NODE_LOSS_LEASE}
    rng = random.Random(f"kill-node:{seed}")
    victim = rng.randint(1, cluster.count)
    with crowd(tmp_path / "crowd", commands, seed, env=env) as group:
        group.release()
        wait_for_holder(group)
        time.sleep(rng.uniform(0.0, 0.6))
        done_before = {n for n, p in group.processes.items() if p.poll() is not None}
        cluster.kill(victim)
        results = group.finish()
    survivors = [r for r in results if nodes[r.index] != victim]
    on_dead = [r for r in results if nodes[r.index] == victim and r.index not in done_before]
    problems = process_problems(survivors)
    problems.extend(
        f"on the killed node{victim} but exited 0: {r.describe()}"
        for r in on_dead
        if r.returncode == 0
    )
    assert_one_line_errors(on_dead)
    for node in range(1, cluster.count + 1):
        if node != victim:
            rows = mysql_reader(cluster.url(node, database))
            found = state_problems(rows, may_rerun=partial_reruns(results))
            problems.extend(f"node{node}: {p}" for p in found)
    drop_galera_database(cluster, database)
    assert problems == [], f"node{victim} killed:\n" + "\n".join(problems)
