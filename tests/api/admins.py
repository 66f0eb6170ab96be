"""An administrator for API tests: created through the service, logged in over HTTP."""

from __future__ import annotations

import uuid

from auth_service.audit.context import RequestContext
from tests.conftest import Api

PASSWORD = "Tr0ub4dor&3-horse"


async def admin_headers(api: Api) -> dict[str, str]:
    """The Authorization header of a fresh admin (the API has no way to create the first)."""
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    await api.services.accounts.registration.create_user(
        email, PASSWORD, admin=True, ctx=RequestContext()
    )
    r = await api.login(email, PASSWORD)
    assert r.status_code == 200, r.text
    return Api.bearer(r.json()["access_token"])
