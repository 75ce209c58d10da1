"""The performance suite: every target of the performance issue in one table.

    python bench/run.py [--runs 7] [--files 1000] [--parse-mb 100]

Each figure is the median of several runs, printed beside a baseline measured
in the same run on the same interpreter, as a ratio: this machine is shared
and noisy, so absolute times alone mean little. Not part of the test run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def median_seconds(
    action: Callable[[], object], runs: int, setup: Callable[[], object] | None = None
) -> float:
    times = []
    for attempt in range(runs + 1):
        if setup is not None:
            setup()
        start = time.perf_counter()
        action()
        if attempt:  # the first run warms caches (bytecode, page cache) and is dropped
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(*command: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(command)}\n{result.stderr}")


def write_goose_files(directory: Path, count: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for n in range(1, count + 1):
        (directory / f"{n:05d}_table_{n}.sql").write_text(
            f"-- +goose Up\nCREATE TABLE t_{n} (id INTEGER PRIMARY KEY, v TEXT);\n"
            f"INSERT INTO t_{n} (v) VALUES ('x');\n\n"
            f"-- +goose Down\nDROP TABLE t_{n};\n",
            encoding="utf-8",
        )


def write_python_revisions(directory: Path, count: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    previous = None
    for n in range(1, count + 1):
        revision = f"r{n:05d}"
        (directory / f"{revision}_empty.py").write_text(
            f'"""empty {n}"""\nrevision = "{revision}"\ndown_revision = {previous!r}\n'
            "branch_labels = None\ndepends_on = None\n\n\n"
            "def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n",
            encoding="utf-8",
        )
        previous = revision


def plain_sqlite_loop(db: Path, migrations: Path) -> None:
    """The baseline: the same statements with the standard sqlite3 module, one
    transaction per file including goose's version-row insert."""
    sys.path.insert(0, str(REPO))
    from llm_proxy import dialects
    from llm_proxy.goose import files, parse
    from llm_proxy.store import goose_table
    from llm_proxy.store.tables import Tables

    tables = Tables(dialects.SQLITE)

    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute(goose_table.create_sql(tables))
    connection.execute(goose_table.insert_sql(tables, 0))
    for migration in files.discover(migrations):
        parsed = parse(migration.path.read_text(encoding="utf-8"))
        connection.execute("BEGIN")
        for statement in parsed.statements:
            connection.execute(statement)
        connection.execute(goose_table.insert_sql(tables, migration.version))
        connection.execute("COMMIT")
    connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--parse-mb", type=int, default=100)
    options = parser.parse_args()
    runs, count = options.runs, options.files

    work = Path(tempfile.mkdtemp(prefix="llmproxy-bench-"))
    # As users run it: no settings leaking in, and bytecode caching on (some
    # shells export PYTHONDONTWRITEBYTECODE, which makes every start recompile).
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "LLM_PROXY_")) and k != "PYTHONDONTWRITEBYTECODE"
    }
    run(sys.executable, "-m", "compileall", "-q", str(REPO / "llm_proxy"), env=env)
    try:
        goose_dir = work / "sql"
        write_goose_files(goose_dir, count)
        llm_proxy = str(BIN / "llm-proxy")
        db = work / "bench.db"
        common = ("--db", str(db), "--migrations-dir", str(goose_dir))
        rows: list[tuple[str, float, str, float, str]] = []

        python_pass = median_seconds(lambda: run(sys.executable, "-c", "pass"), runs)

        # Applying N small migrations, against the plain sqlite3 loop.
        def fresh() -> None:
            for suffix in ("", "-journal", "-wal", ".migrate-lock"):
                Path(f"{db}{suffix}").unlink(missing_ok=True)

        apply_ours = median_seconds(
            lambda: run(llm_proxy, "migrate", "up", *common, cwd=work, env=env),
            max(3, runs // 2),
            setup=fresh,
        )
        plain_db = work / "plain.db"

        def plain() -> None:
            run(
                sys.executable,
                "-c",
                f"import sys; sys.path.insert(0, {str(REPO / 'bench')!r}); import run; "
                f"run.plain_sqlite_loop(__import__('pathlib').Path({str(plain_db)!r}), "
                f"__import__('pathlib').Path({str(goose_dir)!r}))",
                env=env,
            )

        apply_plain = median_seconds(
            plain, max(3, runs // 2), setup=lambda: plain_db.unlink(missing_ok=True)
        )
        rows.append(
            (
                f"apply {count} small migrations",
                apply_ours,
                "plain sqlite3 loop (same process work)",
                apply_plain,
                "<= 1.5x",
            )
        )

        # The database is now at head: no-op up and status.
        fresh()
        run(llm_proxy, "migrate", "up", *common, cwd=work, env=env)
        noop = median_seconds(
            lambda: run(llm_proxy, "migrate", "up", *common, cwd=work, env=env), runs
        )
        rows.append(
            (f"no-op migrate up, {count} files", noop, "python -c pass", python_pass, "<= 8x")
        )
        status = median_seconds(
            lambda: run(llm_proxy, "migrate", "status", *common, cwd=work, env=env), runs
        )
        rows.append(
            (f"migrate status, {count} files", status, "python -c pass", python_pass, "<= 10x")
        )

        # alembic history: goose files vs the same number of empty Python revisions.
        project = work / "project"
        shutil.copytree(
            REPO / "alembic",
            project / "alembic",
            ignore=shutil.ignore_patterns("__pycache__", "*.py[co]"),
        )
        for stale in (project / "alembic" / "versions").glob("*.py"):
            stale.unlink()
        ini = (REPO / "alembic.ini").read_text(encoding="utf-8")
        (project / "alembic.ini").write_text(
            ini.replace("%(here)s/sql/postgres", "%(here)s/none").replace(
                "goose_directory = %(here)s/sql", f"goose_directory = {goose_dir}"
            ),
            encoding="utf-8",
        )
        python_project = work / "pyproject"
        shutil.copytree(project, python_project)
        (python_project / "alembic.ini").write_text(
            "\n".join(
                line
                for line in (project / "alembic.ini").read_text().splitlines()
                if not line.startswith("goose_directory")
            ),
            encoding="utf-8",
        )
        write_python_revisions(python_project / "alembic" / "versions", count)
        alembic = str(BIN / "alembic")
        hist_goose = median_seconds(lambda: run(alembic, "history", cwd=project, env=env), runs)
        hist_python = median_seconds(
            lambda: run(alembic, "history", cwd=python_project, env=env), runs
        )
        rows.append(
            (
                f"alembic history, {count} goose files",
                hist_goose,
                f"alembic history, {count} empty .py revisions",
                hist_python,
                "<= 3x",
            )
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"{'measure':<40} {'median':>9}  {'baseline':<44} {'median':>9} {'ratio':>6}  target")
    for name, ours, base_name, base, target in rows:
        print(
            f"{name:<40} {ours * 1000:>7.1f}ms  {base_name:<44} {base * 1000:>7.1f}ms "
            f"{ours / base:>6.2f}  {target}"
        )
    print()
    # The parser: throughput against reading the same file line by line, and memory.
    parse = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "parse_benchmark.py"),
            "--size-mb",
            str(options.parse_mb),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    print(parse.stdout or parse.stderr)


if __name__ == "__main__":
    main()
