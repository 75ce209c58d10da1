"""Load on `llm-proxy server`'s probe endpoints, over loopback only.

    python bench/load.py [--requests 2000] [--threads 20] [--paths /healthz,/readyz]
                         [--url http://127.0.0.1:PORT]

Sends N GET requests (one connection each, as probes do) spread over T client
threads, round-robin over the paths, and prints p50/p99/max latency and the
errors per path. Without --url it starts `llm-proxy server` on a migrated
SQLite file in a temporary directory (port picked by the kernel) and stops it
afterwards. The kernel's TcpExtListenOverflows/ListenDrops counters
(/proc/net/netstat, what `nstat` shows) are read before and after: they count
connections the listen backlog had no room for. They are machine-wide, so
other traffic on the machine adds to them. Standard library only; not part
of the test run.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

MAX_REQUESTS = 100_000
MAX_THREADS = 200
REQUEST_TIMEOUT = 10.0
LISTENING = re.compile(r"llm-proxy listening on (http://\S+)")


def listen_counters() -> dict[str, int]:
    """TcpExt ListenOverflows and ListenDrops, or {} where /proc/net/netstat is missing."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return {}
    for header, values in zip(lines[::2], lines[1::2], strict=False):
        if header.startswith("TcpExt:"):
            table = dict(zip(header.split()[1:], values.split()[1:], strict=True))
            return {k: int(table[k]) for k in ("ListenOverflows", "ListenDrops") if k in table}
    return {}


def loopback_address(url: str) -> tuple[str, int]:
    """(host, port) of an http:// URL on a loopback address; refuses anything else."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None or parts.port is None:
        raise SystemExit(f"--url must be http://HOST:PORT, not {url!r}")
    try:
        loopback = ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        loopback = parts.hostname == "localhost"
    if not loopback:
        raise SystemExit(f"--url must be a loopback address, not {parts.hostname}")
    return parts.hostname, parts.port


@contextmanager
def spawned_server() -> Iterator[str]:
    """`llm-proxy server` on a fresh, migrated SQLite file; yields its URL."""
    with tempfile.TemporaryDirectory(prefix="llm-proxy-load-") as workdir:
        log = Path(workdir) / "server.log"
        db = Path(workdir) / "llm-proxy.db"
        command = [sys.executable, "-m", "llm_proxy", "server", "--addr", "127.0.0.1:0"]
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*command, "--db", str(db)], stdout=out, stderr=subprocess.STDOUT
            )
        try:
            deadline = time.monotonic() + 60
            while not (found := LISTENING.search(log.read_text())):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"server did not start:\n{log.read_text()}")
                time.sleep(0.05)
            yield found.group(1)
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def one_request(host: str, port: int, path: str) -> tuple[float, str | None]:
    """(seconds, error or None) for one GET on a fresh connection; anything but
    200 is an error (the spawned server's database is at head)."""
    start = time.perf_counter()
    connection = http.client.HTTPConnection(host, port, timeout=REQUEST_TIMEOUT)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        error = None if response.status == 200 else f"HTTP {response.status}"
    except (OSError, http.client.HTTPException) as exc:
        error = type(exc).__name__
    finally:
        connection.close()
    return time.perf_counter() - start, error


def load(
    host: str, port: int, paths: list[str], requests: int, threads: int
) -> dict[str, tuple[list[float], list[str]]]:
    """Run the requests; per path, the latencies and the errors."""
    results: dict[str, tuple[list[float], list[str]]] = {p: ([], []) for p in paths}
    counter = iter(range(requests))
    guard = threading.Lock()

    def client() -> None:
        while True:
            with guard:
                n = next(counter, None)
            if n is None:
                return
            path = paths[n % len(paths)]
            seconds, error = one_request(host, port, path)
            with guard:
                results[path][0].append(seconds)
                if error:
                    results[path][1].append(error)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return results


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(results: dict[str, tuple[list[float], list[str]]], wall: float) -> None:
    print(f"{'path':<10} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  errors")
    for path, (times, errors) in results.items():
        kinds = {e: errors.count(e) for e in sorted(set(errors))}
        shown = ", ".join(f"{k} x{v}" for k, v in kinds.items()) or "0"
        print(
            f"{path:<10} {len(times):>6} {statistics.median(times) * 1e3:>8.1f} "
            f"{percentile(times, 0.99) * 1e3:>8.1f} {max(times) * 1e3:>8.1f}  {shown}"
        )
    total = sum(len(times) for times, _ in results.values())
    print(f"{total} requests in {wall:.2f} s ({total / wall:.0f}/s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--paths", default="/healthz,/readyz")
    parser.add_argument("--url", help="a running server (loopback only); default: start one")
    args = parser.parse_args()
    if not 0 < args.requests <= MAX_REQUESTS or not 0 < args.threads <= MAX_THREADS:
        raise SystemExit(f"--requests 1..{MAX_REQUESTS}, --threads 1..{MAX_THREADS}")
    paths = [p for p in args.paths.split(",") if p]

    with spawned_server() if args.url is None else _given(args.url) as url:
        host, port = loopback_address(url)
        socket.getaddrinfo(host, port)  # fail early on a bad host
        before = listen_counters()
        start = time.perf_counter()
        results = load(host, port, paths, args.requests, args.threads)
        wall = time.perf_counter() - start
        after = listen_counters()
    print(f"{args.requests} requests, {args.threads} client threads, {url}")
    report(results, wall)
    if before:
        deltas = ", ".join(f"{k} +{after[k] - before[k]}" for k in before)
        print(f"TcpExt (machine-wide): {deltas}")
    else:
        print("TcpExt counters: /proc/net/netstat not available")


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


if __name__ == "__main__":
    main()
