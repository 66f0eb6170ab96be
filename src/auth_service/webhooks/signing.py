"""Standard Webhooks signatures (https://www.standardwebhooks.com, spec "Signature scheme").

The signed content is ``{webhook-id}.{webhook-timestamp}.{body}``; the signature is
``v1,`` + base64 of its HMAC-SHA256 under the secret's bytes (the base64 after ``whsec_``).
Several signatures are separated by spaces: during a rotation's overlap both secrets sign.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Iterable

SECRET_PREFIX = "whsec_"  # noqa: S105 - the public prefix of a secret, not one
SECRET_BYTES = 32  # the spec asks for 24 to 64
_ID_PREFIX = "msg_"


def new_secret() -> str:
    """A fresh signing secret, as shown once to the operator."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def signature(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of a message."""
    content = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(_secret_bytes(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: Iterable[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per secret, space separated."""
    return " ".join(signature(s, webhook_id, timestamp, body) for s in secrets_)


def webhook_id(event_id: uuid.UUID, subscription_id: uuid.UUID) -> str:
    """The message id of one event for one subscription: the same at every attempt (the
    receiver's idempotency key), and the job's key."""
    return f"{_ID_PREFIX}{event_id.hex}_{subscription_id.hex}"


def parse_webhook_id(value: str) -> tuple[uuid.UUID, uuid.UUID]:
    """(event id, subscription id) of a message id; ValueError when it is not one."""
    event_hex, _, subscription_hex = value.removeprefix(_ID_PREFIX).partition("_")
    return uuid.UUID(hex=event_hex), uuid.UUID(hex=subscription_hex)
