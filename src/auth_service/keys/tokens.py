"""Access tokens: JWT (RFC 7519) signed with JWS (RFC 7515), asymmetric algorithms only."""

from __future__ import annotations

import hmac
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from auth_service.config.settings import TokenSettings
from auth_service.keys.errors import InvalidToken
from auth_service.keys.service import KeyService, PublishedKey
from auth_service.observability import metrics, tracing

# Never HS* (a public key must not double as an HMAC secret) and never "none".
ALLOWED_ALGORITHMS = frozenset({"ES256", "RS256", "EdDSA"})
REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "tid"]
MAX_TOKEN_LENGTH = 8192
# Verified tokens remembered per worker (ADR 0421): about 1.5 KB each, so at most ~6 MiB.
VERIFIED_CACHE_SIZE = 4096


@dataclass(frozen=True)
class AccessClaims:
    subject: uuid.UUID
    session_id: uuid.UUID
    tenant_id: uuid.UUID
    roles: tuple[str, ...]
    jti: str
    expires_at: int
    # How the session authenticated (RFC 8176 amr, SP 800-63B level as acr, OIDC auth_time):
    # what step-up rules read without a database round trip.
    amr: tuple[str, ...] = ()
    acr: str | None = None
    auth_time: int | None = None
    # RFC 9449 section 6.1: the thumbprint of the DPoP key the token is bound to (``cnf.jkt``).
    jkt: str | None = None


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_in: int


async def sign(keys: KeyService, claims: dict[str, Any], *, algorithm: str | None, typ: str) -> str:
    """``claims`` signed with our active key of ``algorithm`` (default: the access tokens'),
    the ``kid`` and ``typ`` in the header; timed and traced like every signature of ours."""
    signer = await keys.signer(algorithm)
    start = time.perf_counter()
    with tracing.span("token.sign", {"jwt.alg": signer.algorithm, "jwt.kid": signer.kid}):
        token = jwt.encode(
            claims,
            signer.private_key,
            algorithm=signer.algorithm,
            headers={"kid": signer.kid, "typ": typ},
        )
    metrics.TOKEN_SIGN_DURATION.observe(time.perf_counter() - start)
    return token


@dataclass(frozen=True, slots=True)
class _Verified:
    token: str
    claims: AccessClaims
    kid: str
    key: PublishedKey


