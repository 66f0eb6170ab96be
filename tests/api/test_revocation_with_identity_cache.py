"""The revoke-then-check tests of other modules, again with Redis configured: the bus is
healthy and ``fresh_principal`` answers from the identity cache (ADR 0431). They must pass
unchanged: every revocation, disable, role change and profile change is seen by the next
request."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.api.test_admin import (
    admin,
    test_delete_user,
    test_disable_revokes_sessions_and_blocks_login,
    test_grant_admin_role_takes_effect_without_waiting_for_token_expiry,
)
from tests.api.test_auth_flow import (
    test_logout_revokes_the_session,
    test_me_and_update_profile,
    test_password_change_revokes_other_sessions_only,
    test_password_reset_is_single_use_and_revokes_all_sessions,
    test_refresh_rotates_and_a_replayed_token_revokes_the_session,
    test_sessions_list_and_revoke,
)
from tests.api.test_session_liveness import (
    test_list_gauge_and_bearer_check_agree_on_usable_sessions,
)
from tests.support.api import Api

pytestmark = [pytest.mark.redis]

__all__ = [
    "admin",
    "test_delete_user",
    "test_disable_revokes_sessions_and_blocks_login",
    "test_grant_admin_role_takes_effect_without_waiting_for_token_expiry",
    "test_list_gauge_and_bearer_check_agree_on_usable_sessions",
    "test_logout_revokes_the_session",
    "test_me_and_update_profile",
    "test_password_change_revokes_other_sessions_only",
    "test_password_reset_is_single_use_and_revokes_all_sessions",
    "test_refresh_rotates_and_a_replayed_token_revokes_the_session",
    "test_sessions_list_and_revoke",
]


@pytest.fixture
def settings_overrides(redis_url: str) -> dict[str, Any]:
    return {"redis": {"url": redis_url}}


async def test_the_cache_is_in_use(api: Api) -> None:
    """Control: with Redis the bus is healthy and a repeated bearer is served from memory."""
    assert api.services.bus.healthy
    user = await api.user()
    cache = api.services.sessions.identity_cache
    assert cache is not None
    assert (
        await api.client.get("/v1/users/me", headers=api.bearer(user["access_token"]))
    ).status_code == 200
    assert len(cache) == 1


async def test_concurrent_misses_read_the_session_once(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await api.user()
    sessions = api.services.sessions
    reads = 0
    real = sessions._read_identity

    async def counted(*args: Any) -> Any:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.05)  # the others arrive while this read is in flight
        return await real(*args)

    me = await api.client.get("/v1/users/me", headers=api.bearer(user["access_token"]))
    session_id, subject = uuid.UUID(user["session_id"]), uuid.UUID(me.json()["id"])
    assert sessions.identity_cache is not None
    sessions.identity_cache.clear()
    monkeypatch.setattr(sessions, "_read_identity", counted)
    found = await asyncio.gather(*(sessions.cached_identity(session_id, subject) for _ in range(5)))
    assert reads == 1
    assert {f.id for f in found} == {subject}
