"""The lease lock (`--lock-strategy table`) on plain PostgreSQL and
MariaDB: a committed row in llm_proxy_migration_lock, renewed by its holder.

A crowd must migrate exactly once under it, and `migrate status` must name the
holder while one runs (and nothing once it is done).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli
from crowd import (
    SEEDS,
    Result,
    crowd,
    crowd_migrations,
    crowd_problems,
    mysql_reader,
    pg_reader,
    run_crowd,
    wait_until,
)

CROWD = 8
HELD_LINE = "Migration lock: held by "


@pytest.fixture(params=["postgresql", "mysql"])
def plain(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(dialect, URL of a fresh database) on the plain server."""
    if request.param == "postgresql":
        return "postgresql", request.getfixturevalue("postgres_url")
    return "mysql", request.getfixturevalue("mysql_url")


def _reader(dialect: str, url: str):
    return pg_reader(url) if dialect == "postgresql" else mysql_reader(url)


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed{s}")
def test_crowd_under_the_lease_lock(plain: tuple[str, str], tmp_path: Path, seed: int) -> None:
    dialect, url = plain
    migrations = crowd_migrations(tmp_path / "migrations", dialect)
    command = [
        "migrate",
        "up",
        "--database-url",
        url,
        "--migrations-dir",
        str(migrations),
        "--lock-strategy",
        "table",
    ]
    results: list[Result] = run_crowd(tmp_path / "crowd", [command] * CROWD, seed)
    problems = crowd_problems(results, _reader(dialect, url))
    assert problems == [], "\n".join(problems)


def test_status_names_the_lease_holder_while_it_runs(
    plain: tuple[str, str], tmp_path: Path
) -> None:
    dialect, url = plain
    # File 3 (NO TRANSACTION: its counter row is visible at once) sleeps 3 s.
    migrations = crowd_migrations(tmp_path / "migrations", dialect, slow={3: 3.0})
    common = ["--database-url", url, "--migrations-dir", str(migrations)]
    strategy = ["--lock-strategy", "table"]
    rows = _reader(dialect, url)

    def in_file_3() -> bool:
        try:
            return bool(rows("SELECT 1 FROM migration_runs WHERE version = 3"))
        except Exception:  # the table does not exist yet
            return False

    with crowd(tmp_path / "holder", [["migrate", "up", *common, *strategy]], seed=0) as holder:
        holder.release()
        wait_until(lambda: in_file_3() or holder.processes[0].poll() is not None, "file 3 to start")
        assert holder.processes[0].poll() is None, holder.result(0).describe()
        # status itself is given no strategy: it reports whichever lock is held.
        status = run_cli("migrate", "status", *common)
        status_json = run_cli("migrate", "status", "--json", *common)
        still_running = holder.processes[0].poll() is None
        (result,) = holder.finish()

    assert still_running, "the holder finished before status was read: raise file 3's sleep"
    assert result.returncode == 0, result.describe()
    assert status.returncode == 0, status.stderr
    held = [line for line in status.stdout.splitlines() if line.startswith(HELD_LINE)]
    assert len(held) == 1, f"no {HELD_LINE!r} line while a holder runs:\n{status.stdout}"
    assert status_json.returncode == 0, status_json.stderr
    document = json.loads(status_json.stdout)
    assert document.get("lock") is not None, f"status --json 'lock' while held: {document}"

    after = run_cli("migrate", "status", *common)
    assert after.returncode == 0, after.stderr
    assert not any(line.startswith(HELD_LINE) for line in after.stdout.splitlines()), after.stdout
    after_json = run_cli("migrate", "status", "--json", *common)
    assert after_json.returncode == 0, after_json.stderr
    document = json.loads(after_json.stdout)
    assert "lock" in document and document["lock"] is None, document