class VerifiedTokens:
    """Access tokens whose signature and claims this worker has verified, until their ``exp``.

    Keyed by the signature segment; a hit also needs the whole token to be the one verified
    (so a copied signature on other claims is verified in full, and fails), the time to be
    before ``exp`` (after it, the full check with its leeway decides) and the signing key to
    be still the one published under its ``kid`` (a retired key ends its tokens here as well).
    Only the cryptographic check is cached: session liveness, the user's status and roles are
    still read on every request by whoever needs them (``fresh_principal``), so a revocation
    is seen by the next request on every worker.
    """

    def __init__(self, size: int = VERIFIED_CACHE_SIZE) -> None:
        self.size = size
        self._entries: dict[str, _Verified] = {}

    def clear(self) -> None:
        self._entries.clear()

    def get(self, signature: str, token: str, now: float) -> _Verified | None:
        entry = self._entries.get(signature)
        if entry is None:
            return None
        if now >= entry.claims.expires_at or not hmac.compare_digest(entry.token, token):
            return None
        return entry

    def put(self, signature: str, entry: _Verified, now: float) -> None:
        entries = self._entries
        if len(entries) >= self.size:
            for sig in [s for s, e in entries.items() if now >= e.claims.expires_at]:
                del entries[sig]
            if len(entries) >= self.size:  # all live: forget the oldest half
                for sig in list(entries)[: self.size // 2]:
                    del entries[sig]
        entries[signature] = entry

    def drop(self, signature: str) -> None:
        self._entries.pop(signature, None)

    def __len__(self) -> int:
        return len(self._entries)


class AccessTokenService:
    def __init__(self, keys: KeyService, settings: TokenSettings, issuer: str) -> None:
        self._keys = keys
        self._settings = settings
        self._issuer = issuer
        self.verified = VerifiedTokens()

    def apply_settings(self, settings: TokenSettings) -> None:
        """Hot reload: lifetimes and leeway apply to tokens issued or checked from now on."""
        self._settings = settings
        self.verified.clear()  # verified under the previous audience and leeway

    async def issue(
        self,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        tenant_id: uuid.UUID,
        roles: list[str],
        *,
        amr: list[str] | None = None,
        acr: str | None = None,
        auth_time: int | None = None,
        jkt: str | None = None,
    ) -> IssuedToken:
        now = int(time.time())
        ttl = self._settings.access_token_ttl_seconds
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": str(user_id),
            "aud": self._settings.audience,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
            "sid": str(session_id),
            "tid": str(tenant_id),
            "roles": sorted(roles),
        }
        if amr:
            claims["amr"] = list(amr)
        if acr:
            claims["acr"] = acr
        if auth_time is not None:
            claims["auth_time"] = auth_time
        if jkt is not None:
            claims["cnf"] = {"jkt": jkt}
        return IssuedToken(await sign(self._keys, claims, algorithm=None, typ="at+jwt"), ttl)

    async def verify(self, token: str) -> AccessClaims:
        """Verify signature, algorithm, ``kid``, issuer, audience and time claims; a token
        this worker verified before is not verified again until its ``exp`` (VerifiedTokens)."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("too long")
        signature = token.rpartition(".")[2]
        now = time.time()
        hit = self.verified.get(signature, token, now)
        if hit is not None:
            current = await self._keys.public_key(hit.kid)
            # The key cache rebuilds its objects on each reload: the same key compares equal.
            if current is hit.key or (
                current is not None
                and current.algorithm == hit.key.algorithm
                and current.jwk == hit.key.jwk
            ):
                return hit.claims
            self.verified.drop(signature)
        claims, kid, key = await self._verify(token)
        if signature:
            self.verified.put(signature, _Verified(token, claims, kid, key), now)
        return claims

    async def _verify(self, token: str) -> tuple[AccessClaims, str, PublishedKey]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("malformed") from None
        alg = header.get("alg")
        kid = header.get("kid")
        if alg not in ALLOWED_ALGORITHMS:
            raise InvalidToken(f"algorithm not allowed: {str(alg)[:16]}")
        if not isinstance(kid, str) or not kid or len(kid) > 128:
            raise InvalidToken("missing kid")
        if header.get("typ") != "at+jwt":
            # RFC 9068 section 4: an access token says so, so no other JWT of ours passes.
            raise InvalidToken("not an access token")
        key = await self._keys.public_key(kid)
        if key is None:
            raise InvalidToken("unknown kid")
        if key.algorithm != alg:
            raise InvalidToken("algorithm does not match the key")
        try:
            claims = jwt.decode(
                token,
                key.public_key,
                algorithms=[key.algorithm],
                audience=self._settings.audience,
                issuer=self._issuer,
                leeway=self._settings.clock_skew_seconds,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("expired") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(type(exc).__name__) from None
        try:
            roles = claims.get("roles", [])
            if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
                raise InvalidToken("bad roles claim")
            verified = AccessClaims(
                subject=uuid.UUID(claims["sub"]),
                session_id=uuid.UUID(claims["sid"]),
                tenant_id=uuid.UUID(claims["tid"]),
                roles=tuple(roles),
                jti=str(claims["jti"]),
                expires_at=int(claims["exp"]),
                amr=_strings(claims.get("amr", [])),
                acr=str(claims["acr"]) if isinstance(claims.get("acr"), str) else None,
                auth_time=_int_or_none(claims.get("auth_time")),
                jkt=_bound_key(claims.get("cnf")),
            )
        except (ValueError, TypeError):
            raise InvalidToken("bad subject claims") from None
        return verified, kid, key


def _bound_key(cnf: Any) -> str | None:
    if cnf is None:
        return None
    if not isinstance(cnf, dict) or not isinstance(cnf.get("jkt"), str):
        raise InvalidToken("bad cnf claim")
    return str(cnf["jkt"])


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidToken("bad amr claim")
    return tuple(value)


def _int_or_none(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidToken("bad auth_time claim")
    return value
