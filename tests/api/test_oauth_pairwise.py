"""Pairwise subject identifiers (OIDC Core 8.1) on SQLite and PostgreSQL: a pairwise client
sees one ``sub`` per sector (the host of its redirect URIs) in the ID token, the access
token, userinfo and introspection; clients of one sector see the same, of two sectors
different ones, none of them the user's id; registration refuses what has no one sector."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from auth_service.audit.context import RequestContext
from auth_service.oauth.client_metadata import ClientSpec, ClientType
from auth_service.oauth.errors import InvalidClientMetadata
from tests.support import oauth
from tests.support.api import Api


async def _pairwise(api: Api, redirect_uri: str, name: str) -> oauth.Registered:
    return await oauth.client(
        api, redirect_uris=(redirect_uri,), subject_type="pairwise", name=name
    )


async def _subjects(api: Api, registered: oauth.Registered, email: str) -> dict[str, Any]:
    """Every sub the client is told for the signed-in user."""
    _, tokens = await oauth.code_tokens(api, registered, email)
    id_claims = jwt.decode(tokens["id_token"], options={"verify_signature": False})
    access = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    info = await api.client.get(
        "/oauth2/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert info.status_code == 200, info.text
    seen = {"id_token": id_claims["sub"], "access_token": access["sub"]}
    seen["userinfo"] = info.json()["sub"]
    for name in ("access_token", "refresh_token"):
        r = await api.client.post(
            "/oauth2/introspect", data={"token": tokens[name]}, headers=registered.basic
        )
        assert r.json()["active"] is True, r.text
        seen[f"introspection of {name}"] = r.json()["sub"]
    return seen


async def _one_sub(api: Api, registered: oauth.Registered, email: str) -> str:
    seen = await _subjects(api, registered, email)
    assert len(set(seen.values())) == 1, seen
    sub: str = seen["id_token"]
    return sub


async def test_pairwise_subjects_differ_by_sector_and_agree_within_one(api: Api) -> None:
    email = await oauth.new_user(api)
    accounts = api.services.accounts
    identity = await accounts.identities.by_email(accounts.tenant_id, email)
    assert identity is not None
    user_id = str(identity.id)
    shop = await _pairwise(api, "https://shop.example.com/callback", "Shop")
    shop_admin = await _pairwise(api, "https://shop.example.com/admin/cb", "Shop admin")
    news = await _pairwise(api, "https://news.example.org/callback", "News")
    public = await oauth.client(api, redirect_uris=("https://shop.example.com/p",))

    shop_sub = await _one_sub(api, shop, email)
    assert shop_sub != user_id
    assert len(shop_sub) == 43  # base64url of an HMAC-SHA256
    assert await _one_sub(api, shop_admin, email) == shop_sub
    news_sub = await _one_sub(api, news, email)
    assert news_sub not in (shop_sub, user_id)
    assert await _one_sub(api, public, email) == user_id
    # Stable: a second sign-in, the same sub.
    assert await _one_sub(api, shop, email) == shop_sub


async def test_two_users_get_two_pairwise_subjects(api: Api) -> None:
    shop = await _pairwise(api, "https://shop.example.com/callback", "Shop")
    first = await _one_sub(api, shop, await oauth.new_user(api))
    api.client.cookies.clear()
    second = await _one_sub(api, shop, await oauth.new_user(api))
    assert first != second


def _spec(**change: Any) -> ClientSpec:
    values: dict[str, Any] = {
        "name": "App",
        "client_type": ClientType.confidential,
        "redirect_uris": ("https://a.example.com/cb",),
        "subject_type": "pairwise",
    }
    values.update(change)
    return ClientSpec(**values)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            {"redirect_uris": ("https://a.example.com/cb", "https://b.example.com/cb")},
            "subject_type",
            "one host",
        ),
        (
            {"sector_identifier_uri": "https://a.example.com/sector.json"},
            "sector_identifier_uri",
            "not supported",
        ),
        ({"subject_type": "secret"}, "subject_type", "public or pairwise"),
    ],
)
async def test_registration_refuses_what_has_no_single_sector(
    api: Api, change: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(InvalidClientMetadata) as refused:
        await api.services.oauth.clients.create(_spec(**change), RequestContext())
    assert refused.value.field == field
    assert words in str(refused.value.reason)


async def test_discovery_lists_both_subject_types(api: Api) -> None:
    doc = (await api.client.get("/.well-known/openid-configuration")).json()
    assert doc["subject_types_supported"] == ["public", "pairwise"]


async def test_logout_recognises_a_pairwise_id_token_hint(api: Api) -> None:
    shop = await _pairwise(api, "https://shop.example.com/callback", "Shop")
    _, tokens = await oauth.code_tokens(api, shop, await oauth.new_user(api))
    r = await api.client.get(
        "/oauth2/logout",
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": oauth.LOGOUT_REDIRECT,
        },
    )
    assert r.status_code == 303, r.text  # the signed-in user's hint: no confirmation
    assert r.headers["location"] == oauth.LOGOUT_REDIRECT
