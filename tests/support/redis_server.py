"""A redis-server of the test's own on a free loopback port, which the test may stop and
start again (an outage) without touching the shared server other tests use."""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from tests.support.net import free_port, listening
from tests.support.services import service_missing
from tests.support.wait import wait_for


class RedisServer:
    """``tls``: (certificate, key, CA) paths; the server then listens with TLS only, on
    ``port``, and ``url`` is rediss:// to ``localhost``."""

    def __init__(self, workdir: Path, tls: tuple[Path, Path, Path] | None = None) -> None:
        self.tls = tls
        binary = shutil.which("redis-server")
        if binary is None:
            service_missing("redis-server", "not on PATH (Debian package redis-server)")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.tls:
            return f"rediss://localhost:{self.port}/0"
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Redis:
        """A client of the test's (trusting the test CA when TLS)."""
        if self.tls:
            return Redis.from_url(self.url, ssl_ca_certs=str(self.tls[2]), socket_timeout=2)
        return Redis(port=self.port, socket_connect_timeout=1)

    def _answers(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except (OSError, RedisError):
            return False

    def start(self) -> RedisServer:
        """Start (again, on the same port); returns once it answers PING."""
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        if self.tls:
            cert, key, ca = self.tls
            args = [self.binary, "--port", "0", "--tls-port", str(self.port)]
            args += ["--bind", "127.0.0.1", "--tls-auth-clients", "no"]
            args += ["--tls-cert-file", str(cert), "--tls-key-file", str(key)]
            args += ["--tls-ca-cert-file", str(ca)]
        # No persistence: a restart comes back empty, like a failed-over cache.
        args += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        with (self.workdir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._answers, 20, f"redis-server on {self.port}")
        return self

    def stop(self) -> None:
        """Take it away: nothing listens on its port afterwards."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        wait_for(lambda: not listening(self.port), 10, f"port {self.port} closed")


@contextmanager
def redis_server(
    workdir: Path, tls: tuple[Path, Path, Path] | None = None
) -> Iterator[RedisServer]:
    server = RedisServer(workdir, tls)
    try:
        yield server.start()
    finally:
        server.stop()


class SentinelGroup:
    """A master, one replica of it and two Sentinels watching them (quorum 1, a master
    judged down after one second), each a redis-server of the test's own on a free port.
    ``redis-server --sentinel`` is the Sentinel of Debian's redis-server package."""

    SERVICE = "authmaster"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.master = RedisServer(workdir / "master")
        self.replica = RedisServer(workdir / "replica")
        self.sentinel_ports = [free_port(), free_port()]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.SERVICE}/0"

    def master_port(self) -> int:
        """The master's port as the first Sentinel tells it."""
        with Redis(port=self.sentinel_ports[0], socket_timeout=2) as sentinel:
            _host, port = sentinel.execute_command(
                "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.SERVICE
            )
        return int(port)

    def _replicating(self) -> bool:
        with self.replica.client() as client:
            return bool(client.info("replication").get("master_link_status") == "up")

    def start(self) -> SentinelGroup:
        for server in (self.master, self.replica):
            server.workdir.mkdir(parents=True, exist_ok=True)
        self.master.start()
        self.replica.start()
        with self.replica.client() as client:
            client.replicaof("127.0.0.1", self.master.port)
        wait_for(self._replicating, 20, "replica in sync")
        for i, port in enumerate(self.sentinel_ports):
            conf = self.workdir / f"sentinel-{i}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
                f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.master.port} 1\n"
                f"sentinel down-after-milliseconds {self.SERVICE} 1000\n"
                f"sentinel failover-timeout {self.SERVICE} 5000\n"
            )
            with (self.workdir / f"sentinel-{i}.log").open("ab") as log:
                self.sentinels.append(
                    subprocess.Popen(
                        [self.master.binary, str(conf), "--sentinel"],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        for port in self.sentinel_ports:
            wait_for(functools.partial(listening, port), 20, f"sentinel on {port}")
        wait_for(lambda: self.master_port() == self.master.port, 20, "sentinels see the master")
        return self

    def kill_master(self) -> None:
        """SIGKILL: no goodbye to clients or Sentinels, as a crashed node."""
        if self.master.process is not None:
            self.master.process.kill()
            self.master.process.wait(timeout=10)

    def stop(self) -> None:
        for process in self.sentinels:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=20)
        self.replica.stop()
        self.master.stop()


@contextmanager
def sentinel_group(workdir: Path) -> Iterator[SentinelGroup]:
    group = SentinelGroup(workdir)
    try:
        yield group.start()
    finally:
        group.stop()
