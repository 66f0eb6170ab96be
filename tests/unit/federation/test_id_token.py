"""ID token validation of an upstream provider (OIDC Core 3.1.3.7): every check refuses."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from auth_service.federation.errors import FederationTokenInvalid
from auth_service.federation.id_token import Expected, expected_issuer, key_id, validate

ISSUER = "https://idp.example"
CLIENT = "our-client"
NONCE = "n-0S6_WzA2Mj"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwks(private: rsa.RSAPrivateKey = KEY, kid: str = "k1") -> jwt.PyJWKSet:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
    return jwt.PyJWKSet.from_dict({"keys": [{**jwk, "kid": kid, "use": "sig"}]})


def _claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "248289761001",
        "aud": CLIENT,
        "exp": now + 300,
        "iat": now,
        "nonce": NONCE,
        "email": "jane@example.com",
    }
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def _token(claims: dict[str, Any], key: Any = KEY, alg: str = "RS256", kid: str = "k1") -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def _validate(token: str, expected: Expected | None = None) -> dict[str, Any]:
    return validate(token, _jwks(), expected or Expected(ISSUER, CLIENT, NONCE), now=time.time())


def _reason(token: str, expected: Expected | None = None) -> str:
    with pytest.raises(FederationTokenInvalid) as caught:
        _validate(token, expected)
    return caught.value.reason


def test_a_good_token_gives_its_claims() -> None:
    token = _token(_claims())
    assert key_id(token) == "k1"
    assert _validate(token)["email"] == "jane@example.com"


def test_another_nonce_is_refused() -> None:
    assert _reason(_token(_claims(nonce="replayed"))) == "nonce"


def test_a_missing_nonce_is_refused() -> None:
    assert _reason(_token(_claims(nonce=None))) == "nonce"


def test_another_issuer_is_refused() -> None:
    assert _reason(_token(_claims(iss="https://evil.example"))) == "iss"


def test_another_audience_is_refused() -> None:
    assert _reason(_token(_claims(aud="someone-else"))) == "aud"


def test_several_audiences_need_azp_naming_us() -> None:
    assert _reason(_token(_claims(aud=[CLIENT, "other"]))) == "azp"
    assert _validate(_token(_claims(aud=[CLIENT, "other"], azp=CLIENT)))["sub"]


def test_alg_none_is_refused() -> None:
    unsigned = jwt.encode(_claims(), "", algorithm="none")
    assert _reason(unsigned) == "alg"


def test_hs256_keyed_with_anything_is_refused() -> None:
    assert (
        _reason(jwt.encode(_claims(), "client-secret-as-hmac-key!!!!!!!", algorithm="HS256"))
        == "alg"
    )


def test_an_expired_token_is_refused() -> None:
    now = int(time.time())
    assert _reason(_token(_claims(exp=now - 3600, iat=now - 4000))) == "exp"


def test_a_stale_iat_is_refused() -> None:
    assert _reason(_token(_claims(iat=int(time.time()) - 3600))) == "iat"


def test_a_signature_by_another_key_is_refused() -> None:
    assert _reason(_token(_claims(), key=OTHER_KEY)) == "signature"


def test_an_unknown_kid_is_refused() -> None:
    assert _reason(_token(_claims(), kid="rotated-away")) == "key"


def test_garbage_is_refused() -> None:
    assert _reason("not.a.jwt") == "malformed"


def test_entra_issuer_is_filled_from_tid() -> None:
    template = "https://login.microsoftonline.com/{tenantid}/v2.0"
    tid = "9188040d-6c67-4c5b-b112-36a304b66dad"
    good = _claims(iss=f"https://login.microsoftonline.com/{tid}/v2.0", tid=tid)
    assert expected_issuer(template, good).endswith(f"/{tid}/v2.0")
    assert _validate(_token(good), Expected(template, CLIENT, NONCE))["tid"] == tid
    # A token of one tenant claiming another tenant's issuer is refused.
    forged = _claims(iss=f"https://login.microsoftonline.com/{tid}/v2.0", tid="other-tenant")
    assert _reason(_token(forged), Expected(template, CLIENT, NONCE)) == "iss"
    assert _reason(_token(_claims(iss=ISSUER)), Expected(template, CLIENT, NONCE)) == "iss"
