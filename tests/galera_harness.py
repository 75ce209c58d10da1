"""A private 3-node MariaDB Galera cluster on 127.0.0.1, for the topology tests.

Node 1's datadir is initialised once (mariadb-install-db) and bootstrapped
alone, then stopped; nodes 2 and 3 start from copies of it (no state transfer
needed: a copy avoids rsync SST, which fails on permissions when run as root).
Node 1 starts again with --wsrep-new-cluster, nodes 2 and 3 join. Each node has
its own datadir, socket, pid file, SQL port and Galera ports (base_port and
ist.recv_addr). Grants are skipped: root with no password over TCP. Every
cluster is stopped at interpreter exit.
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

MARIADBD = os.environ.get("TEST_MARIADBD", "/usr/sbin/mariadbd")
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
PROVIDER = os.environ.get("TEST_GALERA_PROVIDER", "/usr/lib/galera/libgalera_smm.so")
NODES = 3
START_TIMEOUT = 90.0

_LIVE: set[GaleraCluster] = set()


class HarnessError(RuntimeError):
    """The cluster could not be formed (a reason to skip)."""


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            sockets.append(probe)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for probe in sockets:
            probe.close()


def _connect(port: int, timeout: float = 2):  # -> pymysql.Connection
    import pymysql

    return pymysql.connect(
        host="127.0.0.1",
        port=port,
        user="root",
        password="",
        connect_timeout=timeout,
        autocommit=True,
    )


def _status(port: int, name: str) -> str | None:
    import pymysql

    try:
        connection = _connect(port)
    except pymysql.Error:
        return None
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW GLOBAL STATUS LIKE %s", (name,))
            row = cursor.fetchone()
            return None if row is None else str(row[1])
    except pymysql.Error:
        return None
    finally:
        connection.close()


class GaleraCluster:
    def __init__(self, nodes: int = NODES) -> None:
        for path, what in ((MARIADBD, "mariadbd"), (PROVIDER, "Galera provider (galera-4)")):
            if not os.path.exists(path):
                raise HarnessError(f"{what} not found at {path}")
        self.count = nodes
        self.dir = Path(tempfile.mkdtemp(prefix="galera-"))
        ports = _free_ports(4 * nodes)
        self.sql_ports = ports[:nodes]
        self.gcomm_ports = ports[nodes : 2 * nodes]
        self.ist_ports = ports[2 * nodes : 3 * nodes]
        # A joiner prepares its SST receiver even when IST will do: two joiners on
        # the default port (4444) at once make one of them abort.
        self.sst_ports = ports[3 * nodes :]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self._user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self._user = pwd.getpwnam("mysql")
            except KeyError:
                self._user = None
            if self._user is not None:
                os.chown(self.dir, self._user.pw_uid, self._user.pw_gid)

    # ------------------------------------------------------------ paths and config

    def _node_dir(self, node: int) -> Path:
        return self.dir / f"node{node}"

    def _datadir(self, node: int) -> Path:
        return self._node_dir(node) / "data"

    def _config(self, node: int) -> Path:
        index = node - 1
        base = self._node_dir(node)
        address = ",".join(f"127.0.0.1:{p}" for p in self.gcomm_ports)
        path = base / "my.cnf"
        path.write_text(
            "[mariadbd]\n"
            f"datadir = {self._datadir(node)}\n"
            f"socket = {base / 'mysqld.sock'}\n"
            f"pid-file = {base / 'mysqld.pid'}\n"
            f"log-error = {base / 'error.log'}\n"
            "bind-address = 127.0.0.1\n"
            f"port = {self.sql_ports[index]}\n"
            "skip-grant-tables\n"
            "skip-name-resolve\n"
            "skip-log-bin\n"
            "innodb_buffer_pool_size = 32M\n"
            "innodb_log_file_size = 16M\n"
            "performance_schema = OFF\n"
            "max_connections = 300\n"
            "binlog_format = ROW\n"
            "default_storage_engine = InnoDB\n"
            "innodb_autoinc_lock_mode = 2\n"
            "wsrep_on = ON\n"
            f"wsrep_provider = {PROVIDER}\n"
            f"wsrep_cluster_address = gcomm://{address}\n"
            "wsrep_cluster_name = llmproxy_test\n"
            f"wsrep_node_name = node{node}\n"
            f"wsrep_node_address = 127.0.0.1:{self.gcomm_ports[index]}\n"
            "wsrep_sst_method = rsync\n"
            f"wsrep_sst_receive_address = 127.0.0.1:{self.sst_ports[index]}\n"
            f'wsrep_provider_options = "base_port={self.gcomm_ports[index]};'
            f'ist.recv_addr=127.0.0.1:{self.ist_ports[index]};gcache.size=32M"\n',
            encoding="utf-8",
        )
        return path

    def _chown_tree(self, path: Path) -> None:
        if self._user is None:
            return
        for root, dirs, files in os.walk(path):
            for name in [*dirs, *files]:
                os.lchown(os.path.join(root, name), self._user.pw_uid, self._user.pw_gid)
        os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def _user_args(self) -> list[str]:
        if os.geteuid() != 0:
            return []
        return ["--user=mysql" if self._user else "--user=root"]

    # ------------------------------------------------------------ lifecycle

    def _spawn(self, node: int, *extra: str) -> None:
        config = self._config(node)
        self._chown_tree(self._node_dir(node))
        self.processes[node] = subprocess.Popen(
            [MARIADBD, f"--defaults-file={config}", *self._user_args(), *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _wait(self, condition, what: str, node: int | None = None) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not condition():
            for n, process in self.processes.items():
                if (node is None or n == node) and process.poll() is not None:
                    raise HarnessError(
                        f"galera node{n} exited {process.returncode} while waiting for {what}:"
                        f" {self.log_tail(n)}"
                    )
            if time.monotonic() > deadline:
                raise HarnessError(f"timed out waiting for {what}: {self.log_tail(node or 1)}")
            time.sleep(0.1)

    def log_tail(self, node: int, lines: int = 4) -> str:
        try:
            text = (self._node_dir(node) / "error.log").read_text(errors="replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.splitlines()[-lines:])

    def _set_safe_to_bootstrap(self, node: int, value: int) -> None:
        grastate = self._datadir(node) / "grastate.dat"
        text = grastate.read_text()
        lines = [
            f"safe_to_bootstrap: {value}" if line.startswith("safe_to_bootstrap:") else line
            for line in text.splitlines()
        ]
        grastate.write_text("\n".join(lines) + "\n")

    def start(self) -> GaleraCluster:
        _LIVE.add(self)
        try:
            self._form()
        except BaseException:
            self.stop()
            raise
        return self

    def _form(self) -> None:
        first = self._datadir(1)
        first.mkdir(parents=True)
        self._chown_tree(self.dir)
        install = subprocess.run(
            [
                INSTALL_DB,
                f"--datadir={first}",
                *self._user_args(),
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--no-defaults",
            ],
            capture_output=True,
            text=True,
        )
        if install.returncode != 0:
            raise HarnessError(f"mariadb-install-db failed: {install.stderr.strip()[-300:]}")
        # Bootstrap alone once (creates grastate.dat and the cluster's identity), stop.
        self._spawn(1, "--wsrep-new-cluster")
        self._wait(lambda: _status(self.sql_ports[0], "wsrep_ready") == "ON", "node1 bootstrap", 1)
        self._stop_node(1)
        for node in range(2, self.count + 1):
            shutil.copytree(first, self._datadir(node), symlinks=True)
            self._set_safe_to_bootstrap(node, 0)
            for leftover in ("mysqld.pid",):
                with contextlib.suppress(FileNotFoundError):
                    (self._datadir(node) / leftover).unlink()
        self._set_safe_to_bootstrap(1, 1)
        self._spawn(1, "--wsrep-new-cluster")
        self._wait(lambda: _status(self.sql_ports[0], "wsrep_ready") == "ON", "node1 primary", 1)
        for node in range(2, self.count + 1):  # one joiner at a time
            self._spawn(node)
            port = self.sql_ports[node - 1]
            self._wait(lambda p=port: _status(p, "wsrep_ready") == "ON", f"node{node} to join")
        self._wait(self._formed, f"wsrep_cluster_size={self.count} on every node")

    def _formed(self) -> bool:
        return all(
            _status(port, "wsrep_cluster_size") == str(self.count)
            and _status(port, "wsrep_ready") == "ON"
            for port in self.sql_ports
        )

    def url(self, node: int, database: str = "") -> str:
        return f"mysql://root@127.0.0.1:{self.sql_ports[node - 1]}/{database}"

    def port(self, node: int) -> int:
        return self.sql_ports[node - 1]

    def alive(self, node: int) -> bool:
        process = self.processes.get(node)
        return process is not None and process.poll() is None

    def kill(self, node: int) -> None:
        """SIGKILL one node (a crash: no goodbye to the cluster)."""
        process = self.processes.get(node)
        if process is not None and process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    def _stop_node(self, node: int) -> None:
        process = self.processes.get(node)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)

    def stop(self) -> None:
        # Joiners first, the bootstrap node last: a clean leave each.
        for node in sorted(self.processes, reverse=True):
            self._stop_node(node)
        _LIVE.discard(self)
        shutil.rmtree(self.dir, ignore_errors=True)


@atexit.register
def _stop_all() -> None:
    for cluster in list(_LIVE):
        with contextlib.suppress(Exception):
            cluster.stop()
