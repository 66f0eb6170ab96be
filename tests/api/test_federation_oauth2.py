"""Signing in through providers without ID tokens, over HTTP on SQLite and PostgreSQL:
GitHub (its OAuth2 endpoints, ``GET /user`` and ``GET /user/emails``) and a generic OAuth2
provider read through a claim mapping; groups to roles; upstream tokens kept sealed only
when the connector asks; a hanging provider answered within the timeout, then not called
at all once its circuit breaker is open.

The providers here are a FAKE (tests/support/oauth2_upstream.py): GitHub cannot run on this
machine, and no OAuth2-only provider ships as a package. It speaks GitHub's documented
shapes (refusals as 200 + ``error``, numeric ``id``, the emails list), as a GitHub
Enterprise Server host. OpenID Connect itself is proven against a real provider
(oidc-provider) in test_federation_signin.py and test_federation_pages.py.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.db.base import utcnow
from auth_service.federation.connectors import ConnectorSpec, ConnectorType
from auth_service.federation.models import FederatedIdentity
from auth_service.privacy.export import export_user
from tests.support.api import Api
from tests.support.oauth2_upstream import FakeOAuth2, oauth2_upstream
from tests.support.pages import submit

CTX = RequestContext(request_id="test")


@pytest.fixture
def fake() -> Iterator[FakeOAuth2]:
    with oauth2_upstream() as upstream:
        yield upstream


async def _github(api: Api, fake: FakeOAuth2, **settings: Any) -> None:
    spec = ConnectorSpec(
        id="github",
        name="GitHub",
        type=ConnectorType.github,
        client_id=fake.client_id,
        client_secret=fake.client_secret,
        issuer=fake.base,  # a GitHub Enterprise Server host: its API is /api/v3
        **settings,
    )
    await api.services.federation.connectors.create(spec, CTX)


async def _sign_in(api: Api, connector: str) -> httpx.Response:
    """Continue with <name> on /login, at the (fake) provider, back to our callback."""
    api.client.cookies.clear()
    r = await submit(api.client, "/login", f"/login/federated/{connector}", {})
    assert r.status_code == 303, r.text[:400]
    async with httpx.AsyncClient(timeout=10) as browser:
        at_provider = await browser.get(r.headers["location"])
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["location"])
    assert back.path == f"/login/federated/{connector}/callback"
    return await api.client.get(f"{back.path}?{back.query}")


async def _links(api: Api, connector: str) -> list[FederatedIdentity]:
    async with api.services.db.session() as s:
        found = await s.scalars(
            select(FederatedIdentity).where(FederatedIdentity.connector_id == connector)
        )
        return list(found.all())


async def _failures(api: Api) -> list[str]:
    found, _ = await api.services.audit.query(event_type=events.FEDERATION_FAILED)
    return sorted(str(e.details["reason"]) for e in found)


async def test_github_signs_in_by_its_numeric_id_with_the_primary_verified_email(
    api: Api, fake: FakeOAuth2
) -> None:
    await _github(api, fake, trust_email=True)
    assert "Continue with GitHub" in (await api.client.get("/login")).text
    fake.user = {"id": 4242, "login": "octo", "name": "Octo Cat", "email": None}
    fake.emails = [
        {"email": "octo-old@example.com", "primary": False, "verified": True},
        {"email": "octo@example.com", "primary": True, "verified": True},
    ]

    r = await _sign_in(api, "github")
    assert r.status_code == 303, r.text[:400]
    assert r.headers["location"] == "/account"
    tenant = api.services.accounts.tenant_id
    user = await api.services.accounts.identities.by_email(tenant, "octo@example.com")
    assert user is not None
    assert user.name == "Octo Cat"
    assert user.email_verified_at is not None  # GitHub verified it and the connector trusts it
    # GitHub's API was asked for its own media type; the secret went in the form, with PKCE.
    assert fake.accepts
    assert set(fake.accepts) == {"application/vnd.github+json"}
    assert fake.hits["/api/v3/user/emails"] == 1
    form = fake.token_forms[-1]
    assert form["client_secret"] == fake.client_secret
    assert form["code_verifier"]

    fake.user = {**fake.user, "login": "octo-renamed"}  # a login can change; the id cannot
    r = await _sign_in(api, "github")
    assert r.headers["location"] == "/account"
    (link,) = await _links(api, "github")
    assert (link.subject, link.user_id) == ("4242", user.id)


async def test_github_without_a_verified_email_neither_links_nor_verifies(
    api: Api, fake: FakeOAuth2
) -> None:
    await _github(api, fake, trust_email=True)
    owner = await api.user()
    fake.user = {"id": 1, "login": "mallory"}
    fake.emails = [{"email": owner["email"], "primary": True, "verified": False}]
    r = await _sign_in(api, "github")
    assert r.status_code == 409
    assert "Reference:" in r.text
    assert await _links(api, "github") == []  # no takeover by an unverified address

    fake.user = {"id": 2, "login": "newcomer"}
    fake.emails = [{"email": "newcomer@example.com", "primary": True, "verified": False}]
    r = await _sign_in(api, "github")
    assert r.headers["location"] == "/account"
    tenant = api.services.accounts.tenant_id
    made = await api.services.accounts.identities.by_email(tenant, "newcomer@example.com")
    assert made is not None
    assert made.email_verified_at is None
    assert made.name == "newcomer"  # no name: the login
    assert await _failures(api) == ["federated-email-collision"]


async def test_a_refused_code_ends_on_a_page(api: Api, fake: FakeOAuth2) -> None:
    await _github(api, fake)
    fake.user = {"id": 3}
    fake.refuse_token = True  # GitHub's 200 {"error": "bad_verification_code"}
    r = await _sign_in(api, "github")
    assert r.status_code == 401
    assert "could not be verified" in r.text
    assert "Reference:" in r.text
    assert await _failures(api) == ["federation-token-invalid:token_request"]


async def _generic(api: Api, fake: FakeOAuth2, **extra: Any) -> dict[str, Any]:
    body = {
        "id": "corp",
        "name": "Corp Portal",
        "type": "oauth2",
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "authorization_url": fake.base + "/oauth2/authorize",
        "token_url": fake.base + "/oauth2/token",
        "userinfo_url": fake.base + "/oauth2/userinfo",
        "scope": "profile",
        "trust_email": True,
        "claims": {  # the fake answers {"data": {"account": {...}}}
            "subject": "/data/account/uid",
            "email": "data.account.mail",
            "email_verified": "data.account.mail_confirmed",
            "name": "/data/account/display~1name",
            "groups": "data.account.teams",
        },
        **extra,
    }
    r = await api.client.post("/v1/admin/connectors", json=body, headers=await api.admin_headers())
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def test_a_generic_provider_is_read_through_its_claim_mapping_and_groups_give_roles(
    api: Api, fake: FakeOAuth2
) -> None:
    created = await _generic(api, fake, group_roles={"ops": "admin"})
    assert created["claims"]["subject"] == "/data/account/uid"
    fake.user = {
        "uid": "u-77",
        "mail": "ada@example.com",
        "mail_confirmed": True,
        "display/name": "Ada L.",
        "teams": ["ops", "dev"],
    }
    r = await _sign_in(api, "corp")
    assert r.headers["location"] == "/account", r.text[:400]
    tenant = api.services.accounts.tenant_id
    ada = await api.services.accounts.identities.by_email(tenant, "ada@example.com")
    assert ada is not None
    assert (ada.name, ada.roles) == ("Ada L.", ("admin",))
    assert "client_secret" not in fake.token_forms[-1]  # client_secret_basic
    (link,) = await _links(api, "corp")
    assert link.subject == "u-77"

    fake.user = {**fake.user, "teams": ["dev"]}  # left the group upstream
    await _sign_in(api, "corp")
    ada = await api.services.accounts.identities.by_email(tenant, "ada@example.com")
    assert ada is not None
    assert ada.roles == ()
    changes, _ = await api.services.audit.query(event_type=events.FEDERATION_ROLES_CHANGED)
    assert sorted((tuple(e.details["granted"]), tuple(e.details["revoked"])) for e in changes) == [
        ((), ("admin",)),
        (("admin",), ()),
    ]


async def test_a_userinfo_without_the_mapped_subject_is_refused(api: Api, fake: FakeOAuth2) -> None:
    await _generic(api, fake)
    fake.user = {"mail": "nobody@example.com"}  # no uid
    r = await _sign_in(api, "corp")
    assert r.status_code == 401
    assert await _failures(api) == ["federation-token-invalid:no_subject"]


async def test_upstream_tokens_are_kept_sealed_only_when_asked(api: Api, fake: FakeOAuth2) -> None:
    await _generic(api, fake, store_tokens=True)
    owner = await api.user()  # linked by the trusted verified email, then kept
    fake.user = {"uid": "u-1", "mail": owner["email"], "mail_confirmed": True}
    store = api.services.federation.connectors

    await _sign_in(api, "corp")
    (link,) = await _links(api, "corp")
    assert link.tokens_sealed is not None
    assert link.tokens_updated_at is not None
    first = store.open_tokens("corp", "u-1", link.tokens_sealed)
    assert first["access_token"] in fake.tokens
    assert first["access_token"].encode() not in link.tokens_sealed  # encrypted at rest
    assert first["refresh_token"]
    assert first["expires_in"] == 28800

    await _sign_in(api, "corp")  # replaced at each sign-in
    (link,) = await _links(api, "corp")
    assert link.tokens_sealed is not None
    second = store.open_tokens("corp", "u-1", link.tokens_sealed)
    assert second["access_token"] != first["access_token"]

    export = await export_user(api.services.db, link.user_id)  # metadata, never values
    (exported,) = export["linked_identities"]
    assert exported["upstream_tokens_stored"] is True
    assert second["access_token"] not in json.dumps(export)

    await store.update("corp", CTX, store_tokens=False)  # no longer kept: gone now
    (link,) = await _links(api, "corp")
    assert link.tokens_sealed is None
    await store.update("corp", CTX, store_tokens=True)
    await _sign_in(api, "corp")
    assert (await _links(api, "corp"))[0].tokens_sealed is not None

    deletion = api.services.deletion
    await deletion.request(link.user_id, owner["password"], CTX)
    assert await deletion.erase(link.user_id, utcnow() + timedelta(days=400)) is not None
    assert await _links(api, "corp") == []  # erased with the account


@pytest.fixture
def hanging_port() -> Iterator[tuple[int, list[socket.socket]]]:
    """An upstream that accepts connections and never answers; the accepted ones listed."""
    accepted: list[socket.socket] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join(2)
        for conn in accepted:
            conn.close()
        server.close()


BREAKER = {
    "federation": {
        "upstream_timeout_seconds": 0.5,
        "breaker_failures": 2,
        "breaker_cooldown_seconds": 600,
    }
}


@pytest.mark.parametrize("settings_overrides", [BREAKER], indirect=True)
async def test_a_hanging_provider_answers_within_the_timeout_then_is_not_called(
    api: Api, hanging_port: tuple[int, list[socket.socket]]
) -> None:
    port, accepted = hanging_port
    spec = ConnectorSpec(
        id="slow",
        name="Slow",
        type=ConnectorType.oidc,
        client_id="rp",
        issuer=f"http://127.0.0.1:{port}",
    )
    await api.services.federation.connectors.create(spec, CTX)

    for _ in range(2):
        started = time.monotonic()
        r = await submit(api.client, "/login", "/login/federated/slow", {})
        assert r.status_code == 502
        assert "did not answer in time" in r.text
        assert "Reference:" in r.text
        assert time.monotonic() - started < 3  # the 0.5 s deadline, not a tied-up worker
    calls = len(accepted)
    assert calls == 2

    started = time.monotonic()
    r = await submit(api.client, "/login", "/login/federated/slow", {})
    assert r.status_code == 502  # the same clear page, at once, and nobody was called
    assert time.monotonic() - started < 1
    assert len(accepted) == calls
    assert await _failures(api) == [
        "upstream-unavailable",
        "upstream-unavailable",
        "upstream-unavailable:circuit_open",
    ]
    opened, _ = await api.services.audit.query(event_type=events.FEDERATION_BREAKER_OPENED)
    assert [e.details["connector"] for e in opened] == ["slow"]
