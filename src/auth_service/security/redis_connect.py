"""The one way the service reaches Redis: a URL (direct, TLS or through Sentinel) and an
optional CA, turned into the redis-py client and the rate limiter's storage (ADR 0311).

URLs:

- ``redis://[:password@]host:port/db`` — plain TCP;
- ``rediss://[:password@]host:port/db`` — TLS; the server's certificate must chain to
  ``redis.ssl_ca_cert`` (or to the system store when unset) and name the host;
- ``redis+sentinel://[:password@]host:port[,host:port...]/service_name[/db]`` — ask the
  Sentinels for the master of ``service_name`` and follow it through failovers; the password
  is the master's (the Sentinels themselves are asked without one).

Every use of Redis (rate limits, lockout, alert de-duplication, the readiness check) goes
through here, so all of them speak the same TLS and follow the same master.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

from auth_service.config.redis_url import RedisTarget, parse_redis_url

# An unreachable Redis must fail fast enough for the in-process fallback (ADR 0014) to
# answer the request instead.
TIMEOUT_SECONDS = 2.0


def _options(target: RedisTarget, ca_cert: Path | None) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_timeout": TIMEOUT_SECONDS,
        "socket_connect_timeout": TIMEOUT_SECONDS,
    }
    if target.tls and ca_cert is not None:
        options["ssl_ca_certs"] = str(ca_cert)
    return options


def redis_client(url: str, ca_cert: Path | None = None) -> Redis:
    """The service's client. Through Sentinel, each new connection asks the Sentinels for
    the current master, and a connection to a demoted master is dropped."""
    target = parse_redis_url(url)
    options = _options(target, ca_cert)
    if target.service_name is None:
        return Redis.from_url(url, **options)
    sentinel = Sentinel(
        list(target.sentinels),
        sentinel_kwargs={
            "socket_timeout": TIMEOUT_SECONDS,
            "socket_connect_timeout": TIMEOUT_SECONDS,
        },
        **options,
    )
    master: Redis = sentinel.master_for(target.service_name, db=target.db, password=target.password)
    return master


def limits_storage_args(url: str, ca_cert: Path | None = None) -> tuple[str, dict[str, Any]]:
    """The ``limits`` storage URI and options for the same Redis (rate limits)."""
    target = parse_redis_url(url)
    options = _options(target, ca_cert)
    if target.service_name is None:
        return f"async+{url}", options
    hosts = ",".join(f"{host}:{port}" for host, port in target.sentinels)
    options["db"] = target.db
    if target.password:
        options["password"] = target.password
    # Reads from the master too: a replica's window lags, and would let a burst through.
    options["use_replicas"] = False
    options["sentinel_kwargs"] = {
        "socket_timeout": TIMEOUT_SECONDS,
        "socket_connect_timeout": TIMEOUT_SECONDS,
    }
    return f"async+redis+sentinel://{hosts}/{target.service_name}", options
