"""Our access tokens, verified by panva's jose from the JWKS alone, as a resource server would."""

from __future__ import annotations

import base64

import pytest

from tests.support.harness import Harness, HarnessError
from tests.support.live_server import LiveServer


def _flip_signature_byte(token: str) -> str:
    header, payload, signature = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[len(raw) // 2] ^= 0x01
    return ".".join([header, payload, base64.urlsafe_b64encode(raw).rstrip(b"=").decode()])


def test_jose_verifies_an_access_token_against_our_jwks(
    live_server: LiveServer, harness: Harness
) -> None:
    user = live_server.new_user()
    result = harness.run(
        "verify-access-token", base_url=live_server.url, token=user["access_token"]
    )
    assert result["header"]["alg"] == "ES256"
    assert result["header"]["typ"] == "at+jwt"
    claims = result["claims"]
    assert claims["iss"] == live_server.url
    assert claims["sub"] == user["user"]["id"]
    assert claims["sid"] == user["session_id"]


def test_jose_rejects_an_access_token_with_one_flipped_signature_byte(
    live_server: LiveServer, harness: Harness
) -> None:
    token = _flip_signature_byte(live_server.new_user()["access_token"])
    with pytest.raises(HarnessError) as failure:
        harness.run("verify-access-token", base_url=live_server.url, token=token)
    assert failure.value.error["code"] == "ERR_JWS_SIGNATURE_VERIFICATION_FAILED"
