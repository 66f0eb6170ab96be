"""private_key_jwt (RFC 7523) with openid-client's ``PrivateKeyJwt``: a client registered
with the CLI (``--auth-method private_key_jwt --jwks ...``) signs in a user through a pushed
request, and the server refuses a replayed jti, a wrong aud, an expired assertion and an
unknown kid."""

from __future__ import annotations

import json

from tests.support.harness import Harness
from tests.support.live_server import LiveServer
from tests.support.oauth_live import REDIRECT, create_client, harness_code_flow


def test_openid_client_authenticates_with_private_key_jwt(
    live_server: LiveServer, harness: Harness
) -> None:
    keys = harness.run("adv-private-key-jwt", base_url=live_server.url, step="keys")
    client = create_client(
        live_server,
        "--auth-method",
        "private_key_jwt",
        "--jwks",
        json.dumps(keys["jwks"]),
        "--grant-type",
        "authorization_code",
        "--grant-type",
        "client_credentials",
    )
    assert client["token_endpoint_auth_method"] == "private_key_jwt"
    assert "client_secret" not in client
    user = live_server.new_user()
    common = {
        "client_id": client["client_id"],
        "private_jwk": keys["privateJwk"],
        "redirect_uri": REDIRECT,
    }
    _, done = harness_code_flow(harness, live_server, "adv-private-key-jwt", user, **common)
    assert done["sub"] == user["user"]["id"]
    assert done["userinfo"]["email"] == user["email"]

    results = harness.run(
        "adv-private-key-jwt", base_url=live_server.url, step="negatives", **common
    )
    assert results["good"] == {"ok": True, "tokenType": "bearer"}
    assert results["firstUse"]["ok"] is True
    for case in ("replayed", "wrongAud", "expired", "unknownKid"):
        assert results[case]["ok"] is False, (case, results[case])
        assert results[case]["error"] == "invalid_client", (case, results[case])
        assert results[case]["status"] == 401, (case, results[case])
    assert "already used" in results["replayed"]["description"]
    assert "aud" in results["wrongAud"]["description"]
    assert "expired" in results["expired"]["description"]
    assert "kid" in results["unknownKid"]["description"]
