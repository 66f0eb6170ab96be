"""Secure random tokens and their storage digests."""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32  # 256 bits


def new_token() -> str:
    """An opaque, URL-safe token carrying 256 bits from the OS CSPRNG."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_digest(token: str) -> bytes:
    """SHA-256 of a token: what the database keeps instead of the token itself.

    A plain hash suffices (no salt, no stretching): the input already has 256 bits of
    entropy, so a stolen table cannot be brute-forced back into live tokens.
    """
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def constant_time_equals(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
