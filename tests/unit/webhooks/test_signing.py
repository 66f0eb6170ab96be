"""Our Standard Webhooks signatures, checked by the reference implementation
(``standardwebhooks``): one secret, two during a rotation, and what must not verify."""

from __future__ import annotations

import time
import uuid

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from auth_service.webhooks.signing import (
    new_secret,
    parse_webhook_id,
    signature_header,
    webhook_id,
)

BODY = b'{"data":{"event_id":"e"},"type":"user.registered"}'


def _headers(secrets: list[str], msg_id: str = "msg_1", ts: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if ts is None else ts
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signature_header(secrets, msg_id, ts, BODY),
    }


def test_the_reference_verifies_our_signature() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert Webhook(secret).verify(BODY, _headers([secret])) == {
        "data": {"event_id": "e"},
        "type": "user.registered",
    }


def test_during_an_overlap_either_secret_verifies() -> None:
    new, old = new_secret(), new_secret()
    headers = _headers([new, old])
    assert headers["webhook-signature"].count("v1,") == 2
    Webhook(new).verify(BODY, headers)
    Webhook(old).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_a_changed_body_id_or_old_timestamp_does_not_verify() -> None:
    secret = new_secret()
    headers = _headers([secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "msg_2"})
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, _headers([secret], ts=int(time.time()) - 3600))


def test_a_message_id_names_its_event_and_subscription() -> None:
    event, sub = uuid.uuid4(), uuid.uuid4()
    assert parse_webhook_id(webhook_id(event, sub)) == (event, sub)
    with pytest.raises(ValueError, match="hexadecimal"):
        parse_webhook_id("msg_not-one")
