"""The planner over the real services, on SQLite and PostgreSQL: each kind's update and prune
paths, what prune never touches, and the refusals found before anything is written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from auth_service.accounts.identity import BuiltinRole
from auth_service.audit.context import RequestContext
from auth_service.oauth.client_metadata import ClientSpec, ClientType
from auth_service.realm.model import RealmError, parse
from auth_service.realm.plan import Plan
from auth_service.realm.run import apply
from auth_service.services import Services, build_services
from tests.support.settings import make_settings

CTX = RequestContext(request_id="plan-test")
HOOK = "http://127.0.0.1:9/hook"
SECRET_A = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODk="
SECRET_B = "whsec_" + "WllYV1ZVVFNSUVBPTk1MS0pJSEdGRURDQkE5ODc2NTQ="


@pytest.fixture
async def services(tmp_path: Path, database_url: str) -> AsyncIterator[Services]:
    built = build_services(
        make_settings(
            tmp_path,
            database_url,
            webhooks={"allow_http": True, "allowed_networks": ["127.0.0.1/32"]},
        )
    )
    await built.accounts.start()
    try:
        yield built
    finally:
        await built.close()


async def _apply(
    services: Services,
    doc: dict[str, Any],
    *,
    prune: bool = False,
    env: dict[str, str] | None = None,
) -> list[str]:
    shown: list[Plan] = []
    await apply(
        services,
        parse({"version": 1, **doc}),
        base=Path(),
        prune=prune,
        show=shown.append,
        environ=env or {},
    )
    return shown[0].render().splitlines()


async def test_webhooks_are_updated_rotated_and_pruned_by_url(services: Services) -> None:
    hook = {"url": HOOK, "event_types": ["user.registered"], "secret": {"env": "HOOK_SECRET"}}
    await _apply(services, {"webhooks": [hook]}, env={"HOOK_SECRET": SECRET_A})
    (sub,) = await services.webhooks.subscriptions()
    assert await services.webhooks.signs_with(sub.id, SECRET_A)

    changed = {**hook, "event_types": ["user.registered", "email.verified"], "enabled": False}
    lines = await _apply(services, {"webhooks": [changed]}, env={"HOOK_SECRET": SECRET_B})
    assert f"~ update webhook {HOOK}" in lines
    assert '    event_types: ["user.registered"] -> ["email.verified", "user.registered"]' in lines
    assert "    enabled: true -> false" in lines
    assert "    secret: (secret changed)" in lines
    (sub,) = await services.webhooks.subscriptions()
    assert (sub.enabled, sub.event_types) == (False, ["email.verified", "user.registered"])
    assert await services.webhooks.signs_with(sub.id, SECRET_B)
    target = await services.webhooks.target(sub.id)
    assert target is not None
    assert target.secrets == [SECRET_B, SECRET_A]  # the previous one signs during the overlap

    assert f"- delete webhook {HOOK}" in await _apply(services, {"webhooks": []}, prune=True)
    assert await services.webhooks.subscriptions() == []


async def test_roles_are_described_and_pruned_but_never_the_built_in_one(
    services: Services,
) -> None:
    await _apply(services, {"roles": [{"name": "auditor"}, {"name": "support"}]})
    lines = await _apply(
        services, {"roles": [{"name": "auditor", "description": "Reads the audit log"}]}
    )
    assert "~ update role auditor" in lines
    assert '    description: null -> "Reads the audit log"' in lines
    assert "! kept role support (not in the file; --prune deletes it)" in lines
    assert not any("role admin" in line for line in lines)  # built in: never a candidate
    lines = await _apply(services, {"roles": []}, prune=True)
    assert "- delete role auditor" in lines
    assert [r.name for r in await services.accounts.roles.all()] == [BuiltinRole.admin.value]


async def test_prune_leaves_dynamically_registered_clients_and_users_alone(
    services: Services,
) -> None:
    spec = ClientSpec(name="dyn", client_type=ClientType.public, redirect_uris=("https://a/cb",))
    registered, _ = await services.oauth.clients.create(spec, CTX, dynamically_registered=True)
    user = await services.accounts.registration.create_user(
        "someone@example.com", None, admin=False, ctx=CTX
    )
    lines = await _apply(
        services, {"clients": [], "admins": [{"email": "Someone@Example.com"}]}, prune=True
    )
    assert not any("dyn" in line or registered.client_id in line for line in lines)
    assert "~ update admin Someone@Example.com" in lines
    assert '    roles: [] -> ["admin"]' in lines
    assert await services.oauth.clients.find(registered.client_id) is not None
    assert (await services.accounts.users.get(user.id)).is_admin


async def test_refusals_are_found_together_before_anything_is_written(
    services: Services,
) -> None:
    public = {
        "client_id": "app",
        "name": "App",
        "type": "public",
        "redirect_uris": ["https://app.example.com/cb"],
    }
    await _apply(services, {"clients": [public]})
    doc = {
        "roles": [{"name": "auditor"}],
        "clients": [
            {**public, "type": "confidential", "client_secret": {"env": "NOPE"}},
            {**public, "client_id": "new", "type": "confidential"},
            {**public, "client_id": "pub", "client_secret": {"keep": True}},
            {**public, "client_id": "bad", "scope": "openid made-up"},
        ],
        "connectors": [{"id": "x", "name": "X", "type": "oidc", "client_id": "c"}],
    }
    with pytest.raises(RealmError) as refused:
        await _apply(services, doc)
    assert refused.value.problems == [
        "connectors[0].issuer: required for type oidc",
        "clients[0].client_secret: environment variable NOPE is not set",
        "clients[0].type: app is public; a client's type cannot change (delete it and "
        "declare a new client_id)",
        "clients[1].client_secret: a new client needs {file: ...} or {env: ...}",
        "clients[2].client_secret: a client authenticating with none has no secret",
        "clients[3]: scope: unsupported scope 'made-up'",
    ]
    assert [r.name for r in await services.accounts.roles.all()] == [BuiltinRole.admin.value]
    assert [c.client_id for c in await services.oauth.clients.list()] == ["app"]


async def test_an_oauth2_connectors_endpoints_mapping_and_token_keeping_are_declared(
    services: Services,
) -> None:
    connector = {
        "id": "corp",
        "name": "Corp SSO",
        "type": "oauth2",
        "client_id": "corp-client",
        "issuer": "https://sso.corp.example",
        "client_secret": {"env": "CORP_SECRET"},
        "authorization_url": "https://sso.corp.example/authorize",
        "token_url": "https://sso.corp.example/token",
        "userinfo_url": "https://sso.corp.example/me",
        "scope": "profile email groups",
        "claims": {"subject": "id", "email": "mail.primary"},
        "group_roles": {"auditors": "admin"},
        "store_tokens": True,
    }
    env = {"CORP_SECRET": "s3cret-of-the-corp-sso"}
    lines = await _apply(services, {"connectors": [connector]}, env=env)
    assert "+ create connector corp" in lines
    found = await services.federation.connectors.get("corp", enabled_only=False)
    assert found.endpoint("token_url") == "https://sso.corp.example/token"
    assert found.claims["email"] == "mail.primary"
    assert (found.group_roles, found.store_tokens) == ({"auditors": "admin"}, True)

    again = await _apply(services, {"connectors": [connector]}, env=env)
    assert "= unchanged connector corp" in again
    changed = {**connector, "claims": {"subject": "id", "email": "mail"}, "store_tokens": False}
    lines = await _apply(services, {"connectors": [changed]}, env=env)
    assert "~ update connector corp" in lines
    found = await services.federation.connectors.get("corp", enabled_only=False)
    assert (found.claims["email"], found.store_tokens) == ("mail", False)
