"""Benchmark: goose parser throughput and memory on a large generated data migration.

    python bench/parse_benchmark.py [--size-mb 100] [--repeat 3]

Generates a data migration (mostly one-row INSERT lines, a comment every few thousand rows, a
few multi-line statements) in a temporary directory, then reports:

- throughput of parse_sections() on the decoded text, against baselines that only iterate the
  file's lines in Python (the target is at least 1/4 of ``for line in text.splitlines()``);
- the same at a quarter of the size, to show that time grows linearly;
- peak memory allocated while parsing (tracemalloc), relative to the file size.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from llm_proxy.goose import parse_sections

MB = 1_000_000


def generate(path: Path, size: int) -> int:
    """Write a goose data migration of about ``size`` bytes; return the number of rows."""
    rows = 0
    written = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        header = "-- Generated data migration for the parser benchmark.\n-- +goose Up\n"
        out.write(header)
        written += len(header)
        chunk: list[str] = []
        while written < size:
            if rows % 5000 == 0:
                chunk.append(f"\n-- batch {rows // 5000}\n")
            if rows % 20000 == 0:
                chunk.append(
                    "INSERT INTO audit_events (id, action, actor, outcome)\n"
                    f"VALUES ('multi-{rows}', 'import', 'bench', 'success');\n"
                )
            padding = "x" * (20 + rows % 60)
            chunk.append(
                "INSERT INTO audit_events (id, timestamp, action, actor, outcome, metadata) "
                f"VALUES ('evt-{rows:09d}', '2024-01-02 15:04:05', 'token.create', "
                f"'user-{rows % 977}', 'success', '{padding}');\n"
            )
            rows += 1
            if len(chunk) >= 2000:
                block = "".join(chunk)
                out.write(block)
                written += len(block)
                chunk.clear()
        block = "".join(chunk) + "\n-- +goose Down\nDELETE FROM audit_events;\n"
        out.write(block)
    return rows


def best_of(repeat: int, func: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_bytes(func: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        result = func()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del result
    return peak


def iterate_splitlines(text: str) -> None:
    for _line in text.splitlines():
        pass


def iterate_file(path: Path) -> None:
    with path.open(encoding="utf-8") as handle:
        for _line in handle:
            pass


def main(argv: list[str] | None = None) -> int:
    options = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    options.add_argument("--size-mb", type=float, default=100.0)
    options.add_argument("--repeat", type=int, default=3)
    args = options.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="goose-bench-") as tmp:
        path = Path(tmp) / "00042_bulk_audit_events.sql"
        small_path = Path(tmp) / "00043_quarter.sql"
        rows = generate(path, int(args.size_mb * MB))
        generate(small_path, int(args.size_mb * MB / 4))
        size = path.stat().st_size
        small_size = small_path.stat().st_size
        text = path.read_text(encoding="utf-8")
        small_text = small_path.read_text(encoding="utf-8")

        up, down = parse_sections(text, env={})
        # Sanity: every row and multi-line INSERT is one statement.
        assert len(up.statements) == rows + (rows + 19999) // 20000, len(up.statements)
        assert down.statements == ["DELETE FROM audit_events;"]
        del up, down

        timings = [
            ("baseline: for line in text.splitlines()", size, lambda: iterate_splitlines(text)),
            ("baseline: for line in open(file)", size, lambda: iterate_file(path)),
            ("parse_sections(text)", size, lambda: parse_sections(text, env={})),
            (
                "parse_sections(text), 1/4 size",
                small_size,
                lambda: parse_sections(small_text, env={}),
            ),
            (
                "read_text + parse_sections",
                size,
                lambda: parse_sections(path.read_text(encoding="utf-8"), env={}),
            ),
        ]
        results = [(label, n, best_of(args.repeat, func)) for label, n, func in timings]
        baseline = results[0][1] / results[0][2]

        parse_peak = peak_bytes(lambda: parse_sections(text, env={}))
        end_to_end_peak = peak_bytes(lambda: parse_sections(path.read_text(encoding="utf-8")))

    print(f"file: {size / MB:.1f} MB, {rows:,} rows, Python {sys.version.split()[0]}")
    print()
    print(f"{'measurement':<42} {'seconds':>8} {'MB/s':>8} {'vs splitlines':>14}")
    for label, n, seconds in results:
        rate = n / seconds
        print(f"{label:<42} {seconds:>8.3f} {rate / MB:>8.1f} {rate / baseline:>13.2f}x")
    print()
    print(f"{'peak memory (tracemalloc)':<42} {'MB':>8} {'x file':>8}")
    print(
        f"{'parse_sections(text), text already read':<42} {parse_peak / MB:>8.1f} "
        f"{parse_peak / size:>8.2f}"
    )
    print(
        f"{'read_text + parse_sections':<42} {end_to_end_peak / MB:>8.1f} "
        f"{end_to_end_peak / size:>8.2f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
