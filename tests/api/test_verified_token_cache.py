"""The per-worker cache of verified access tokens (keys/tokens.py, ADR 0421): a token's
signature is checked once per worker, never its session: revocation still ends it at once."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import jwt
import pytest

from auth_service.keys import tokens
from auth_service.keys.tokens import VerifiedTokens
from tests.support.api import Api


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every full verification (``jwt.decode``) the access-token service makes."""
    calls: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(tokens.jwt, "decode", counting)
    return calls


async def test_second_request_skips_the_signature_check(api: Api, decodes: list[str]) -> None:
    user = await api.user()
    headers = api.bearer(user["access_token"])
    for _ in range(3):
        assert (await api.client.get("/v1/users/me", headers=headers)).status_code == 200
    assert decodes.count(user["access_token"]) == 1


async def test_logout_ends_a_cached_token_at_once(api: Api, decodes: list[str]) -> None:
    user = await api.user()
    headers = api.bearer(user["access_token"])
    assert (await api.client.get("/v1/users/me", headers=headers)).status_code == 200
    assert (await api.client.get("/v1/users/me", headers=headers)).status_code == 200
    r = await api.client.post("/v1/auth/logout", json={"refresh_token": user["refresh_token"]})
    assert r.status_code == 204
    after = await api.client.get("/v1/users/me", headers=headers)
    assert after.status_code == 401
    assert decodes.count(user["access_token"]) == 1  # refused by the session check


def _with_claims(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


async def test_a_copied_signature_on_other_claims_is_verified_and_refused(api: Api) -> None:
    user = await api.user()
    other = await api.user()
    token = user["access_token"]
    assert (await api.client.get("/v1/users/me", headers=api.bearer(token))).status_code == 200
    victim = jwt.decode(other["access_token"], options={"verify_signature": False})
    forged = _with_claims(token, sub=victim["sub"], sid=victim["sid"])
    r = await api.client.get("/v1/users/me", headers=api.bearer(forged))
    assert r.status_code == 401


async def test_a_retired_key_ends_its_cached_tokens(api: Api, decodes: list[str]) -> None:
    user = await api.user()
    token = user["access_token"]
    service = api.services.access_tokens
    assert (await api.client.get("/v1/users/me", headers=api.bearer(token))).status_code == 200
    kid = jwt.get_unverified_header(token)["kid"]
    keys = api.services.keys
    published = keys._published  # white box: the key disappears from the key cache
    keys._published = {k: v for k, v in published.items() if k != kid}
    keys._loaded_at = float("inf")  # and no reload brings it back during the check
    try:
        r = await api.client.get("/v1/users/me", headers=api.bearer(token))
        assert r.status_code == 401
        assert len(service.verified) == 0
    finally:
        keys._published = published
        keys._loaded_at = 0.0


def test_bounded_and_expiring() -> None:
    cache = VerifiedTokens(size=4)
    entries = []
    for i in range(6):
        claims = tokens.AccessClaims(
            subject=uuid.uuid4(),
            session_id=uuid.uuid4(),
            tenant_id=uuid.uuid4(),
            roles=(),
            jti=str(i),
            expires_at=1000,
        )
        entry = tokens._Verified(f"t{i}", claims, "kid", None)  # type: ignore[arg-type]
        entries.append(entry)
        cache.put(f"s{i}", entry, now=10)
        assert len(cache) <= 4
    assert cache.get("s5", "t5", now=10) is entries[5]
    assert cache.get("s5", "other", now=10) is None  # same signature, another token
    assert cache.get("s5", "t5", now=1000) is None  # expired
    assert cache.get("s0", "t0", now=10) is None  # evicted
