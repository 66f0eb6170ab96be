"""Personal data over the API on SQLite and PostgreSQL: the export (own, and an admin's of
anyone) holds everything about the user and no secret; deletion waits its grace period, is
cancelled by signing in or by the endpoint, and housekeeping's erasure leaves only a
pseudonymous audit trail."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import or_, select

from auth_service.audit import events
from auth_service.audit.models import AuditEvent
from auth_service.federation.models import FederatedIdentity
from tests.support.api import PASSWORD, Api
from tests.support.problems import assert_problem


async def _export(api: Api, token: str) -> dict[str, Any]:
    r = await api.client.get("/v1/users/me/export", headers=api.bearer(token))
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body: dict[str, Any] = r.json()
    return body


async def _delete_me(api: Api, token: str, password: str) -> Any:
    return await api.client.request(
        "DELETE", "/v1/users/me", json={"password": password}, headers=api.bearer(token)
    )


async def _events(api: Api, event_type: str) -> list[AuditEvent]:
    async with api.services.db.sessionmaker() as s:
        stmt = select(AuditEvent).where(AuditEvent.type == event_type)
        return list((await s.execute(stmt)).scalars())


async def test_the_export_holds_everything_about_the_user_and_no_secret(api: Api) -> None:
    user = await api.user()
    body = await _export(api, user["access_token"])
    text = json.dumps(body)
    profile = body["profile"]
    assert (profile["email"], profile["has_password"], profile["status"]) == (
        user["email"],
        True,
        "active",
    )
    assert profile["deletion_due_at"] is None
    assert [s["id"] for s in body["sessions"]] == [user["session_id"]]
    assert body["factors"] == {
        "totp": None,
        "passkeys": [],
        "recovery_codes": {"issued": 0, "used": 0},
    }
    assert body["oauth_consents"] == []
    assert body["linked_identities"] == []
    assert [t["purpose"] for t in body["one_time_tokens"]] == ["email_verify"]
    types = [e["type"] for e in body["audit_events"]]
    assert events.USER_REGISTERED in types
    assert events.LOGIN_SUCCEEDED in types
    # No secret in any form: not the password, its hash, or any token or its hash.
    assert user["password"] not in text
    assert "$argon2" not in text
    assert user["refresh_token"] not in text
    assert user["access_token"] not in text
    assert "hash" not in text.replace("has_password", "")
    (exported,) = await _events(api, events.ACCOUNT_EXPORTED)
    assert exported.subject_user_id == uuid.UUID(profile["id"])


async def test_admins_export_anyone_others_cannot(api: Api) -> None:
    user = await api.user()
    mine = await _export(api, user["access_token"])
    user_id = mine["profile"]["id"]
    admin = await api.admin_headers()
    r = await api.client.get(f"/v1/admin/users/{user_id}/export", headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["profile"] == mine["profile"]
    assert_problem(
        await api.client.get(
            f"/v1/admin/users/{user_id}/export", headers=api.bearer(user["access_token"])
        ),
        403,
        "forbidden",
    )
    assert_problem(
        await api.client.get(f"/v1/admin/users/{uuid.uuid4()}/export", headers=admin),
        404,
        "user-not-found",
    )
    assert len(await _events(api, events.ADMIN_USER_EXPORTED)) == 1


async def test_deletion_waits_ends_other_sessions_and_is_cancelled(api: Api) -> None:
    user = await api.user()
    other = (await api.login(user["email"], user["password"])).json()
    token = user["access_token"]
    assert_problem(await _delete_me(api, token, "not the password"), 401, "invalid-credentials")
    r = await _delete_me(api, token, user["password"])
    assert r.status_code == 200, r.text
    due = datetime.fromisoformat(r.json()["deletion_due_at"])
    assert abs(due - (datetime.now(UTC) + timedelta(days=30))) < timedelta(minutes=1)
    # The other session ended; this one can still look and cancel.
    assert_problem(
        await api.client.post("/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}),
        401,
        "invalid-refresh-token",
    )
    assert (await _export(api, token))["profile"]["deletion_due_at"] is not None
    # The owner is told (a stolen session may have asked), with the date and how to keep it.
    (told,) = [m for m in await api.mail() if "Your account will be deleted" in m]
    assert f"To: {user['email']}" in told
    assert due.strftime("%Y-%m-%d %H:%M UTC") in told
    assert "/account" in told
    r = await api.client.delete("/v1/users/me/deletion", headers=api.bearer(token))
    assert r.status_code == 204, r.text
    assert (await _export(api, token))["profile"]["deletion_due_at"] is None
    failed, requested = sorted(
        await _events(api, events.ACCOUNT_DELETION_REQUESTED), key=lambda e: e.occurred_at
    )
    assert failed.outcome == "failure"  # the wrong password, audited under the request
    assert requested.outcome == "success"
    assert requested.details["due_at"] == due.isoformat()
    (cancelled,) = await _events(api, events.ACCOUNT_DELETION_CANCELLED)
    assert cancelled.details == {"by": "request"}
    # Again: nothing pending, nothing to do.
    r = await api.client.delete("/v1/users/me/deletion", headers=api.bearer(token))
    assert r.status_code == 204
    assert len(await _events(api, events.ACCOUNT_DELETION_CANCELLED)) == 1


async def test_signing_in_cancels_a_pending_deletion(api: Api) -> None:
    user = await api.user()
    r = await _delete_me(api, user["access_token"], user["password"])
    assert r.status_code == 200, r.text
    again = await api.login(user["email"], user["password"])
    assert again.status_code == 200, again.text
    body = await _export(api, again.json()["access_token"])
    assert body["profile"]["deletion_due_at"] is None
    (cancelled,) = await _events(api, events.ACCOUNT_DELETION_CANCELLED)
    assert cancelled.details == {"by": "sign_in"}


async def test_the_last_admin_cannot_ask_for_deletion(api: Api) -> None:
    admin = await api.admin_headers()
    r = await api.client.request(
        "DELETE", "/v1/users/me", json={"password": PASSWORD}, headers=admin
    )
    assert_problem(r, 409, "last-admin")
    assert await _events(api, events.ACCOUNT_DELETION_REQUESTED) == []


@pytest.mark.parametrize(
    "settings_overrides", [{"accounts": {"deletion_grace_days": 0}}], indirect=True
)
async def test_housekeeping_erases_leaving_a_pseudonymous_trail(api: Api) -> None:
    user = await api.user()
    user_id = uuid.UUID((await _export(api, user["access_token"]))["profile"]["id"])
    r = await _delete_me(api, user["access_token"], user["password"])
    assert r.status_code == 200, r.text

    dry = await api.services.housekeeping.run(dry_run=True)
    assert {t.table: t.rows for t in dry.tables}["users"] == 1
    report = await api.services.housekeeping.run()
    assert {t.table: t.rows for t in report.tables}["users"] == 1

    assert_problem(await api.login(user["email"], user["password"]), 401, "invalid-credentials")
    pseudonym = api.services.deletion.pseudonym(user_id)
    async with api.services.db.sessionmaker() as s:
        about_them = list(
            (
                await s.execute(
                    select(AuditEvent).where(
                        or_(
                            AuditEvent.subject_user_id == user_id,
                            AuditEvent.actor_user_id == user_id,
                        )
                    )
                )
            ).scalars()
        )
        kept = list(
            (
                await s.execute(
                    select(AuditEvent).where(
                        or_(
                            AuditEvent.subject_user_id == pseudonym,
                            AuditEvent.actor_user_id == pseudonym,
                        )
                    )
                )
            ).scalars()
        )
        every = list((await s.execute(select(AuditEvent))).scalars())
    assert about_them == []
    types = {e.type for e in kept}
    assert {
        events.USER_REGISTERED,
        events.ACCOUNT_DELETION_REQUESTED,
        events.ACCOUNT_ERASED,
    } <= types
    for event in kept:
        if event.type != events.ACCOUNT_ERASED:
            assert (event.ip, event.user_agent, event.details) == (
                None,
                None,
                {"pseudonymised": True},
            )
    # Nowhere in the audit trail: the email address, or the user id.
    trail = json.dumps([[str(e.subject_user_id), str(e.actor_user_id), e.details] for e in every])
    assert user["email"] not in trail
    assert str(user_id) not in trail


async def test_the_export_lists_linked_identities(api: Api) -> None:
    user = await api.user()
    admin = await api.admin_headers()
    connector = {
        "id": "corp",
        "name": "Corp SSO",
        "type": "oidc",
        "issuer": "https://sso.example.com",
        "client_id": "rp-1",
        "client_secret": "an-upstream-client-credential-value",
    }
    r = await api.client.post("/v1/admin/connectors", json=connector, headers=admin)
    assert r.status_code == 201, r.text
    me = await api.client.get("/v1/users/me", headers=api.bearer(user["access_token"]))
    async with api.services.db.sessionmaker() as s, s.begin():
        s.add(
            FederatedIdentity(
                user_id=uuid.UUID(me.json()["id"]),
                connector_id="corp",
                subject="upstream-subject-1",
                email=user["email"],
            )
        )
    body = await _export(api, user["access_token"])
    (linked,) = body["linked_identities"]
    assert (linked["connector_id"], linked["connector_name"], linked["subject"]) == (
        "corp",
        "Corp SSO",
        "upstream-subject-1",
    )
    assert "an-upstream-client-credential-value" not in json.dumps(body)
