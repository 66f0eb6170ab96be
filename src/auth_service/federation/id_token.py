"""Validating an upstream ID token (OpenID Connect Core 1.0 section 3.1.3.7) with PyJWT,
the service's one JOSE library (ADR 1000)."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from auth_service.federation.errors import FederationTokenInvalid

# Asymmetric only: "none" and HS* (keyed with the client secret) are never accepted.
ALLOWED_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
LEEWAY_SECONDS = 60
MAX_AGE_SECONDS = 600  # an iat older than this is a replayed or stale token


@dataclass(frozen=True)
class Expected:
    """What the token must say: who issued it (``issuer`` may hold ``{tenantid}``, filled
    from the token's ``tid`` claim: Microsoft Entra's multi-tenant endpoints), for whom,
    and the nonce of this sign-in."""

    issuer: str
    client_id: str
    nonce: str
    algorithms: Sequence[str] = ALLOWED_ALGS


def _header(token: str) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise FederationTokenInvalid("malformed") from None


def key_id(token: str) -> str | None:
    """The ``kid`` of the token's header (to pick a key from the JWKS)."""
    kid = _header(token).get("kid")
    return kid if isinstance(kid, str) else None


def validate(token: str, jwks: jwt.PyJWKSet, expected: Expected, *, now: float) -> dict[str, Any]:
    """The verified claims of ``token``. Raises FederationTokenInvalid with the reason:
    ``alg`` (not on the allow-list), ``key`` (no matching key), ``signature``, ``iss``,
    ``aud``, ``azp``, ``exp``, ``iat``, ``nonce``, ``sub`` or ``malformed``."""
    header = _header(token)
    alg = header.get("alg")
    if alg not in expected.algorithms or alg not in ALLOWED_ALGS:
        raise FederationTokenInvalid("alg")
    key = _key_for(jwks, header.get("kid"), str(alg))
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[str(alg)],
            audience=expected.client_id,
            leeway=LEEWAY_SECONDS,
            options={"require": ["iss", "sub", "aud", "exp", "iat"], "verify_iss": False},
        )
    except jwt.InvalidAudienceError:
        raise FederationTokenInvalid("aud") from None
    except jwt.ExpiredSignatureError:
        raise FederationTokenInvalid("exp") from None
    except jwt.ImmatureSignatureError:
        raise FederationTokenInvalid("iat") from None
    except jwt.InvalidSignatureError:
        raise FederationTokenInvalid("signature") from None
    except jwt.PyJWTError:
        raise FederationTokenInvalid("malformed") from None
    _check_claims(claims, expected, now)
    return claims


def _key_for(jwks: jwt.PyJWKSet, kid: object, alg: str) -> jwt.PyJWK:
    candidates = [
        k
        for k in jwks.keys
        if (kid is None or k.key_id == kid) and k.public_key_use in (None, "sig")
    ]
    if not candidates:
        raise FederationTokenInvalid("key")
    return candidates[0]


def expected_issuer(template: str, claims: dict[str, Any]) -> str:
    """The issuer a token must carry: ``{tenantid}`` filled from its ``tid``."""
    if "{tenantid}" not in template:
        return template
    tid = claims.get("tid")
    if not isinstance(tid, str) or not tid:
        raise FederationTokenInvalid("iss")
    return template.replace("{tenantid}", tid)


def _check_claims(claims: dict[str, Any], expected: Expected, now: float) -> None:
    if claims.get("iss") != expected_issuer(expected.issuer, claims):
        raise FederationTokenInvalid("iss")
    aud = claims.get("aud")
    # Several audiences: azp must name us (OIDC Core 3.1.3.7 items 4 and 5).
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != expected.client_id:
        raise FederationTokenInvalid("azp")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or iat > now + LEEWAY_SECONDS:
        raise FederationTokenInvalid("iat")
    if iat < now - MAX_AGE_SECONDS:
        raise FederationTokenInvalid("iat")
    nonce = claims.get("nonce")
    if not isinstance(nonce, str) or not _same(nonce, expected.nonce):
        raise FederationTokenInvalid("nonce")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not 0 < len(sub) <= 255:
        raise FederationTokenInvalid("sub")


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
