"""Benchmark: one very large goose migration through every command that reads it.

    python bench/bigfile.py [--size-mb 200] [--variant rows|huge|both] [--commands ...]

Generates, in a temporary directory, a migration of about --size-mb megabytes:

- ``rows``: a CREATE TABLE and then one-row INSERT statements, one per line;
- ``huge``: the same rows as ONE multi-row INSERT statement spanning every line.

Each command then runs on SQLite as a real process (``python -m llm_proxy ...``):
``up`` (fresh database), ``down``, ``up --sql`` (script to /dev/null) and ``validate``.
For each the script prints the wall time and the process's peak resident memory
(``ru_maxrss`` of the finished child, read by a small wrapper process so that each
figure is one command's own), with both as ratios: memory to the file size, validate's
time to up's. Not part of the test run; no assertion, only figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MB = 1_000_000
COMMANDS = ("up", "down", "up-sql", "validate")


def generate(path: Path, size: int, variant: str) -> int:
    """Write a migration of about ``size`` bytes; return its number of rows."""
    rows = 0
    written = 0
    huge = variant == "huge"
    with path.open("w", encoding="utf-8", newline="\n") as out:
        head = (
            "-- +goose Up\n"
            "CREATE TABLE big (id INTEGER PRIMARY KEY, name TEXT, note TEXT, amount REAL);\n"
        )
        if huge:
            head += "INSERT INTO big (id, name, note, amount) VALUES\n"
        out.write(head)
        written += len(head)
        batch: list[str] = []
        while written < size:
            note = "n" * (10 + rows % 50)
            values = f"({rows}, 'name-{rows % 997}', '{note}', {rows * 0.5})"
            batch.append(f"{values},\n" if huge else f"INSERT INTO big VALUES {values};\n")
            rows += 1
            if len(batch) >= 5000:
                block = "".join(batch)
                out.write(block)
                written += len(block)
                batch.clear()
        if huge:
            batch.append(f"({rows}, 'last', 'last', 0);\n")
            rows += 1
        out.write("".join(batch))
        out.write("\n-- +goose Down\nDROP TABLE big;\n")
    return rows


def measure(argv: list[str]) -> dict[str, float | int]:
    """Run one command in a wrapper process; its wall time and peak RSS (bytes)."""
    wrapper = (
        "import resource, subprocess, sys, time, json\n"
        "start = time.perf_counter()\n"
        "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
        "wall = time.perf_counter() - start\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024\n"
        "print(json.dumps({'code': code, 'wall': wall, 'rss': rss}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *argv], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def command_line(name: str, db: Path, directory: Path) -> list[str]:
    base = [sys.executable, "-m", "llm_proxy", "migrate"]
    where = ["--db", str(db), "--migrations-dir", str(directory)]
    if name == "up":
        return [*base, "up", *where]
    if name == "down":
        return [*base, "down", *where]
    if name == "up-sql":
        return [*base, "up", "--sql", *where]
    return [*base, "validate", *where]


def run_variant(variant: str, size: int, commands: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="llmproxy-bigfile-") as tmp:
        directory = Path(tmp) / "migrations"
        directory.mkdir()
        path = directory / "00001_big.sql"
        rows = generate(path, size, variant)
        file_size = path.stat().st_size
        print(f"\n{variant}: {file_size / MB:.1f} MB, {rows:,} rows")
        print(f"{'command':<10} {'exit':>4} {'wall s':>8} {'peak RSS MB':>12} {'RSS/file':>9}")
        db = Path(tmp) / "big.db"
        walls: dict[str, float] = {}
        for name in commands:
            if name == "down" and "up" not in walls:
                measure(command_line("up", db, directory))  # down needs it applied
            figures = measure(command_line(name, db, directory))
            walls[name] = float(figures["wall"])
            rss = int(figures["rss"])
            print(
                f"{name:<10} {figures['code']:>4} {figures['wall']:>8.1f} "
                f"{rss / MB:>12.0f} {rss / file_size:>9.2f}"
            )
        if "up" in walls and "validate" in walls:
            print(f"validate time / up time: {walls['validate'] / walls['up']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=200)
    parser.add_argument("--variant", choices=("rows", "huge", "both"), default="both")
    parser.add_argument("--commands", nargs="+", choices=COMMANDS, default=list(COMMANDS))
    args = parser.parse_args()
    os.environ.pop("DATABASE_URL", None)
    variants = ("rows", "huge") if args.variant == "both" else (args.variant,)
    started = time.perf_counter()
    for variant in variants:
        run_variant(variant, int(args.size_mb * MB), args.commands)
    print(f"\n(total {time.perf_counter() - started:.0f} s; python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()
