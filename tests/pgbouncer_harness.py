"""A private PgBouncer in front of the test PostgreSQL (127.0.0.1:5432).

PgBouncer refuses to run as root, so it runs as user `postgres` (through
`runuser`) when the tests run as root; its config, log and pid file live in a
temporary directory that user owns. `restart()` keeps the port. Every instance
is stopped at interpreter exit even if a test forgets to.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PGBOUNCER = os.environ.get("TEST_PGBOUNCER", "/usr/sbin/pgbouncer")
UPSTREAM_HOST = "127.0.0.1"
UPSTREAM_PORT = 5432
RUN_AS = "postgres"
START_TIMEOUT = 30.0

_LIVE: set[PgBouncer] = set()


class HarnessError(RuntimeError):
    """The harness could not start what it was asked for (a reason to skip)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _accepts(port: int) -> bool:
    """True once a PostgreSQL startup through the pooler gets an answer from the server."""
    import psycopg

    try:
        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{port}/postgres",
            connect_timeout=2,
            autocommit=True,
            prepare_threshold=None,
        ) as connection:
            connection.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


class PgBouncer:
    def __init__(self, pool_mode: str = "transaction", default_pool_size: int = 4) -> None:
        if pool_mode not in ("session", "transaction", "statement"):
            raise ValueError(f"unknown pool_mode {pool_mode!r}")
        if not os.path.exists(PGBOUNCER):
            raise HarnessError(f"{PGBOUNCER} not found (Debian package pgbouncer)")
        self.pool_mode = pool_mode
        self.default_pool_size = default_pool_size
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix=f"pgbouncer-{pool_mode}-"))
        self.config = self.dir / "pgbouncer.ini"
        self.log = self.dir / "pgbouncer.log"
        self.pidfile = self.dir / "pgbouncer.pid"
        self.process: subprocess.Popen[bytes] | None = None
        self._as_root = os.geteuid() == 0
        self._write_config()
        if self._as_root:
            try:
                user = pwd.getpwnam(RUN_AS)
            except KeyError as exc:
                raise HarnessError(f"no user {RUN_AS}: pgbouncer refuses root") from exc
            for path in (self.dir, self.config, self.dir / "userlist.txt"):
                os.chown(path, user.pw_uid, user.pw_gid)

    def _write_config(self) -> None:
        (self.dir / "userlist.txt").write_text('"postgres" ""\n', encoding="utf-8")
        self.config.write_text(
            "[databases]\n"
            f"* = host={UPSTREAM_HOST} port={UPSTREAM_PORT}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.dir / 'userlist.txt'}\n"
            f"pool_mode = {self.pool_mode}\n"
            f"default_pool_size = {self.default_pool_size}\n"
            "max_client_conn = 200\n"
            f"logfile = {self.log}\n"
            f"pidfile = {self.pidfile}\n"
            "server_reset_query = DISCARD ALL\n"
            "log_connections = 0\n"
            "log_disconnections = 0\n"
            "ignore_startup_parameters = extra_float_digits,options\n",
            encoding="utf-8",
        )

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> PgBouncer:
        command = [PGBOUNCER, str(self.config)]
        if self._as_root:
            command = ["runuser", "-u", RUN_AS, "--", *command]
        # PgBouncer in the foreground also logs to stderr: a pipe nobody reads fills up
        # (64 KiB) and PgBouncer blocks in write(2), every client with it. A file.
        with open(self.dir / "stderr.log", "ab") as stderr:
            self.process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
            )
        _LIVE.add(self)
        deadline = time.monotonic() + START_TIMEOUT
        while not _accepts(self.port):
            if self.process.poll() is not None:
                err = (self.dir / "stderr.log").read_text(errors="replace")
                self.stop()
                raise HarnessError(
                    f"pgbouncer exited {self.process.returncode}: {err.strip()[-300:]}"
                    f" {self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise HarnessError(f"pgbouncer did not accept within {START_TIMEOUT}s")
            time.sleep(0.05)
        return self

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _kill(self, sig: int) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        # Signal pgbouncer itself (its pid file); signalling runuser as well makes it
        # wait a grace period before it kills its child.
        try:
            target = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            target = process.pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)

    def restart(self) -> None:
        """Stop at once (SIGTERM: every client dropped mid-whatever) and start again
        on the same port."""
        self._kill(signal.SIGTERM)
        self.start()

    def stop(self) -> None:
        self._kill(signal.SIGTERM)
        _LIVE.discard(self)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@atexit.register
def _stop_all() -> None:
    for bouncer in list(_LIVE):
        bouncer.close()
