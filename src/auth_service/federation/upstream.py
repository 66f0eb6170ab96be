"""Talking to an upstream OpenID Connect provider: discovery (cached), its JWKS (cached,
refetched once for an unknown ``kid``: key rotation), the token request and userinfo.

Every call has a timeout; anything that is not the protocol's answer (down, slow, a 5xx,
not JSON) is UpstreamUnavailable, so a sign-in ends on a page that says so, never in a 500.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import structlog

from auth_service.config.federation import FederationSettings
from auth_service.federation.breaker import Breaker
from auth_service.federation.errors import (
    FederationTokenInvalid,
    InvalidConnector,
    UpstreamUnavailable,
)

log = structlog.get_logger(__name__)

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
DISCOVERY_TTL_SECONDS = 3600.0
JWKS_TTL_SECONDS = 3600.0
JWKS_MIN_REFRESH_SECONDS = 30.0  # an unknown kid refetches at most this often
_MAX_BODY = 1 << 20
GITHUB_JSON = "application/vnd.github+json"


@dataclass(frozen=True)
class Metadata:
    """The parts of a provider's discovery document we use (OpenID Connect Discovery 1.0
    section 3)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    algorithms: tuple[str, ...]


@dataclass(frozen=True)
class Tokens:
    """A token response (RFC 6749 section 5.1); ``id_token`` only from an OIDC provider."""

    id_token: str | None
    access_token: str | None
    refresh_token: str | None = None
    expires_in: int | None = None
    scope: str | None = None
    token_type: str | None = None

    @classmethod
    def of(cls, body: dict[str, Any]) -> Tokens:
        def text(name: str) -> str | None:
            value = body.get(name)
            return value if isinstance(value, str) and value else None

        expires = body.get("expires_in")
        return cls(
            id_token=text("id_token"),
            access_token=text("access_token"),
            refresh_token=text("refresh_token"),
            expires_in=expires
            if isinstance(expires, int) and not isinstance(expires, bool)
            else None,
            scope=text("scope"),
            token_type=text("token_type"),
        )


