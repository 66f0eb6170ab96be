"""private_key_jwt client authentication (RFC 7523) on SQLite and PostgreSQL: the client's
registered keys (inline, or a jwks_uri fetched under SSRF rules), the audience (ADR 0730),
time bounds, the algorithm allow-list and one use per jti."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from auth_service.audit.context import RequestContext
from auth_service.oauth.client_metadata import ClientSpec, ClientType
from auth_service.oauth.errors import InvalidClientMetadata
from tests.support.api import Api, running_api
from tests.support.loopback import LoopbackServer, QuietHandler, reply

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class Keys:
    """An EC P-256 key pair of a client, as JWK (public) and for signing."""

    def __init__(self, api: Api, kid: str = "k1") -> None:
        self.issuer = api.services.oauth.issuer
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.kid = kid
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key()))
        self.jwk: dict[str, Any] = {**jwk, "kid": kid, "use": "sig", "alg": "ES256"}

    @property
    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk]}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def assertion(self, client_id: str, **change: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": client_id,
            "sub": client_id,
            "aud": self.issuer,
            "iat": now,
            "exp": now + 60,
            "jti": uuid.uuid4().hex,
        }
        claims.update(change)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.private, algorithm="ES256", headers={"kid": self.kid})


async def _client(api: Api, **keys: Any) -> str:
    spec = ClientSpec(
        name="Signed app",
        client_type=ClientType.confidential,
        grant_types=("client_credentials",),
        scope="",
        token_endpoint_auth_method="private_key_jwt",
        **keys,
    )
    created, secret = await api.services.oauth.clients.create(spec, RequestContext())
    assert secret is None  # keys, not a secret
    return created.client_id


async def _token(api: Api, client_id: str, assertion: str, **extra: str) -> Any:
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        **extra,
    }
    return await api.client.post("/oauth2/token", data=data)


def _refused(r: Any, needle: str) -> None:
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_client"
    assert needle in r.json()["error_description"], r.json()
    assert r.headers["www-authenticate"].startswith("Basic")


async def test_a_signed_assertion_authenticates_once(api: Api) -> None:
    keys = Keys(api)
    client_id = await _client(api, jwks=keys.jwks)
    assertion = keys.assertion(client_id)
    first = await _token(api, client_id, assertion)
    assert first.status_code == 200, first.text
    assert first.json()["token_type"] == "Bearer"
    _refused(await _token(api, client_id, assertion), "already used")


async def test_a_jti_spent_at_one_worker_is_refused_by_another(api: Api) -> None:
    """Two app instances (two workers, or two replicas) on one database: one replay store."""
    keys = Keys(api)
    client_id = await _client(api, jwks=keys.jwks)
    assertion = keys.assertion(client_id)
    async with running_api(api.services.settings) as other_worker:
        assert (await _token(other_worker, client_id, assertion)).status_code == 200
    _refused(await _token(api, client_id, assertion), "already used")


async def test_of_concurrent_uses_of_one_assertion_exactly_one_succeeds(api: Api) -> None:
    keys = Keys(api)
    client_id = await _client(api, jwks=keys.jwks)
    assertion = keys.assertion(client_id)
    answers = await asyncio.gather(*(_token(api, client_id, assertion) for _ in range(5)))
    assert sorted(r.status_code for r in answers) == [200, 401, 401, 401, 401]


async def test_the_token_endpoint_url_is_accepted_as_audience(api: Api) -> None:
    keys = Keys(api)
    client_id = await _client(api, jwks=keys.jwks)
    r = await _token(api, client_id, keys.assertion(client_id, aud=keys.issuer + "/oauth2/token"))
    assert r.status_code == 200, r.text
    single = keys.assertion(client_id, aud=[keys.issuer])
    assert (await _token(api, client_id, single)).status_code == 200
    several = keys.assertion(client_id, aud=[keys.issuer, "https://other.example"])
    _refused(await _token(api, client_id, several), "aud")


@pytest.mark.parametrize(
    "settings_overrides", [{"oauth": {"client_assertion_legacy_audiences": False}}], indirect=True
)
async def test_only_the_issuer_is_an_audience_when_legacy_audiences_are_off(api: Api) -> None:
    keys = Keys(api)
    client_id = await _client(api, jwks=keys.jwks)
    legacy = keys.assertion(client_id, aud=keys.issuer + "/oauth2/token")
    _refused(await _token(api, client_id, legacy), "aud")
    assert (await _token(api, client_id, keys.assertion(client_id))).status_code == 200


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"aud": "https://other.example"}, "aud"),
        ({"aud": ["https://a.example", "https://other.example"]}, "aud"),
        ({"exp": int(time.time()) - 600, "iat": int(time.time()) - 660}, "expired"),
        ({"exp": int(time.time()) + 3600}, "at most"),
        ({"iat": int(time.time()) - 3600}, "issued more than"),
        ({"jti": None}, "invalid"),
        ({"sub": "someone-else"}, "iss and sub"),
    ],
)
async def test_a_bad_assertion_is_refused(api: Api, change: dict[str, Any], needle: str) -> None:
    keys = Keys(api)
    client_id = await _client(api, jwks=keys.jwks)
    _refused(await _token(api, client_id, keys.assertion(client_id, **change)), needle)


async def test_an_unknown_kid_is_refused(api: Api) -> None:
    keys = Keys(api)
    client_id = await _client(api, jwks=keys.jwks)
    other = Keys(api, kid="k2")
    _refused(await _token(api, client_id, other.assertion(client_id)), "kid")


async def test_another_key_under_the_registered_kid_is_refused(api: Api) -> None:
    keys = Keys(api)
    client_id = await _client(api, jwks=keys.jwks)
    impostor = Keys(api, kid=keys.kid)
    _refused(await _token(api, client_id, impostor.assertion(client_id)), "signature")


async def test_hs256_keyed_with_the_public_key_is_refused(api: Api) -> None:
    keys = Keys(api)
    client_id = await _client(api, jwks=keys.jwks)
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": keys.issuer, "exp": now + 60, "jti": "x1"}
    # PyJWT itself refuses a PEM as an HMAC secret: sign by hand, as an attacker would.
    forged = _hs256(claims, keys.public_pem(), keys.kid)
    _refused(await _token(api, client_id, forged), "alg")
    unsigned = jwt.encode(claims, None, algorithm="none")
    _refused(await _token(api, client_id, unsigned), "alg")


def _hs256(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    import base64
    import hashlib
    import hmac

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


async def test_a_wrong_assertion_type_or_a_secret_besides_is_refused(api: Api) -> None:
    keys = Keys(api)
    client_id = await _client(api, jwks=keys.jwks)
    wrong_type = await _token(
        api, client_id, keys.assertion(client_id), client_assertion_type="urn:example:other"
    )
    _refused(wrong_type, "client_assertion_type")
    both = await _token(api, client_id, keys.assertion(client_id), client_secret="guess")
    assert both.status_code == 400
    assert both.json()["error"] == "invalid_request"


async def test_a_private_key_jwt_client_authenticates_at_introspection_and_par(api: Api) -> None:
    keys = Keys(api)
    client_id = await _client(api, jwks=keys.jwks)
    issued = await _token(api, client_id, keys.assertion(client_id))
    token = issued.json()["access_token"]
    data = {
        "token": token,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": keys.assertion(client_id),
    }
    r = await api.client.post("/oauth2/introspect", data=data)
    assert r.status_code == 200, r.text
    assert r.json()["active"] is True


@pytest.mark.parametrize(
    ("keys", "field"),
    [
        ({}, "jwks"),
        ({"jwks": {"keys": []}}, "jwks"),
        ({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}}, "jwks"),
        ({"jwks_uri": "ftp://keys.example/jwks"}, "jwks_uri"),
        ({"jwks_uri": "https://user:pw@keys.example/jwks"}, "jwks_uri"),
    ],
)
async def test_registration_needs_public_keys(api: Api, keys: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidClientMetadata) as refused:
        await _client(api, **keys)
    assert refused.value.field == field


async def test_registration_refuses_a_private_key(api: Api) -> None:
    keys = Keys(api)
    private = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(keys.private))
    with pytest.raises(InvalidClientMetadata) as refused:
        await _client(api, jwks={"keys": [private]})
    assert "public keys only" in refused.value.reason
    with pytest.raises(InvalidClientMetadata):
        await _client(api, jwks=keys.jwks, jwks_uri="https://keys.example/jwks")


def _jwks_server(jwks: dict[str, Any], hits: list[str]) -> LoopbackServer:
    body = json.dumps(jwks).encode()

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            hits.append(self.headers.get("host", ""))
            reply(self, 200, body, "application/json")

    handler: type[BaseHTTPRequestHandler] = Handler
    return LoopbackServer(handler)


async def test_a_jwks_uri_on_a_private_address_is_not_fetched(api: Api) -> None:
    keys = Keys(api)
    hits: list[str] = []
    with _jwks_server(keys.jwks, hits) as server:
        client_id = await _client(api, jwks_uri=server.url + "/jwks")
        _refused(await _token(api, client_id, keys.assertion(client_id)), "keys")
        https = await _client(api, jwks_uri=server.url.replace("http:", "https:") + "/jwks")
        _refused(await _token(api, https, keys.assertion(https)), "keys")
    assert hits == []


@pytest.mark.parametrize(
    "settings_overrides", [{"oauth": {"jwks_uri_allow_private_networks": True}}], indirect=True
)
async def test_a_jwks_uri_is_fetched_once_and_refetched_for_a_new_kid(api: Api) -> None:
    keys = Keys(api)
    hits: list[str] = []
    with _jwks_server(keys.jwks, hits) as server:
        client_id = await _client(api, jwks_uri=server.url + "/jwks")
        for _ in range(2):
            assert (await _token(api, client_id, keys.assertion(client_id))).status_code == 200
        assert len(hits) == 1
        assert hits[0] == server.url.removeprefix("http://")
        # A kid it does not know: one refetch at most (not within REFRESH_SECONDS again).
        rotated = Keys(api, kid="k9")
        _refused(await _token(api, client_id, rotated.assertion(client_id)), "kid")
        assert len(hits) == 1  # the set was fetched less than REFRESH_SECONDS ago


async def test_discovery_advertises_private_key_jwt(api: Api) -> None:
    meta = (await api.client.get("/.well-known/openid-configuration")).json()
    assert "private_key_jwt" in meta["token_endpoint_auth_methods_supported"]
    assert "ES256" in meta["token_endpoint_auth_signing_alg_values_supported"]
    assert "HS256" not in meta["token_endpoint_auth_signing_alg_values_supported"]


REGISTRATION = {
    "oauth": {
        "dynamic_registration": True,
        "registration_initial_access_token": "initial-token-1234567890",
    }
}


@pytest.mark.parametrize("settings_overrides", [REGISTRATION], indirect=True)
async def test_dynamic_registration_takes_keys_and_the_par_requirement(api: Api) -> None:
    keys = Keys(api)
    body = {
        "client_name": "Registered signer",
        "grant_types": ["client_credentials"],
        "scope": "",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": keys.jwks,
        "require_pushed_authorization_requests": True,
    }
    bearer = Api.bearer("initial-token-1234567890")
    r = await api.client.post("/oauth2/register", json=body, headers=bearer)
    assert r.status_code == 201, r.text
    answer = r.json()
    assert "client_secret" not in answer
    assert answer["jwks"] == keys.jwks
    assert answer["require_pushed_authorization_requests"] is True
    token = await _token(api, answer["client_id"], keys.assertion(answer["client_id"]))
    assert token.status_code == 200, token.text
    for bad in ({"jwks": "not-an-object"}, {"require_pushed_authorization_requests": "yes"}):
        refused = await api.client.post("/oauth2/register", json={**body, **bad}, headers=bearer)
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_client_metadata"
