"""``/v1/admin/connectors`` on SQLite and PostgreSQL: CRUD for administrators only, the
client secret write-only and sealed, refusals as problems, every change audited."""

from __future__ import annotations

from sqlalchemy import select

from auth_service.audit import events
from auth_service.federation.models import ConnectorRow
from tests.support.api import Api

SECRET = "an-upstream-client-credential-value"
BODY = {
    "id": "corp",
    "name": "Corp SSO",
    "type": "oidc",
    "issuer": "https://sso.example.com",
    "client_id": "rp-1",
    "client_secret": SECRET,
}


async def test_connectors_crud(api: Api) -> None:
    admin = await api.admin_headers()
    r = await api.client.post("/v1/admin/connectors", json=BODY, headers=admin)
    assert r.status_code == 201, r.text
    created = r.json()
    assert SECRET not in r.text
    assert created["client_secret_set"] is True
    assert created["redirect_uri"].endswith("/login/federated/corp/callback")
    async with api.services.db.single() as conn:
        sealed = await conn.scalar(select(ConnectorRow.client_secret_sealed))
    assert sealed is not None
    assert SECRET.encode() not in sealed

    r = await api.client.post("/v1/admin/connectors", json=BODY, headers=admin)
    assert r.status_code == 409
    assert r.json()["type"].endswith("/connector-exists")

    r = await api.client.patch(
        "/v1/admin/connectors/corp", json={"enabled": False, "name": "Corp"}, headers=admin
    )
    assert r.status_code == 200, r.text
    assert (r.json()["enabled"], r.json()["name"]) == (False, "Corp")
    listed = (await api.client.get("/v1/admin/connectors", headers=admin)).json()
    assert [c["id"] for c in listed] == ["corp"]
    shown = await api.client.get("/v1/admin/connectors/corp", headers=admin)
    assert shown.json()["name"] == "Corp"

    r = await api.client.delete("/v1/admin/connectors/corp", headers=admin)
    assert r.status_code == 204
    r = await api.client.get("/v1/admin/connectors/corp", headers=admin)
    assert r.status_code == 404
    kinds = set()
    for kind in (
        events.FEDERATION_CONNECTOR_CREATED,
        events.FEDERATION_CONNECTOR_UPDATED,
        events.FEDERATION_CONNECTOR_DELETED,
    ):
        found, _ = await api.services.audit.query(event_type=kind)
        assert all(SECRET not in str(e.details) for e in found)
        kinds |= {e.type for e in found}
    assert len(kinds) == 3


async def test_bad_connectors_are_clear_problems(api: Api) -> None:
    admin = await api.admin_headers()
    for body, slug in (
        ({**BODY, "issuer": "http://sso.example.com"}, "invalid-connector"),
        ({**BODY, "type": "oauth2"}, "invalid-connector"),  # no endpoints
        ({**BODY, "authorization_url": "https://sso.example.com/a"}, "invalid-connector"),
        ({**BODY, "claims": {"subject": "id"}}, "invalid-connector"),  # OIDC: always sub
        ({**BODY, "type": "github", "claims": {"email": "mail"}}, "invalid-connector"),
        ({**BODY, "claims": {"colour": "c"}}, "validation"),
        ({**BODY, "issuer": "https://[sso.example.com"}, "invalid-connector"),
        ({**BODY, "name": "Bad\x00name"}, "validation"),
        ({**BODY, "id": "Not A Slug"}, "invalid-connector"),
    ):
        r = await api.client.post("/v1/admin/connectors", json=body, headers=admin)
        assert r.status_code == 422, (body, r.text)
        assert slug in r.json()["type"], r.text


async def test_only_administrators_manage_connectors(api: Api) -> None:
    user = await api.user()
    r = await api.client.get("/v1/admin/connectors", headers=api.bearer(user["access_token"]))
    assert r.status_code == 403
    assert (await api.client.get("/v1/admin/connectors")).status_code == 401