class Upstream:
    """One per process: the HTTP client, the caches and the circuit breakers, shared by
    every connector."""

    @classmethod
    def of(cls, settings: FederationSettings) -> Upstream:
        seconds = settings.upstream_timeout_seconds
        return cls(
            httpx.Timeout(seconds, connect=min(seconds, 5.0)),
            deadline=seconds,
            breaker=Breaker(settings.breaker_failures, settings.breaker_cooldown_seconds),
        )

    def __init__(
        self,
        timeout: httpx.Timeout = TIMEOUT,
        *,
        deadline: float | None = None,
        breaker: Breaker | None = None,
    ) -> None:
        self._timeout = timeout
        # httpx's timeout is per operation (connect, each read): a provider trickling bytes
        # could outlast it, so every call also has a deadline as a whole.
        self._deadline = deadline or (timeout.read or 10.0) + (timeout.connect or 0.0)
        self.breaker = breaker or Breaker()
        self._metadata: dict[str, tuple[float, Metadata]] = {}
        self._jwks: dict[str, tuple[float, jwt.PyJWKSet]] = {}

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self._timeout,
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": "auth-service"},
        )

    async def _json(self, method: str, url: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        status, body = await self._any_json(method, url, **kwargs)
        if not isinstance(body, dict):
            raise UpstreamUnavailable
        return status, body

    async def _any_json(self, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
        try:
            async with asyncio.timeout(self._deadline):
                async with self._client() as http:
                    response = await http.request(method, url, **kwargs)
        except (httpx.HTTPError, TimeoutError) as exc:
            log.warning("federation_upstream_unreachable", url=url, error=type(exc).__name__)
            raise UpstreamUnavailable from None
        if response.status_code >= 500 or len(response.content) > _MAX_BODY:
            log.warning("federation_upstream_failed", url=url, status=response.status_code)
            raise UpstreamUnavailable
        try:
            return response.status_code, response.json()
        except ValueError:
            raise UpstreamUnavailable from None

    async def metadata(self, issuer: str, *, tenant_template: bool = False) -> Metadata:
        """The issuer's discovery document, cached for an hour. Its ``issuer`` must be the
        one configured (Discovery section 4.3); ``tenant_template``: Microsoft Entra's
        multi-tenant documents name ``{tenantid}`` instead. Raises UpstreamUnavailable or
        InvalidConnector."""
        cached = self._metadata.get(issuer)
        if cached is not None and time.monotonic() - cached[0] < DISCOVERY_TTL_SECONDS:
            found = cached[1]
        else:
            status, doc = await self._json("GET", issuer + "/.well-known/openid-configuration")
            if status != 200:
                raise UpstreamUnavailable
            found = _metadata(doc)
            self._metadata[issuer] = (time.monotonic(), found)
        # Checked at every use: two connectors of one issuer may be of different types.
        same = found.issuer == issuer
        if not same and not (tenant_template and "{tenantid}" in found.issuer):
            log.warning("federation_issuer_mismatch", configured=issuer, found=found.issuer)
            raise InvalidConnector("the provider's discovery document names another issuer")
        return found

    async def jwks(self, jwks_uri: str, kid: str | None) -> jwt.PyJWKSet:
        """The provider's keys; fetched again when ``kid`` is not among them (rotation)."""
        cached = self._jwks.get(jwks_uri)
        now = time.monotonic()
        if cached is not None:
            fresh = now - cached[0] < JWKS_TTL_SECONDS
            known = kid is None or any(k.key_id == kid for k in cached[1].keys)
            if fresh and (known or now - cached[0] < JWKS_MIN_REFRESH_SECONDS):
                return cached[1]
        status, doc = await self._json("GET", jwks_uri)
        if status != 200:
            raise UpstreamUnavailable
        try:
            keys = jwt.PyJWKSet.from_dict(doc)
        except jwt.PyJWTError:
            raise FederationTokenInvalid("key") from None
        self._jwks[jwks_uri] = (now, keys)
        return keys

    async def exchange(
        self,
        meta: Metadata,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        client_id: str,
        client_secret: str | None,
    ) -> Tokens:
        """The token request (RFC 6749 section 4.1.3 with RFC 7636's ``code_verifier``),
        authenticating with client_secret_basic. Raises UpstreamUnavailable or
        FederationTokenInvalid (refused, or no ID token)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        auth: httpx.BasicAuth | None = None
        if client_secret is None:
            form["client_id"] = client_id
        else:
            # RFC 6749 section 2.3.1: form-urlencoded before Basic.
            auth = httpx.BasicAuth(quote(client_id, safe=""), quote(client_secret, safe=""))
        tokens = await self.token_request(meta.token_endpoint, form, auth)
        if tokens.id_token is None:
            raise FederationTokenInvalid("no_id_token")
        return tokens

    async def token_request(
        self, url: str, form: dict[str, str], auth: httpx.BasicAuth | None
    ) -> Tokens:
        """POST to a token endpoint. GitHub answers a refusal with 200 and an ``error``
        member, so that is a refusal too. Raises UpstreamUnavailable or
        FederationTokenInvalid."""
        status, body = await self._json("POST", url, data=form, auth=auth)
        if status != 200 or "error" in body:
            log.info("federation_token_refused", status=status, error=str(body.get("error"))[:64])
            raise FederationTokenInvalid("token_request")
        return Tokens.of(body)

    async def oauth2_exchange(
        self,
        token_url: str,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str,
        client_id: str,
        client_secret: str | None,
        basic: bool,
    ) -> Tokens:
        """The token request of a plain OAuth2 provider; ``basic``: client_secret_basic,
        else the credentials in the form (GitHub's way). Needs an access token."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
            "client_id": client_id,
        }
        auth: httpx.BasicAuth | None = None
        if client_secret is not None and basic:
            del form["client_id"]
            auth = httpx.BasicAuth(quote(client_id, safe=""), quote(client_secret, safe=""))
        elif client_secret is not None:
            form["client_secret"] = client_secret
        tokens = await self.token_request(token_url, form, auth)
        if tokens.access_token is None:
            raise FederationTokenInvalid("no_access_token")
        return tokens

    async def api(self, url: str, access_token: str, accept: str = "application/json") -> Any:
        """GET a JSON resource with the access token (a userinfo URL, GitHub's API).
        Raises UpstreamUnavailable, or FederationTokenInvalid when refused."""
        headers = {"Authorization": f"Bearer {access_token}", "Accept": accept}
        if accept == GITHUB_JSON:
            headers["X-GitHub-Api-Version"] = "2022-11-28"
        status, body = await self._any_json("GET", url, headers=headers)
        if status != 200:
            log.info("federation_api_refused", url=url, status=status)
            raise FederationTokenInvalid("userinfo")
        return body

    async def userinfo(self, meta: Metadata, access_token: str) -> dict[str, Any]:
        """The userinfo claims (OIDC Core section 5.3); empty when the provider has none.
        A failure here does not fail the sign-in: the ID token is what was verified."""
        if meta.userinfo_endpoint is None:
            return {}
        try:
            status, body = await self._json(
                "GET", meta.userinfo_endpoint, headers={"Authorization": f"Bearer {access_token}"}
            )
        except UpstreamUnavailable:
            return {}
        return body if status == 200 else {}


def _metadata(doc: dict[str, Any]) -> Metadata:
    def text(name: str) -> str:
        value = doc.get(name)
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            raise UpstreamUnavailable
        return value

    userinfo = doc.get("userinfo_endpoint")
    algs = doc.get("id_token_signing_alg_values_supported") or ["RS256"]
    issuer = doc.get("issuer")
    if not isinstance(issuer, str):
        raise UpstreamUnavailable
    return Metadata(
        issuer=issuer,
        authorization_endpoint=text("authorization_endpoint"),
        token_endpoint=text("token_endpoint"),
        jwks_uri=text("jwks_uri"),
        userinfo_endpoint=userinfo if isinstance(userinfo, str) else None,
        algorithms=tuple(str(a) for a in algs if isinstance(a, str)),
    )
