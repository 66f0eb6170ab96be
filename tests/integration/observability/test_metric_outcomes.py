"""Every domain outcome the issue names moves its counter, through the HTTP API."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from prometheus_client import REGISTRY

from auth_service.accounts.identity import UserStatus
from auth_service.audit.context import SYSTEM
from auth_service.db.engine import Backend
from tests.support.api import Api
from tests.support.mail import mail_token

PASSWORD = "Tr0ub4dor&3-horse"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {
        "lockout": {"threshold": 3, "base_seconds": 60},
        "rate_limits": {"login_per_account": "4/minute"},
    }


class Counts:
    """Before/after reader of prometheus_client's in-process registry."""

    def __init__(self) -> None:
        self.before: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def value(self, name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    def mark(self, name: str, **labels: str) -> None:
        self.before[(name, tuple(sorted(labels.items())))] = self.value(name, **labels)

    def delta(self, name: str, **labels: str) -> float:
        return self.value(name, **labels) - self.before[(name, tuple(sorted(labels.items())))]


def _email() -> str:
    return f"m-{uuid.uuid4().hex[:10]}@example.com"


async def _id_of(api: Api, email: str) -> uuid.UUID:
    identity = await api.services.accounts.identities.by_email(
        api.services.accounts.tenant_id, email
    )
    assert identity is not None
    return identity.id


async def test_login_results(api: Api) -> None:
    c = Counts()
    results = ("success", "bad_credentials", "locked", "rate_limited", "disabled")
    for result in results:
        c.mark("auth_logins_total", result=result)
    c.mark("auth_lockouts_total")

    await api.user()  # one success

    locked = _email()
    assert (await api.register(locked, PASSWORD)).status_code == 202
    for _ in range(3):
        assert (await api.login(locked, "wrong-password-1")).status_code == 401
    assert (await api.login(locked, PASSWORD)).status_code == 429  # account-locked

    limited = _email()
    for _ in range(4):
        await api.login(limited, "wrong-password-2")
    assert (await api.login(limited, "wrong-password-2")).status_code == 429

    disabled, admin = _email(), _email()  # the tenant must keep an active admin
    for email in (disabled, admin):
        assert (await api.register(email, PASSWORD)).status_code == 202
    users = api.services.accounts.users
    await users.admin_update(await _id_of(api, admin), SYSTEM, roles=["admin"])
    await users.admin_update(await _id_of(api, disabled), SYSTEM, status=UserStatus.disabled)
    assert (await api.login(disabled, PASSWORD)).status_code == 403

    assert c.delta("auth_logins_total", result="success") == 1
    # 3 for the locked account, 3 for the rate-limited one (its 4th attempt finds it locked)
    assert c.delta("auth_logins_total", result="bad_credentials") == 6
    assert c.delta("auth_logins_total", result="locked") == 2
    assert c.delta("auth_logins_total", result="rate_limited") == 1
    assert c.delta("auth_logins_total", result="disabled") == 1
    assert c.delta("auth_lockouts_total") == 2


async def test_refresh_logout_reset_verify(api: Api) -> None:
    c = Counts()
    for result in ("success", "invalid", "reuse_detected"):
        c.mark("auth_token_refreshes_total", result=result)
    for stage in ("requested", "completed", "invalid"):
        c.mark("auth_password_resets_total", stage=stage)
    for result in ("success", "invalid"):
        c.mark("auth_email_verifications_total", result=result)
    c.mark("auth_registrations_total", result="success")
    c.mark("auth_registrations_total", result="conflict")
    c.mark("auth_logouts_total")
    c.mark("auth_mail_sent_total")
    c.mark("auth_token_sign_duration_seconds_count")
    c.mark("auth_password_hash_duration_seconds_count", operation="hash")

    user = await api.user()
    assert (await api.register(user["email"], PASSWORD)).status_code == 202  # a conflict
    first = user["refresh_token"]
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": first})
    assert r.status_code == 200
    second = r.json()["refresh_token"]
    assert (
        await api.client.post("/v1/auth/refresh", json={"refresh_token": "x" * 40})
    ).status_code == 401
    # Presenting the spent token again revokes the session.
    assert (
        await api.client.post("/v1/auth/refresh", json={"refresh_token": first})
    ).status_code == 401

    other = await api.user()
    r = await api.client.post("/v1/auth/logout", json={"refresh_token": other["refresh_token"]})
    assert r.status_code in (200, 204)

    await api.client.post("/v1/auth/password/forgot", json={"email": user["email"]})
    mails = await api.mail()

    def token_in(kind: str) -> str:
        # The newest link: the notice of the second registration carried an older reset link.
        return mail_token(reversed(mails), kind)

    verify_token, reset_token = token_in("/verify-email"), token_in("/reset-password")
    r = await api.client.post(
        "/v1/auth/password/reset", json={"token": reset_token, "new_password": "N3w-horse-battery"}
    )
    assert r.status_code in (200, 204), r.text
    r = await api.client.post(
        "/v1/auth/password/reset", json={"token": "y" * 40, "new_password": "N3w-horse-battery"}
    )
    assert r.status_code == 400
    assert (
        await api.client.post("/v1/auth/email/verify", json={"token": verify_token})
    ).status_code in (200, 204)
    assert (
        await api.client.post("/v1/auth/email/verify", json={"token": "z" * 40})
    ).status_code == 400

    assert c.delta("auth_token_refreshes_total", result="success") == 1
    assert c.delta("auth_token_refreshes_total", result="invalid") == 1
    assert c.delta("auth_token_refreshes_total", result="reuse_detected") == 1
    assert c.delta("auth_registrations_total", result="success") == 2
    assert c.delta("auth_registrations_total", result="conflict") == 1
    assert c.delta("auth_logouts_total") == 1
    assert c.delta("auth_password_resets_total", stage="requested") == 1
    assert c.delta("auth_password_resets_total", stage="completed") == 1
    assert c.delta("auth_password_resets_total", stage="invalid") == 1
    assert c.delta("auth_email_verifications_total", result="success") == 1
    assert c.delta("auth_email_verifications_total", result="invalid") == 1
    assert c.delta("auth_mail_sent_total") >= 3  # two verifications and one reset
    assert c.delta("auth_token_sign_duration_seconds_count") == 3  # two logins, one refresh
    assert c.delta("auth_password_hash_duration_seconds_count", operation="hash") >= 3
    assert second


async def test_db_metrics_and_identity(api: Api) -> None:
    c = Counts()
    c.mark("auth_db_query_duration_seconds_count")
    await api.user()
    assert c.delta("auth_db_query_duration_seconds_count") > 3
    text = (await api.management.get("/metrics")).text
    assert re.search(
        r'^auth_build_info\{commit="[^"]+",python="[^"]+",version="[^"]+"\} 1\.0$', text, re.M
    )
    assert re.search(r'^auth_config_info\{hash="[0-9a-f]{16}"\} 1\.0$', text, re.M)
    pool = api.services.db.engine.sync_engine.pool
    if api.services.db.backend is Backend.postgresql:
        assert c.value("auth_db_pool_size") == api.services.settings.database.pool_size
    # The gauge follows the pool on every checkout and checkin (no await between the reads).
    async with api.services.db.engine.connect() as conn:
        await conn.exec_driver_sql("SELECT 1")
        assert c.value("auth_db_pool_checked_out") == pool.checkedout() >= 1
    assert c.value("auth_db_pool_checked_out") == pool.checkedout()
