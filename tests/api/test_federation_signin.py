"""Whole federated sign-ins over HTTP, on SQLite and PostgreSQL, through a real upstream
provider (oidc-provider 9, its development login form walked with a second HTTP client):
the second factor when the policy asks for one, a pending OAuth2 authorization continuing
afterwards, sign-up closed. Chromium journeys are in tests/browser/test_federation_journeys.py.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from sqlalchemy import select, update

from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.federation.connectors import ConnectorSpec, ConnectorType
from auth_service.flows.models import FlowRow
from tests.support import oauth
from tests.support.api import Api
from tests.support.mfa import MFA_SETTINGS, code_at, enrol_totp
from tests.support.pages import ORIGIN, form, submit
from tests.support.upstream_idp import UpstreamIdp, upstream_idp

CTX = RequestContext(request_id="test")
CONNECTOR = "up"
MFA = pytest.mark.parametrize("settings_overrides", [MFA_SETTINGS], indirect=True)


@pytest.fixture
def idp(api: Api) -> Iterator[UpstreamIdp]:
    with upstream_idp([api.services.federation.redirect_uri(CONNECTOR)]) as upstream:
        yield upstream


async def _connector(api: Api, idp: UpstreamIdp, **settings: bool) -> None:
    spec = ConnectorSpec(
        id=CONNECTOR,
        name="Upstream Test",
        type=ConnectorType.oidc,
        client_id=idp.client_id,
        issuer=idp.issuer,
        client_secret=idp.client_secret,
        **settings,
    )
    await api.services.federation.connectors.create(spec, CTX)


async def _at_provider(api: Api, location: str, login: str) -> httpx.Response:
    """Sign in at the provider as ``login``; our callback's answer."""
    ours = api.services.federation.redirect_uri(CONNECTOR)
    url = location
    async with httpx.AsyncClient(timeout=30) as browser:
        for _ in range(12):
            if url.startswith(ours):
                back = urlsplit(url)  # our public URL; the test client is the same app
                return await api.client.get(f"{back.path}?{back.query}")
            r = await browser.get(url)
            if r.status_code == 200 and 'name="login"' in r.text:
                found = re.search(r'<form[^>]*action="([^"]+)"', r.text)
                assert found, r.text[:400]
                fields = {"prompt": "login", "login": login, "password": "anything"}
                r = await browser.post(urljoin(url, found.group(1)), data=fields)
            assert r.status_code in (302, 303), (r.status_code, r.text[:400])
            url = urljoin(url, r.headers["location"])
    raise AssertionError("the provider never sent the browser back")


async def _federated(api: Api, login: str, **fields: str) -> httpx.Response:
    r = await submit(api.client, "/login", f"/login/federated/{CONNECTOR}", fields)
    assert r.status_code == 303, r.text[:400]
    return await _at_provider(api, r.headers["location"], login)


@MFA
async def test_the_second_factor_is_asked_after_the_provider(api: Api, idp: UpstreamIdp) -> None:
    await _connector(api, idp, trust_email=True)
    user = await api.user()
    secret = await enrol_totp(api, user["access_token"])

    r = await _federated(api, user["email"])  # linked by the trusted, verified email
    assert r.status_code == 303, r.text[:400]
    location = r.headers["location"]
    assert location.startswith("/login/mfa?flow=")
    assert "auth_session" not in r.headers.get("set-cookie", "")  # not signed in yet
    r = await submit(api.client, location, "/login/mfa", {"code": code_at(secret)})
    assert r.status_code == 303
    assert r.headers["location"] == "/account"
    account = await api.client.get("/account")
    assert user["email"] in account.text
    assert "Upstream Test" in account.text


