"""Recovery codes: look-up secrets (NIST SP 800-63B section 5.1.2).

Each code carries about 79 bits from the OS CSPRNG (16 characters of a 31-letter alphabet
without look-alikes), well above the 64 bits SP 800-63B 5.1.2.1 asks of a look-up secret. Only
an HMAC-SHA256 of it is stored, keyed by a key derived from the master key and bound to the
user: a stolen table gives neither the codes nor a way to test guesses offline.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
LENGTH = 16
GROUP = 4


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(raw[i : i + GROUP] for i in range(0, LENGTH, GROUP))


def normalize(code: str) -> str | None:
    """A typed code without separators, lower case; None when it cannot be one of ours."""
    raw = code.strip().lower().replace("-", "").replace(" ", "")
    if len(raw) != LENGTH or any(ch not in ALPHABET for ch in raw):
        return None
    return raw


def code_hash(key: bytes, user_id: uuid.UUID, normalized: str) -> bytes:
    return hmac.new(key, user_id.bytes + normalized.encode(), hashlib.sha256).digest()
