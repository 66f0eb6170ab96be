"""The forms of ``redis.url`` (security/redis_connect.py turns them into clients): checked
when settings load, so ``serve`` and ``config check`` refuse a malformed URL with one line."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SENTINEL_SCHEME = "redis+sentinel"
SCHEMES = ("redis", "rediss", "unix", SENTINEL_SCHEME)


@dataclass(frozen=True)
class RedisTarget:
    url: str
    scheme: str
    sentinels: tuple[tuple[str, int], ...] = ()
    service_name: str | None = None
    db: int = 0
    password: str | None = None

    @property
    def tls(self) -> bool:
        return self.scheme == "rediss"


def parse_redis_url(url: str) -> RedisTarget:
    """Check ``url``'s form; ValueError with a readable reason (never the password)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in SCHEMES:
        raise ValueError(
            f"redis.url must start with one of {', '.join(s + '://' for s in SCHEMES)}"
        )
    if scheme != SENTINEL_SCHEME:
        return RedisTarget(url, scheme)
    auth, _, rest = rest.rpartition("@")
    hosts, _, path = rest.partition("/")
    parts = [p for p in path.split("/") if p]
    if not hosts or not 1 <= len(parts) <= 2:
        raise ValueError(
            "redis.url: a Sentinel URL is redis+sentinel://host:port,host:port/service_name/db "
            "(one Sentinel or more; the database is optional)"
        )
    sentinels = []
    for host in hosts.split(","):
        split = urlsplit(f"//{host}")
        try:
            port = split.port or 26379
        except ValueError:
            raise ValueError(f"redis.url: {host!r} is not host:port") from None
        if not split.hostname:
            raise ValueError(f"redis.url: {host!r} is not host:port")
        sentinels.append((split.hostname, port))
    if len(parts) == 2 and not parts[1].isdigit():
        raise ValueError("redis.url: the database after the service name must be a number")
    password = unquote(auth.partition(":")[2] or auth) if auth else None
    return RedisTarget(
        url,
        scheme,
        tuple(sentinels),
        parts[0],
        int(parts[1]) if len(parts) == 2 else 0,
        password,
    )
