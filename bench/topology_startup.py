"""How long the test harnesses take to bring up PgBouncer and a Galera cluster.

    python bench/topology_startup.py [--runs 3]

Start (until a query answers through it) and restart of a private PgBouncer;
forming a 3-node Galera cluster (until every node reports wsrep_cluster_size=3
and wsrep_ready=ON) and stopping it. Medians, minimum and maximum over the runs.
Needs PostgreSQL on 127.0.0.1:5432, /usr/sbin/pgbouncer, mariadbd and galera-4.
Not part of the test run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from galera_harness import GaleraCluster  # noqa: E402
from pgbouncer_harness import PgBouncer  # noqa: E402


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def report(name: str, seconds: list[float]) -> None:
    print(
        f"{name:<28} median {statistics.median(seconds):7.2f}s  "
        f"min {min(seconds):6.2f}s  max {max(seconds):6.2f}s  (n={len(seconds)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs

    starts, restarts = [], []
    for _ in range(runs):
        bouncer = PgBouncer("transaction", 4)
        starts.append(timed(bouncer.start))
        restarts.append(timed(bouncer.restart))
        bouncer.close()
    report("pgbouncer start", starts)
    report("pgbouncer restart", restarts)

    forms, stops = [], []
    for _ in range(runs):
        cluster = GaleraCluster()
        forms.append(timed(cluster.start))
        stops.append(timed(cluster.stop))
    report("galera 3-node form", forms)
    report("galera stop", stops)


if __name__ == "__main__":
    main()
