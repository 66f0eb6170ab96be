"""A client's public keys (RFC 7591 ``jwks`` / ``jwks_uri``) for ``private_key_jwt``.

``jwks`` is registered inline. ``jwks_uri`` is fetched by the server, so it must not become
a way to make the server reach inside its own network (SSRF): only ``https``; the host is
resolved once and every address must be public (no loopback, private, link-local, shared,
reserved or multicast address, IPv4-mapped ones included), and the connection goes to that
checked address (no second resolution to rebind); no redirects, no proxy from the
environment, 5 s, 64 KiB at most. ``oauth.jwks_uri_allow_private_networks`` lifts the
address rule (and allows ``http``) for development and tests.

Fetched sets are cached per URI for ``CACHE_SECONDS``; an unknown ``kid`` refetches at most
every ``REFRESH_SECONDS`` (key rotation at the client), and a failed fetch keeps using the
last good set for up to ``STALE_SECONDS``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import jwt
import structlog

from auth_service.config.settings import Settings
from auth_service.oauth.clients import Client
from auth_service.oauth.jwk_sets import jwks_problem, jwks_uri_problem, select

log = structlog.get_logger(__name__)

CACHE_SECONDS = 300
REFRESH_SECONDS = 30
STALE_SECONDS = 3600
FETCH_TIMEOUT = 5.0
MAX_JWKS_BYTES = 64 * 1024


class KeysUnavailable(Exception):
    """The client's keys could not be had; ``reason`` is for logs (no secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


@dataclass
class _Cached:
    jwks: dict[str, Any]
    fetched: float


class ClientKeys:
    def __init__(self, settings: Callable[[], Settings]) -> None:
        self._settings = settings
        self._cache: dict[str, _Cached] = {}
        self._lock = asyncio.Lock()

    async def candidates(self, client: Client, kid: str | None, alg: str) -> list[jwt.PyJWK]:
        """The client's keys that fit ``kid`` and ``alg``. Raises KeysUnavailable."""
        if client.jwks is not None:
            return select(client.jwks, kid, alg)
        uri = client.jwks_uri
        if uri is None:
            raise KeysUnavailable("the client registered no keys")
        found = select(await self._remote(uri, refresh=False), kid, alg)
        if not found:
            found = select(await self._remote(uri, refresh=True), kid, alg)
        return found

    async def _remote(self, uri: str, *, refresh: bool) -> dict[str, Any]:
        cached = self._cache.get(uri)
        age = time.monotonic() - cached.fetched if cached else float(STALE_SECONDS)
        fresh = age < REFRESH_SECONDS or (age < CACHE_SECONDS and not refresh)
        if cached and fresh:
            return cached.jwks
        async with self._lock:
            try:
                jwks = await self.fetch(uri)
            except KeysUnavailable as exc:
                log.warning("client_jwks_unavailable", jwks_uri=uri[:200], reason=exc.reason)
                if cached and age < STALE_SECONDS:
                    return cached.jwks
                raise
            self._cache[uri] = _Cached(jwks, time.monotonic())
            return jwks

    async def fetch(self, uri: str) -> dict[str, Any]:
        """GET the JWK Set at ``uri`` under the rules above. Raises KeysUnavailable."""
        allow_private = self._settings().oauth.jwks_uri_allow_private_networks
        parts = urlsplit(uri)
        host = parts.hostname
        if jwks_uri_problem(uri) or host is None:
            raise KeysUnavailable("not an acceptable URL")
        if parts.scheme != "https" and not allow_private:
            raise KeysUnavailable("https is required")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError:
            raise KeysUnavailable("the host does not resolve") from None
        addresses = sorted({ipaddress.ip_address(info[4][0]) for info in infos}, key=str)
        if not addresses:
            raise KeysUnavailable("the host does not resolve")
        if not allow_private and not all(_public(a) for a in addresses):
            raise KeysUnavailable("the host resolves to a non-public address")
        pinned = addresses[0]
        netloc = f"[{pinned}]:{port}" if pinned.version == 6 else f"{pinned}:{port}"
        target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
        host_header = host if parts.port is None else f"{host}:{parts.port}"
        try:
            async with (
                httpx.AsyncClient(
                    timeout=FETCH_TIMEOUT, follow_redirects=False, trust_env=False
                ) as http,
                http.stream(
                    "GET",
                    target,
                    headers={"Host": host_header, "Accept": "application/json"},
                    extensions={"sni_hostname": host},
                ) as response,
            ):
                if response.status_code != 200:
                    raise KeysUnavailable(f"answered {response.status_code}")
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise KeysUnavailable("the JWK Set is too large")
        except httpx.HTTPError as exc:
            raise KeysUnavailable(f"fetch failed: {type(exc).__name__}") from None
        try:
            jwks = json.loads(body)
        except ValueError:
            raise KeysUnavailable("not JSON") from None
        problem = jwks_problem(jwks)
        if problem:
            raise KeysUnavailable(f"not a JWK Set of public keys: {problem}")
        result: dict[str, Any] = jwks
        return result
