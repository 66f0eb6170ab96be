"""Authorization code + PKCE + nonce through the hosted pages, on SQLite and PostgreSQL:
discovery, the tokens, ID token validation with the JWKS (RS256 and ES256 clients),
userinfo, form_post, the loopback redirect port."""

from __future__ import annotations

import base64
import hashlib

import jwt
import pytest

from tests.support import oauth
from tests.support.api import Api
from tests.support.pages import form


async def test_discovery_documents_are_one_and_advertise_the_registries(api: Api) -> None:
    r = await api.client.get("/.well-known/openid-configuration")
    assert r.status_code == 200
    doc = r.json()
    assert (await api.client.get("/.well-known/oauth-authorization-server")).json() == doc
    issuer = api.services.settings.issuer
    assert doc["issuer"] == issuer
    assert doc["authorization_endpoint"] == issuer + "/oauth2/authorize"
    assert doc["token_endpoint"] == issuer + "/oauth2/token"
    assert doc["jwks_uri"] == issuer + "/.well-known/jwks.json"
    assert doc["response_types_supported"] == ["code"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert set(doc["grant_types_supported"]) == {
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    }
    assert set(doc["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "none",
    }
    assert doc["id_token_signing_alg_values_supported"][0] == "RS256"
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert doc["request_uri_parameter_supported"] is False
    assert "registration_endpoint" not in doc  # dynamic registration is off by default
    # The JWKS publishes an active and a next key per algorithm.
    keys = (await api.client.get("/.well-known/jwks.json")).json()["keys"]
    assert sorted(k["alg"] for k in keys) == ["ES256", "ES256", "EdDSA", "EdDSA", "RS256", "RS256"]


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
async def test_code_pkce_nonce_happy_path_and_id_token(api: Api, alg: str) -> None:
    registered = await oauth.client(api, id_token_signed_response_alg=alg)
    email = await oauth.new_user(api)
    auth, body = await oauth.code_tokens(api, registered, email)
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "openid profile email offline_access"
    assert body["refresh_token"]
    assert jwt.get_unverified_header(body["access_token"])["typ"] == "at+jwt"
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "ES256"
    header = jwt.get_unverified_header(body["id_token"])
    assert header["alg"] == alg
    claims = await oauth.verify_id_token(api, body["id_token"], registered.client_id)
    assert claims["nonce"] == auth.nonce
    assert isinstance(claims["auth_time"], int)
    assert claims["acr"] == "aal1"
    assert claims["amr"] == ["pwd"]
    assert claims["sid"]
    digest = (hashlib.sha512 if alg == "EdDSA" else hashlib.sha256)(
        body["access_token"].encode()
    ).digest()
    expected = base64.urlsafe_b64encode(digest[: len(digest) // 2]).decode().rstrip("=")
    assert claims["at_hash"] == expected

    r = await api.client.get("/oauth2/userinfo", headers=Api.bearer(body["access_token"]))
    assert r.status_code == 200, r.text
    info = r.json()
    assert info["sub"] == claims["sub"]
    assert info["email"] == email
    assert info["email_verified"] is False


async def test_authorization_response_carries_iss_and_state(api: Api) -> None:
    registered = await oauth.client(api)
    email = await oauth.new_user(api)
    auth = oauth.authorization(registered)
    params = oauth.callback(await oauth.authorize(api, auth, email=email))
    assert params["iss"] == api.services.settings.issuer
    assert params["state"] == auth.state
    assert set(params) == {"code", "state", "iss"}


async def test_no_nonce_means_no_nonce_claim_never_null(api: Api) -> None:
    registered = await oauth.client(api)
    email = await oauth.new_user(api)
    _auth, body = await oauth.code_tokens(api, registered, email, nonce="")
    claims = await oauth.verify_id_token(api, body["id_token"], registered.client_id)
    assert "nonce" not in claims


async def test_form_post_response_mode(api: Api) -> None:
    registered = await oauth.client(api)
    email = await oauth.new_user(api)
    await oauth.sign_in(api, email)
    auth = oauth.authorization(registered, response_mode="form_post")
    r = await oauth.authorize(api, auth)
    assert r.status_code == 200
    fields = form(r.text, registered.redirect_uri)
    assert fields["state"] == auth.state
    assert fields["iss"] == api.services.settings.issuer
    assert fields["code"]
    assert '<script src="/ui/static/form_post.js"></script>' in r.text
    assert "unsafe-inline" not in r.headers["content-security-policy"]


async def test_userinfo_by_post_form_and_scope_limits_claims(api: Api) -> None:
    registered = await oauth.client(api)
    email = await oauth.new_user(api)
    _auth, body = await oauth.code_tokens(api, registered, email, scope="openid")
    assert "refresh_token" not in body  # no offline_access: no refresh token
    r = await api.client.post("/oauth2/userinfo", data={"access_token": body["access_token"]})
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"sub"}


async def test_userinfo_errors_are_bearer_challenges(api: Api) -> None:
    r = await api.client.get("/oauth2/userinfo")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer realm=")
    r = await api.client.get("/oauth2/userinfo", headers=Api.bearer("not-a-token"))
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert r.json()["error"] == "invalid_token"


async def test_loopback_redirect_matches_on_any_port(api: Api) -> None:
    registered = await oauth.client(
        api, client_type="public", redirect_uris=("http://127.0.0.1/callback",)
    )
    email = await oauth.new_user(api)
    registered.redirect_uri = "http://127.0.0.1:53127/callback"
    auth, _body = await oauth.code_tokens(api, registered, email)
    assert auth.params["redirect_uri"].endswith(":53127/callback")
    # The path must still match exactly, and a fragment is never part of a redirect URI.
    for uri in ("http://127.0.0.1:53127/other", "http://127.0.0.1:53127/callback#f"):
        other = oauth.authorization(registered)
        other.params["redirect_uri"] = uri
        r = await api.client.get("/oauth2/authorize", params=other.params)
        assert r.status_code == 400
        assert "location" not in r.headers
