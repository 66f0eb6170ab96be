"""JWK Sets a client registers (RFC 7591 ``jwks``, ``jwks_uri``): what is acceptable, and
which of its keys may have signed a JWT. No I/O here (``oauth.client_keys`` fetches)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import jwt

from auth_service.security.dpop import PRIVATE_JWK_MEMBERS

MAX_KEYS = 20
# Members of private or symmetric keys: never registered, never used to verify.
PRIVATE_MEMBERS = PRIVATE_JWK_MEMBERS


def jwks_problem(jwks: Any) -> str | None:
    """Why ``jwks`` is no acceptable JWK Set of public signing keys, or None."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        return 'a JWK Set: {"keys": [...]}'
    keys = jwks["keys"]
    if not keys or len(keys) > MAX_KEYS:
        return f"1 to {MAX_KEYS} keys"
    for key in keys:
        if not isinstance(key, dict) or not isinstance(key.get("kty"), str):
            return "every key a JWK with kty"
        if PRIVATE_MEMBERS.intersection(key):
            return "public keys only (no private or symmetric key material)"
        if key.get("use", "sig") != "sig":
            return "signing keys only (use: sig)"
        try:
            jwt.PyJWK(key)
        except jwt.PyJWTError:
            return "every key a usable RSA, EC or OKP public key"
    return None


def jwks_uri_problem(uri: str) -> str | None:
    """Why ``uri`` cannot be registered as a jwks_uri, or None (the address rules apply when
    it is fetched)."""
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "an absolute https URL"
    if parts.username or parts.password or parts.fragment:
        return "no credentials or fragment"
    return None


def select(jwks: dict[str, Any], kid: str | None, alg: str) -> list[jwt.PyJWK]:
    """The keys of ``jwks`` that may have signed with ``alg`` under ``kid`` (every fitting
    key when the JWT names none)."""
    found = []
    for key in jwks.get("keys", ()):
        if not isinstance(key, dict) or PRIVATE_MEMBERS.intersection(key):
            continue
        if key.get("use", "sig") != "sig" or (kid is not None and key.get("kid") != kid):
            continue
        if key.get("alg") not in (None, alg):
            continue
        try:
            found.append(jwt.PyJWK(key, algorithm=alg))
        except (jwt.PyJWTError, ValueError, TypeError):
            continue  # another type of key than the algorithm needs
    return found
