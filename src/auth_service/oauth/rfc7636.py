"""PKCE (RFC 7636), S256 only, required for every client (OAuth 2.1 section 4.1.1).

``plain`` is refused (it protects nothing against a leaked authorization request), and so
is a missing ``code_challenge_method``: RFC 7636 section 4.3 makes ``plain`` its default,
so a server that accepts the omission accepts ``plain``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from auth_service.oauth.errors import InvalidGrant, InvalidRequest

S256 = "S256"
METHODS_SUPPORTED = (S256,)
# Section 4.1: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
# An S256 challenge is BASE64URL(SHA256(verifier)) without padding: exactly 43 characters.
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def check_challenge(challenge: str | None, method: str | None) -> str:
    """The authorization request's challenge (section 4.3), or InvalidRequest."""
    if challenge is None:
        raise InvalidRequest("code_challenge is required (PKCE, S256)")
    if method is None:
        raise InvalidRequest("code_challenge_method is required and must be S256")
    if method != S256:
        raise InvalidRequest("code_challenge_method must be S256")
    if not _S256_CHALLENGE.fullmatch(challenge):
        raise InvalidRequest("code_challenge is not a base64url SHA-256 digest")
    return challenge


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def verify(verifier: str | None, challenge: str | None) -> None:
    """Section 4.6 at the token endpoint. A verifier for a code issued without a challenge
    is refused too (a client and server disagreeing on whether PKCE is on is a downgrade)."""
    if challenge is None:
        if verifier is not None:
            raise InvalidGrant("code_verifier sent for a code issued without code_challenge")
        raise InvalidGrant("the code was issued without PKCE")
    if verifier is None:
        raise InvalidGrant("code_verifier is required")
    if not _VERIFIER.fullmatch(verifier):
        raise InvalidGrant("code_verifier must be 43 to 128 unreserved characters")
    if not hmac.compare_digest(s256(verifier), challenge):
        raise InvalidGrant("code_verifier does not match the code_challenge")