async def test_a_pending_authorization_continues_after_the_provider(
    api: Api, idp: UpstreamIdp
) -> None:
    await _connector(api, idp)
    client = await oauth.client(api)
    auth = oauth.authorization(client)
    r = await api.client.get("/oauth2/authorize", params=auth.params)
    while r.status_code in (302, 303) and not r.headers["location"].startswith("/login"):
        r = await api.client.get(r.headers["location"])
    login_page = r.headers["location"]
    assert "flow=" in login_page
    page = await api.client.get(login_page)
    fields = form(page.text, f"/login/federated/{CONNECTOR}")
    assert fields["flow"]
    r = await api.client.post(
        f"/login/federated/{CONNECTOR}", data=fields, headers={"origin": ORIGIN}
    )
    assert r.status_code == 303
    r = await _at_provider(api, r.headers["location"], "oauth-fed@example.com")
    r = await oauth.follow(api, r)
    back = oauth.callback(r)
    assert back["state"] == auth.state
    assert back["code"]
    r = await oauth.token(
        api,
        client,
        grant_type="authorization_code",
        code=back["code"],
        redirect_uri=client.redirect_uri,
        code_verifier=auth.verifier,
    )
    assert r.status_code == 200, r.text
    claims = await oauth.verify_id_token(api, r.json()["id_token"], client.client_id)
    created = await api.services.accounts.identities.by_email(
        api.services.accounts.tenant_id, "oauth-fed@example.com"
    )
    assert created is not None  # made at the first sign-in, then the authorization went on
    assert claims["sub"] == str(created.id)
    assert claims["nonce"] == auth.nonce


async def test_sign_up_closed_refuses_a_stranger_and_creates_nothing(
    api: Api, idp: UpstreamIdp
) -> None:
    await _connector(api, idp, allow_signup=False)
    r = await _federated(api, "stranger@example.com")
    assert r.status_code == 403
    assert "does not create accounts" in r.text
    assert "Reference:" in r.text
    found = await api.services.accounts.identities.by_email(
        api.services.accounts.tenant_id, "stranger@example.com"
    )
    assert found is None


async def test_linking_from_the_account_page_never_takes_anothers_identity(
    api: Api, idp: UpstreamIdp
) -> None:
    await _connector(api, idp)
    first = await _federated(api, "first-owner@example.com")  # creates and links an account
    assert first.headers["location"] == "/account"
    api.client.cookies.clear()

    other = await api.user()
    r = await submit(
        api.client, "/login", "/login", {"email": other["email"], "password": other["password"]}
    )
    assert r.headers["location"] == "/account"
    r = await submit(api.client, "/account", f"/account/linked/{CONNECTOR}/link", {})
    assert r.status_code == 303
    r = await _at_provider(api, r.headers["location"], "first-owner@example.com")
    assert r.status_code == 409
    assert "linked to another account" in r.text
    account = await api.client.get("/account")
    assert "Link Upstream Test" in account.text  # still not linked
    assert "No sign-in provider is linked" in account.text


async def test_an_id_token_with_another_nonce_is_refused(api: Api, idp: UpstreamIdp) -> None:
    # The real provider signs a token with the nonce it was sent; the flow remembers another
    # one (as if the callback belonged to another sign-in): the token must be refused.
    await _connector(api, idp)
    r = await submit(api.client, "/login", f"/login/federated/{CONNECTOR}", {})
    state = parse_qs(urlsplit(r.headers["location"]).query)["state"][0]
    flow_id = uuid.UUID(state.split(".")[0])
    async with api.services.db.single() as conn:
        kept = (await conn.execute(select(FlowRow.state).where(FlowRow.id == flow_id))).scalar()
        assert isinstance(kept, dict)
        other = {**kept, "nonce": "a-nonce-of-another-sign-in"}
        await conn.execute(update(FlowRow).where(FlowRow.id == flow_id).values(state=other))

    r = await _at_provider(api, r.headers["location"], "nonce-check@example.com")
    assert r.status_code == 401
    assert "could not be verified" in r.text
    assert "Reference:" in r.text
    failed, _ = await api.services.audit.query(event_type=events.FEDERATION_FAILED)
    assert [e.details["reason"] for e in failed] == ["federation-token-invalid:nonce"]
    found = await api.services.accounts.identities.by_email(
        api.services.accounts.tenant_id, "nonce-check@example.com"
    )
    assert found is None
