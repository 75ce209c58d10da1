"""When a migration gave up on a table lock: how long to wait before the next
try, and the lines that say so (pure: the runner sleeps and prints).

Giving up is the point: a DDL statement queued for its lock makes every later
reader and writer of the table queue behind it, so the whole service waits as
long as the oldest transaction on the table. A short lock timeout bounds that
queue; between tries the table is free again and the readers catch up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# Each wait doubles from the lock timeout up to this, then jitter takes
# 0-50 % off, so instances migrating at once do not retry in step.
LONGEST_PAUSE = 30.0


def pause_before(retry: int, lock_timeout: float, rng: random.Random | None = None) -> float:
    """Seconds to sleep before retry number `retry` (1 for the first)."""
    base = min(LONGEST_PAUSE, lock_timeout * 2 ** (retry - 1))
    return base * (0.5 + 0.5 * (rng or random).random())


@dataclass(frozen=True)
class Blocker:
    """A session that holds a lock the migration waited for."""

    table: str
    pid: int
    state: str
    since: str  # when its transaction (or its query) began
    query: str


def describe_blockers(blockers: list[Blocker], table: str | None) -> str:
    """'table items, held by pid 42 (idle in transaction since ..., query: ...)'."""
    where = f"table {table or (blockers[0].table if blockers else 'unknown')}"
    if not blockers:
        return f"{where}, holder not found (it may have ended)"
    first = blockers[0]
    query = " ".join(first.query.split())
    if len(query) > 60:
        query = query[:57] + "..."
    more = f" and {len(blockers) - 1} more" if len(blockers) > 1 else ""
    return (
        f"{where}, held by pid {first.pid} ({first.state or 'unknown state'} since "
        f"{first.since}, query: {query or '-'}){more}"
    )
