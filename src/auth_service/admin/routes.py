"""Admin API: users, audit events, key rotation. Requires the ``admin`` role."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import AwareDatetime

from auth_service.accounts.schemas import AdminUserOut
from auth_service.admin.schemas import (
    AdminUserPatch,
    AuditEventOut,
    AuditPage,
    RotateResponse,
    UserPage,
)
from auth_service.web.deps import AdminPrincipal, ServicesDep
from auth_service.web.openapi import problem_responses
from auth_service.web.stepup import require_step_up

router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    responses=problem_responses(401, 403),
    dependencies=[Depends(require_step_up("admin"))],
)

Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


@router.get("/users", response_model=UserPage)
async def list_users(
    _: AdminPrincipal,
    services: ServicesDep,
    email: Annotated[str | None, Query(max_length=320)] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> UserPage:
    """Users oldest first; ``email`` filters by substring (case-insensitive)."""
    users, total = await services.accounts.users.list_users(email=email, limit=limit, offset=offset)
    return UserPage(
        items=[AdminUserOut.of(u) for u in users], total=total, limit=limit, offset=offset
    )


@router.get("/users/{user_id}", response_model=AdminUserOut, responses=problem_responses(404))
async def get_user(user_id: uuid.UUID, _: AdminPrincipal, services: ServicesDep) -> AdminUserOut:
    return AdminUserOut.of(await services.accounts.users.get(user_id))


@router.patch(
    "/users/{user_id}", response_model=AdminUserOut, responses=problem_responses(404, 409, 422)
)
async def update_user(
    user_id: uuid.UUID, body: AdminUserPatch, principal: AdminPrincipal, services: ServicesDep
) -> AdminUserOut:
    """Disable or enable (disabling revokes every session), set roles, rename."""
    identity = await services.accounts.users.admin_update(
        user_id,
        principal.context,
        status=body.status,
        roles=list(body.roles) if body.roles is not None else None,
        name=body.name,
        set_name="name" in body.model_fields_set,
    )
    return AdminUserOut.of(identity)


@router.delete(
    "/users/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 409),
)
async def delete_user(
    user_id: uuid.UUID, principal: AdminPrincipal, services: ServicesDep
) -> Response:
    await services.accounts.users.admin_delete(user_id, principal.context)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/users/{user_id}/mfa",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404),
)
async def reset_mfa(
    user_id: uuid.UUID, principal: AdminPrincipal, services: ServicesDep
) -> Response:
    """Remove every second factor and passkey of a user (audited; the user is mailed)."""
    identity = await services.accounts.users.get(user_id)
    await services.mfa.reset(identity, principal.context)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/audit-events", response_model=AuditPage)
async def audit_events(
    _: AdminPrincipal,
    services: ServicesDep,
    user_id: uuid.UUID | None = None,
    type: Annotated[str | None, Query(max_length=64)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> AuditPage:
    """Newest first; filter by user (actor or subject), event type and time range."""
    records, total = await services.audit.query(
        user_id=user_id, event_type=type, since=since, until=until, limit=limit, offset=offset
    )
    return AuditPage(
        items=[AuditEventOut.of(r) for r in records], total=total, limit=limit, offset=offset
    )


@router.post("/keys/rotate", response_model=RotateResponse)
async def rotate_keys(principal: AdminPrincipal, services: ServicesDep) -> RotateResponse:
    """Promote the published next key to signing; the old key stays published until expiry."""
    return RotateResponse(active_kid=await services.keys.rotate(principal.context))
