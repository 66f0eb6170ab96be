"""An administrator of the service under test, signed in over the API."""

from __future__ import annotations

import uuid
from typing import Any

from auth_service.audit.context import RequestContext
from tests.support.api import Api

ADMIN_PASSWORD = "admin pass phrase 42"


async def signed_in_admin(api: Api) -> dict[str, Any]:
    """A new administrator (made as the CLI makes one), logged in: the login body plus
    ``id``, ``email`` and the ``headers`` that carry its access token."""
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    await api.services.accounts.registration.create_user(
        email, ADMIN_PASSWORD, admin=True, ctx=RequestContext()
    )
    body = (await api.login(email, ADMIN_PASSWORD)).json()
    headers = api.bearer(body["access_token"])
    me = (await api.client.get("/v1/users/me", headers=headers)).json()
    return {**body, "id": me["id"], "email": email, "headers": headers}
