"""A redis-server of the test's own on a free loopback port, which the test may stop and
start again (an outage) without touching the shared server other tests use."""

from __future__ import annotations

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
