"""Signing and checking our own JWTs (RFC 7515, RFC 7519), on PyJWT and our keys.

Verification trusts nothing a token says about keys: the key is looked up by ``kid`` among
our published keys, the header's ``alg`` must be that key's algorithm and one of our
asymmetric algorithms, and a header carrying key material or a key location (``jwk``,
``jku``, ``x5u``, ``x5c``; RFC 7515 sections 4.1.3 to 4.1.6) or extensions we do not know
(``crit``) is refused outright, before any key is looked at. Oversize tokens are refused
before parsing.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import jwt

from auth_service.keys.service import KeyService
from auth_service.keys.tokens import sign

__all__ = ["JoseError", "half_hash", "sign", "unverified_header", "verify"]

MAX_TOKEN_LENGTH = 8192
ALLOWED_ALGORITHMS = frozenset({"ES256", "RS256", "EdDSA"})
FORBIDDEN_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit"})


class JoseError(Exception):
    """A token failed a check. ``reason`` is for logs and error descriptions; no secret."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def unverified_header(token: str) -> dict[str, Any]:
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise JoseError("missing or too long")
    if token.count(".") != 2:
        raise JoseError("not a JWS compact serialisation")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise JoseError("malformed") from None
    found = FORBIDDEN_HEADERS.intersection(header)
    if found:
        raise JoseError(f"header parameter {sorted(found)[0]} is not accepted")
    return header


async def verify(
    keys: KeyService,
    token: str,
    *,
    issuer: str,
    typ: str | None,
    leeway: int,
    verify_exp: bool = True,
    required: tuple[str, ...] = ("iss", "sub", "exp", "iat"),
) -> dict[str, Any]:
    """The claims of one of our tokens, or JoseError. ``typ``: the header value required
    (None: any but ``at+jwt``, so an access token never passes as another JWT)."""
    header = unverified_header(token)
    alg, kid, got_typ = header.get("alg"), header.get("kid"), header.get("typ")
    if alg not in ALLOWED_ALGORITHMS:
        raise JoseError("algorithm not allowed")
    if not isinstance(kid, str) or not kid or len(kid) > 128:
        raise JoseError("missing kid")
    if typ is not None and got_typ != typ:
        raise JoseError(f"typ must be {typ}")
    if (
        typ is None
        and isinstance(got_typ, str)
        and got_typ.lower() in ("at+jwt", "application/at+jwt")
    ):
        raise JoseError("an access token is not accepted here")
    key = await keys.public_key(kid)
    if key is None:
        raise JoseError("unknown kid")
    if key.algorithm != alg:
        raise JoseError("algorithm does not match the key")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.public_key,
            algorithms=[key.algorithm],
            issuer=issuer,
            leeway=leeway,
            options={
                "require": list(required),
                "verify_aud": False,
                "verify_exp": verify_exp,
            },
        )
    except jwt.ExpiredSignatureError:
        raise JoseError("expired") from None
    except jwt.PyJWTError as exc:
        raise JoseError(type(exc).__name__) from None
    return claims


def half_hash(value: str, algorithm: str) -> str:
    """OIDC Core 3.1.3.6 ``at_hash``: the left half of the hash of the ASCII value, with the
    hash of the signing algorithm (SHA-512 for Ed25519, as OpenID Connect's EdDSA errata
    and every major provider use)."""
    digest = (hashlib.sha512 if algorithm == "EdDSA" else hashlib.sha256)(value.encode()).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).decode().rstrip("=")
