"""HTTP routes of personal data: the export (own and, for admins, anyone's) and self-service
deletion with a grace period (docs/privacy.md)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Response, status
from fastapi.responses import JSONResponse

from auth_service.audit import events
from auth_service.privacy.export import export_user
from auth_service.privacy.schemas import DeletionRequest, DeletionScheduled
from auth_service.web.deps import AdminPrincipal, FreshPrincipal, ServicesDep
from auth_service.web.openapi import problem_responses
from auth_service.web.stepup import require_step_up

router = APIRouter(prefix="/v1")

NO_STORE = {"Cache-Control": "no-store"}


def _document(body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, headers=NO_STORE)


@router.get(
    "/users/me/export",
    tags=["users"],
    responses=problem_responses(401, 503),
    response_model=dict[str, Any],
)
async def export_me(principal: FreshPrincipal, services: ServicesDep) -> JSONResponse:
    """Everything stored about the signed-in user, as JSON (never a secret: no password or
    token hashes, no factor secrets). Audited ``account.exported``."""
    user_id = principal.claims.subject
    body = await export_user(services.db, user_id)
    await services.audit.record(events.ACCOUNT_EXPORTED, principal.context, subject=user_id)
    return _document(body)


@router.get(
    "/admin/users/{user_id}/export",
    tags=["admin"],
    responses=problem_responses(401, 403, 404, 503),
    response_model=dict[str, Any],
    dependencies=[Depends(require_step_up("admin"))],
)
async def export_user_as_admin(
    user_id: uuid.UUID, principal: AdminPrincipal, services: ServicesDep
) -> JSONResponse:
    """The same document for any user of the tenant. Audited ``admin.user_exported``."""
    body = await export_user(services.db, user_id)
    await services.audit.record(events.ADMIN_USER_EXPORTED, principal.context, subject=user_id)
    return _document(body)


@router.delete(
    "/users/me",
    response_model=DeletionScheduled,
    tags=["users"],
    responses=problem_responses(401, 409, 422, 429, 503),
)
async def delete_me(
    body: DeletionRequest, principal: FreshPrincipal, services: ServicesDep
) -> DeletionScheduled:
    """Delete the account after ``accounts.deletion_grace_days``, confirming with the
    password. Every other session ends now; signing in again, or ``DELETE
    /v1/users/me/deletion``, cancels. The last administrator is refused (409 last-admin)."""
    due = await services.deletion.request(
        principal.claims.subject,
        body.password,
        principal.context,
        keep_session=principal.claims.session_id,
    )
    return DeletionScheduled(deletion_due_at=due)


@router.delete(
    "/users/me/deletion",
    status_code=status.HTTP_204_NO_CONTENT,
    tags=["users"],
    responses=problem_responses(401, 503),
)
async def cancel_deletion(principal: FreshPrincipal, services: ServicesDep) -> Response:
    """Cancel a pending deletion of the account (nothing to do when none is pending)."""
    await services.deletion.cancel(principal.claims.subject, principal.context)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
