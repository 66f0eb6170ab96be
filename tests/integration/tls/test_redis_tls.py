"""rediss:// with redis.ssl_ca_cert against a real redis-server listening with TLS only
(ADR 0311): every use of Redis goes over it; a CA that did not sign the server's
certificate is refused, reported by the readiness check, and the service keeps answering
with the in-process fallback (ADR 0014)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.redis_server import RedisServer, redis_server
from tests.support.server import Server, base_env, migrate, postgres_database
from tests.support.services import sqlalchemy_url
from tests.support.tls import issue_certificate, self_signed_certificate
from tests.support.wait import wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]


@dataclass
class TlsRedis:
    server: RedisServer
    ca: Path
    other_ca: Path


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[TlsRedis]:
    ca = self_signed_certificate(tmp_path, 30, name="redis-test-ca")
    other_ca, _ = self_signed_certificate(tmp_path, 30, name="other-ca")
    cert, key = issue_certificate(tmp_path, ca, name="localhost")
    with redis_server(tmp_path, tls=(cert, key, ca[0])) as server:
        yield TlsRedis(server, ca[0], other_ca)


def _checks(server: Server) -> dict[str, dict[str, str]]:
    body = httpx.get(f"{server.management_url}/health", timeout=10).json()
    return dict(body["checks"])


def _failed_login(server: Server) -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/auth/login",
        json={"email": "nobody@example.com", "password": "not-the-password"},
        timeout=10,
    )


@contextlib.contextmanager
def _serve(tmp: Path, redis_url: str, ca: Path) -> Iterator[Server]:
    with postgres_database() as dsn:
        env = base_env(
            tmp,
            sqlalchemy_url(dsn),
            AUTH_REDIS__URL=redis_url,
            AUTH_REDIS__SSL_CA_CERT=str(ca),
            AUTH_RATE_LIMITS__STORAGE="redis",
        )
        migrate(tmp, env)
        with Server(tmp, env) as server:
            yield server


def test_every_redis_use_goes_over_tls(tls_redis: TlsRedis, tmp_path: Path) -> None:
    with _serve(tmp_path, tls_redis.server.url, tls_redis.ca) as server:
        wait_for(lambda: _checks(server)["redis"]["status"] == "up", 20, "redis check up")
        assert _failed_login(server).status_code == 401
        with tls_redis.server.client() as client:
            keys = [k.decode() for k in client.keys("*")]
        # The rate limiter's windows (limits) and the lockout's counters (redis-py).
        assert any(k.startswith("LIMITS") for k in keys), keys
        assert any("lockout" in k for k in keys), keys


def test_a_wrong_ca_is_refused_and_the_service_falls_back(
    tls_redis: TlsRedis, tmp_path: Path
) -> None:
    with _serve(tmp_path, tls_redis.server.url, tls_redis.other_ca) as server:
        wait_for(lambda: _checks(server)["redis"]["status"] == "down", 20, "redis check down")
        detail = _checks(server)["redis"]["message"]
        assert "TLS certificate of Redis refused" in detail
        assert "redis.ssl_ca_cert" in detail
        # Degraded, not down: logins are still answered, limits counted in-process.
        assert httpx.get(f"{server.management_url}/health/ready", timeout=10).status_code == 200
        assert _failed_login(server).status_code == 401
        with tls_redis.server.client() as client:
            assert client.keys("*") == []
