"""OAuth 2.1 / OpenID Connect journeys over HTTP without a browser: register a client, sign
in through the hosted pages, follow the authorization redirects by hand, redeem the code.

Every helper goes through the public HTTP endpoints; only client registration uses the
service directly (the CLI and admin API have their own tests).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt

from auth_service.audit.context import RequestContext
from auth_service.oauth.client_metadata import ClientSpec, ClientType
from tests.support.api import Api
from tests.support.pages import ORIGIN, form, submit
from tests.support.secrets import remember

PASSWORD = "Tr0ub4dor&3-horse"
REDIRECT = "https://app.example.com/callback"
LOGOUT_REDIRECT = "https://app.example.com/signed-out"


@dataclass
class Registered:
    client_id: str
    secret: str | None
    redirect_uri: str = REDIRECT

    @property
    def basic(self) -> dict[str, str]:
        assert self.secret is not None
        raw = f"{self.client_id}:{self.secret}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


async def client(
    api: Api,
    *,
    client_type: str = "confidential",
    redirect_uris: tuple[str, ...] = (REDIRECT,),
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token"),
    scope: str = "openid profile email offline_access",
    first_party: bool = True,
    **extra: Any,
) -> Registered:
    spec = ClientSpec(
        name=extra.pop("name", "Example App"),
        client_type=ClientType(client_type),
        redirect_uris=redirect_uris,
        post_logout_redirect_uris=extra.pop("post_logout_redirect_uris", (LOGOUT_REDIRECT,)),
        grant_types=grant_types,
        scope=scope,
        first_party=first_party,
        **extra,
    )
    created, secret = await api.services.oauth.clients.create(spec, RequestContext())
    if secret:
        remember(secret)
    return Registered(created.client_id, secret, redirect_uris[0] if redirect_uris else "")


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


async def new_user(api: Api, email: str | None = None) -> str:
    email = email or f"oauth-{uuid.uuid4().hex[:10]}@example.com"
    r = await api.register(email, PASSWORD)
    assert r.status_code == 202, r.text
    return email


async def sign_in(api: Api, email: str) -> httpx.Response:
    r = await submit(api.client, "/login", "/login", {"email": email, "password": PASSWORD})
    assert r.status_code == 303, r.text
    return r


def is_external(response: httpx.Response) -> bool:
    location = response.headers.get("location", "")
    return response.status_code in (302, 303) and location.startswith(("http://", "https://"))


async def follow(api: Api, response: httpx.Response, *, email: str | None = None) -> httpx.Response:
    """Follow our own redirects; sign in with ``email`` when the login page asks. Stops at a
    redirect to another origin, or a page that is not the login page."""
    for _ in range(10):
        if response.status_code not in (302, 303) or is_external(response):
            return response
        location = response.headers["location"]
        if location.startswith("/login") and email is not None:
            page = await api.client.get(location)
            fields = form(page.text, "/login")
            fields.update(email=email, password=PASSWORD)
            response = await api.client.post("/login", data=fields, headers={"origin": ORIGIN})
            continue
        response = await api.client.get(location)
    raise AssertionError("too many redirects")


@dataclass
class Authorization:
    verifier: str
    challenge: str
    state: str
    nonce: str | None
    params: dict[str, str] = field(default_factory=dict)


def authorization(
    registered: Registered, *, scope: str = "openid profile email offline_access", **extra: str
) -> Authorization:
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(12)
    nonce = extra.pop("nonce", secrets.token_urlsafe(12))
    params = {
        "response_type": "code",
        "client_id": registered.client_id,
        "redirect_uri": registered.redirect_uri,
        "scope": scope,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    if nonce:
        params["nonce"] = nonce
    return Authorization(verifier, challenge, state, nonce or None, params)


async def authorize(
    api: Api, auth: Authorization, *, email: str | None = None, consent: str | None = "allow"
) -> httpx.Response:
    """GET the authorization endpoint and follow it to the client (answering the consent
    page with ``consent`` when it shows)."""
    r = await follow(
        api, await api.client.get("/oauth2/authorize", params=auth.params), email=email
    )
    if r.status_code == 200 and 'action="/consent"' in r.text and consent is not None:
        fields = form(r.text, "/consent")
        fields["decision"] = consent
        r = await follow(
            api, await api.client.post("/consent", data=fields, headers={"origin": ORIGIN})
        )
    return r


def callback(response: httpx.Response) -> dict[str, str]:
    assert is_external(response), (response.status_code, response.text[:500])
    query = parse_qs(urlsplit(response.headers["location"]).query)
    return {k: v[0] for k, v in query.items()}


async def token(api: Api, registered: Registered, **data: str) -> httpx.Response:
    headers = registered.basic if registered.secret else {}
    if not registered.secret:
        data.setdefault("client_id", registered.client_id)
    r = await api.client.post("/oauth2/token", data=data, headers=headers)
    if r.status_code == 200:
        body = r.json()
        remember(
            *(v for k, v in body.items() if k in ("access_token", "refresh_token", "id_token"))
        )
    return r


async def code_tokens(
    api: Api, registered: Registered, email: str, **extra: str
) -> tuple[Authorization, dict[str, Any]]:
    """The whole code flow for a signed-in (or signing-in) user: the token response."""
    auth = authorization(registered, **extra)
    params = callback(await authorize(api, auth, email=email))
    assert params.get("state") == auth.state, params
    r = await token(
        api,
        registered,
        grant_type="authorization_code",
        code=params["code"],
        redirect_uri=registered.redirect_uri,
        code_verifier=auth.verifier,
    )
    assert r.status_code == 200, r.text
    return auth, r.json()


async def jwks(api: Api) -> jwt.PyJWKSet:
    return jwt.PyJWKSet.from_dict((await api.client.get("/.well-known/jwks.json")).json())


async def verify_id_token(api: Api, token: str, audience: str) -> dict[str, Any]:
    """Verify like a relying party: the key by kid from the JWKS, the algorithm of that key."""
    header = jwt.get_unverified_header(token)
    key = next(k for k in (await jwks(api)).keys if k.key_id == header["kid"])
    issuer = api.services.settings.issuer
    claims: dict[str, Any] = jwt.decode(
        token, key.key, algorithms=[header["alg"]], audience=audience, issuer=issuer
    )
    return claims
