"""Access-token security: every forged, stale or misdirected token is refused with 401.

Tokens are forged with the service's own active private key where that matters, so a test
fails only because of the property it names and not because of a bad signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auth_service.audit.context import RequestContext
from auth_service.keys.errors import InvalidToken
from auth_service.keys.tokens import AccessTokenService
from tests.support.api import SQLITE_ONLY, Api
from tests.support.problems import PROBLEM

PASSWORD = "Tr0ub4dor&3-horse"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def _claims(api: Api, **changes: Any) -> dict[str, Any]:
    """Claims the service itself would issue, for a live session, with ``changes`` applied."""
    user = await api.user()
    real = jwt.decode(user["access_token"], options={"verify_signature": False})
    real.update(changes)
    return {k: v for k, v in real.items() if v is not None}


async def _sign(api: Api, claims: dict[str, Any], **header: Any) -> str:
    signer = await api.services.keys.signer()
    headers = {"kid": signer.kid, "typ": "at+jwt", **header}
    headers = {k: v for k, v in headers.items() if v is not None}
    return jwt.encode(claims, signer.private_key, algorithm=signer.algorithm, headers=headers)


async def _me(api: Api, token: str) -> Any:
    return await api.client.get("/v1/users/me", headers=Api.bearer(token))


async def _assert_refused(api: Api, token: str) -> None:
    r = await _me(api, token)
    assert r.status_code == 401, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["type"].endswith("/invalid-token")
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert token not in r.text


async def test_a_genuine_token_is_accepted(api: Api) -> None:
    # The control for every forgery below: same claims, same key, accepted.
    token = await _sign(api, await _claims(api))
    assert (await _me(api, token)).status_code == 200


@SQLITE_ONLY
async def test_tampered_signature_is_refused(api: Api) -> None:
    token = (await api.user())["access_token"]
    head, payload, sig = token.split(".")
    raw = bytearray(_unb64(sig))
    raw[len(raw) // 2] ^= 0x01
    await _assert_refused(api, f"{head}.{payload}.{_b64(bytes(raw))}")


@SQLITE_ONLY
async def test_tampered_payload_is_refused(api: Api) -> None:
    token = (await api.user())["access_token"]
    head, payload, sig = token.split(".")
    claims = json.loads(_unb64(payload))
    claims["roles"] = ["admin"]
    forged = _b64(json.dumps(claims, separators=(",", ":")).encode())
    await _assert_refused(api, f"{head}.{forged}.{sig}")


@SQLITE_ONLY
async def test_expired_token_is_refused(api: Api) -> None:
    past = int(time.time()) - 3600
    token = await _sign(api, await _claims(api, iat=past - 900, nbf=past - 900, exp=past))
    await _assert_refused(api, token)


@SQLITE_ONLY
async def test_not_yet_valid_token_is_refused(api: Api) -> None:
    future = int(time.time()) + 3600
    token = await _sign(api, await _claims(api, iat=future, nbf=future, exp=future + 900))
    await _assert_refused(api, token)


@SQLITE_ONLY
async def test_wrong_issuer_or_audience_is_refused(api: Api) -> None:
    for claim in ("iss", "aud"):
        token = await _sign(api, await _claims(api, **{claim: "https://evil.example"}))
        await _assert_refused(api, token)


@SQLITE_ONLY
async def test_a_missing_required_claim_is_refused(api: Api) -> None:
    claims = await _claims(api)
    for claim in ("sub", "sid", "exp", "jti", "tid", "iss", "aud"):
        await _assert_refused(
            api, await _sign(api, {k: v for k, v in claims.items() if k != claim})
        )


@SQLITE_ONLY
async def test_alg_none_is_refused(api: Api) -> None:
    claims = await _claims(api)
    signer = await api.services.keys.signer()
    for alg in ("none", "None", "NONE"):
        head = _b64(json.dumps({"alg": alg, "kid": signer.kid, "typ": "at+jwt"}).encode())
        body = _b64(json.dumps(claims).encode())
        await _assert_refused(api, f"{head}.{body}.")


@SQLITE_ONLY
async def test_hmac_with_the_public_key_as_secret_is_refused(api: Api) -> None:
    # The classic confusion: a verifier that feeds "the key" to whatever alg the header names.
    claims = await _claims(api, roles=["admin"])
    signer = await api.services.keys.signer()
    public = signer.private_key.public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    jwk = next(k for k in (await api.services.keys.jwks())["keys"] if k["kid"] == signer.kid)
    secrets = [pem, json.dumps(jwk).encode()]
    for alg in ("HS256", "HS384", "HS512"):
        for secret in secrets:
            head = _b64(json.dumps({"alg": alg, "kid": signer.kid, "typ": "at+jwt"}).encode())
            body = _b64(json.dumps(claims).encode())
            digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
            mac = hmac.new(secret, f"{head}.{body}".encode(), digest[alg]).digest()
            await _assert_refused(api, f"{head}.{body}.{_b64(mac)}")


@SQLITE_ONLY
async def test_unknown_or_missing_kid_is_refused(api: Api) -> None:
    signer = await api.services.keys.signer()
    payload = _b64(json.dumps(await _claims(api)).encode())
    for kid in ("unknown-kid", "", None, 42, "k" * 200):
        header: dict[str, Any] = {"alg": signer.algorithm, "typ": "at+jwt"}
        if kid is not None:
            header["kid"] = kid
        await _assert_refused(api, await _sign_raw(api, header, payload))


@SQLITE_ONLY
async def test_a_jwt_that_is_not_an_access_token_is_refused(api: Api) -> None:
    # RFC 9068: only typ at+jwt; an ID token or a generic JWT of ours must not pass.
    signer = await api.services.keys.signer()
    payload = _b64(json.dumps(await _claims(api)).encode())
    for typ in ("JWT", "jwt", None, "id_token+jwt"):
        header = {"alg": signer.algorithm, "kid": signer.kid}
        if typ is not None:
            header["typ"] = typ
        await _assert_refused(api, await _sign_raw(api, header, payload))


async def _sign_raw(api: Api, header: dict[str, Any], payload_b64: str) -> str:
    """Sign an arbitrary header with the real key (PyJWT insists on adding ``typ``)."""
    signer = await api.services.keys.signer()
    algorithm = jwt.get_algorithm_by_name(signer.algorithm)
    head = _b64(json.dumps(header).encode())
    signature = algorithm.sign(f"{head}.{payload_b64}".encode(), signer.private_key)
    return f"{head}.{payload_b64}.{_b64(signature)}"


GARBAGE = [
    "x",
    "a.b.c",
    "...",
    "eyJhbGciOiJFUzI1NiJ9",
    "eyJ.eyJ.sig",
    "Ünïcödé.tøken.∞",
    "a" * 9000,
    "e30.e30.",
    "bnVsbA.bnVsbA.bnVsbA",
]


@SQLITE_ONLY
async def test_garbage_tokens_are_refused(api: Api) -> None:
    for garbage in GARBAGE:
        r = await api.client.get(
            "/v1/users/me", headers={"Authorization": b"Bearer " + garbage.encode()}
        )
        assert r.status_code == 401, (garbage, r.text)
        assert r.headers["content-type"].startswith(PROBLEM)


@SQLITE_ONLY
async def test_missing_or_other_scheme_is_unauthenticated(api: Api) -> None:
    for header in ("", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token abc", "bearer"):
        r = await api.client.get("/v1/users/me", headers={"Authorization": header})
        assert r.status_code == 401, (header, r.text)
        assert r.json()["type"].endswith(("/unauthenticated", "/invalid-token"))
        assert r.headers["www-authenticate"].startswith("Bearer")


async def test_token_of_a_logged_out_session_is_refused_where_freshness_matters(
    api: Api,
) -> None:
    user = await api.user()
    assert (await _me(api, user["access_token"])).status_code == 200
    r = await api.client.post("/v1/auth/logout", json={"refresh_token": user["refresh_token"]})
    assert r.status_code == 204
    await _assert_refused(api, user["access_token"])


async def _admin_token(api: Api) -> str:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    await api.services.accounts.registration.create_user(
        email, PASSWORD, admin=True, ctx=RequestContext()
    )
    r = await api.login(email, PASSWORD)
    assert r.status_code == 200, r.text
    token: str = r.json()["access_token"]
    return token


async def test_key_rotation_keeps_old_tokens_valid_and_publishes_all_keys(api: Api) -> None:
    admin = await _admin_token(api)
    user = await api.user()
    # Access tokens sign with tokens.algorithm (ES256); other algorithms have keys of their own.
    before = {
        k.status: k.kid for k in await api.services.keys.list_keys() if k.algorithm == "ES256"
    }
    old_kid = jwt.get_unverified_header(user["access_token"])["kid"]
    assert old_kid == before["active"]
    jwks_before = {
        k["kid"] for k in (await api.client.get("/.well-known/jwks.json")).json()["keys"]
    }
    assert before["next"] in jwks_before  # published before it ever signs

    # A non-admin may not rotate.
    r = await api.client.post("/v1/admin/keys/rotate", headers=Api.bearer(user["access_token"]))
    assert r.status_code == 403, r.text

    r = await api.client.post("/v1/admin/keys/rotate", headers=Api.bearer(admin))
    assert r.status_code == 200, r.text
    new_kid = r.json()["active_kid"]
    assert new_kid == before["next"]

    after = {k.kid: k.status for k in await api.services.keys.list_keys() if k.algorithm == "ES256"}
    assert after[old_kid] == "retired"
    assert after[new_kid] == "active"
    next_kids = [kid for kid, status in after.items() if status == "next"]
    assert len(next_kids) == 1
    assert next_kids[0] not in (old_kid, new_kid)
    published = {k["kid"] for k in (await api.client.get("/.well-known/jwks.json")).json()["keys"]}
    assert {old_kid, new_kid, next_kids[0]} <= published

    # Tokens signed before the rotation still verify; new ones carry the new kid.
    assert (await _me(api, user["access_token"])).status_code == 200
    fresh = await api.login(user["email"], user["password"])
    assert jwt.get_unverified_header(fresh.json()["access_token"])["kid"] == new_kid
    assert (await _me(api, fresh.json()["access_token"])).status_code == 200


@pytest.mark.parametrize(
    ("settings_overrides", "alg", "kty"),
    [
        ({"tokens": {"algorithm": "RS256"}}, "RS256", "RSA"),
        ({"tokens": {"algorithm": "EdDSA"}}, "EdDSA", "OKP"),
    ],
    indirect=["settings_overrides"],
)
async def test_other_algorithms_are_selectable(api: Api, alg: str, kty: str) -> None:
    user = await api.user()
    header = jwt.get_unverified_header(user["access_token"])
    assert header["alg"] == alg
    keys = (await api.client.get("/.well-known/jwks.json")).json()["keys"]
    assert kty in {k["kty"] for k in keys}  # beside the ID-token keys of other algorithms
    assert header["kid"] in {k["kid"] for k in keys if k["alg"] == alg}
    assert (await _me(api, user["access_token"])).status_code == 200
    # Swapping the header's alg to the default family must not pass with this key.
    _head, payload, sig = user["access_token"].split(".")
    forged = _b64(json.dumps({**header, "alg": "ES256"}).encode())
    await _assert_refused(api, f"{forged}.{payload}.{sig}")


_roles = st.lists(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=24),
    max_size=8,
)


@SQLITE_ONLY
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(roles=_roles, subject=st.uuids(), session=st.uuids(), tenant=st.uuids())
async def test_issue_then_verify_round_trips_the_claims(
    api: Api, roles: list[str], subject: uuid.UUID, session: uuid.UUID, tenant: uuid.UUID
) -> None:
    service: AccessTokenService = api.services.access_tokens
    issued = await service.issue(subject, session, tenant, roles)
    claims = await service.verify(issued.token)
    assert claims.subject == subject
    assert claims.session_id == session
    assert claims.tenant_id == tenant
    assert claims.roles == tuple(sorted(roles))
    assert claims.expires_at - int(time.time()) <= issued.expires_in
    with pytest.raises(InvalidToken):
        await service.verify(issued.token[:-2] + ("AA" if issued.token[-2:] != "AA" else "BB"))
