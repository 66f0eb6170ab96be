"""Admin API over the webhooks: subscriptions, secret rotation, the delivery log. Requires
the ``admin`` role (docs/operations/webhooks.md)."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, status

from auth_service.web.deps import AdminPrincipal, ServicesDep
from auth_service.web.openapi import problem_responses
from auth_service.webhooks.schemas import (
    DeliveryOut,
    DeliveryPage,
    WebhookIn,
    WebhookOut,
    WebhookPatch,
    WebhookWithSecret,
)

router = APIRouter(
    prefix="/v1/admin/webhooks", tags=["admin"], responses=problem_responses(401, 403)
)

DeliveryStatus = Literal["delivered", "retrying", "dead", "skipped"]


@router.post(
    "",
    response_model=WebhookWithSecret,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(422),
)
async def create_webhook(
    body: WebhookIn, principal: AdminPrincipal, services: ServicesDep
) -> WebhookWithSecret:
    """Subscribe a URL to audit event types; ``secret`` is in this answer only."""
    sub, secret = await services.webhooks.create(body.spec(), principal.context)
    return WebhookWithSecret(**WebhookOut.of(sub).model_dump(), secret=secret)


@router.get("", response_model=list[WebhookOut])
async def list_webhooks(_: AdminPrincipal, services: ServicesDep) -> list[WebhookOut]:
    """Every subscription, oldest first."""
    return [WebhookOut.of(s) for s in await services.webhooks.subscriptions()]


@router.get("/{webhook_id}", response_model=WebhookOut, responses=problem_responses(404))
async def get_webhook(
    webhook_id: uuid.UUID, _: AdminPrincipal, services: ServicesDep
) -> WebhookOut:
    return WebhookOut.of(await services.webhooks.get(webhook_id))


@router.patch("/{webhook_id}", response_model=WebhookOut, responses=problem_responses(404, 422))
async def update_webhook(
    webhook_id: uuid.UUID, body: WebhookPatch, principal: AdminPrincipal, services: ServicesDep
) -> WebhookOut:
    """Change the URL, event types, description or enabled flag (audited)."""
    return WebhookOut.of(await services.webhooks.update(webhook_id, body.spec(), principal.context))


@router.delete(
    "/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404)
)
async def delete_webhook(
    webhook_id: uuid.UUID, principal: AdminPrincipal, services: ServicesDep
) -> None:
    """Delete the subscription and its delivery log; pending deliveries go dead."""
    await services.webhooks.delete(webhook_id, principal.context)


@router.post(
    "/{webhook_id}/rotate-secret",
    response_model=WebhookWithSecret,
    responses=problem_responses(404),
)
async def rotate_webhook_secret(
    webhook_id: uuid.UUID, principal: AdminPrincipal, services: ServicesDep
) -> WebhookWithSecret:
    """A new secret (shown once); the previous one also signs until
    ``previous_secret_expires_at`` (``webhooks.secret_overlap_hours``)."""
    sub, secret = await services.webhooks.rotate_secret(webhook_id, principal.context)
    return WebhookWithSecret(**WebhookOut.of(sub).model_dump(), secret=secret)


@router.get(
    "/{webhook_id}/deliveries", response_model=DeliveryPage, responses=problem_responses(404)
)
async def list_deliveries(
    webhook_id: uuid.UUID,
    _: AdminPrincipal,
    services: ServicesDep,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> DeliveryPage:
    """The delivery log, newest first: status, attempts, response code, last error."""
    items, total = await services.webhooks.deliveries(
        webhook_id, status=status, limit=limit, offset=offset
    )
    return DeliveryPage(
        items=[DeliveryOut.of(d) for d in items], total=total, limit=limit, offset=offset
    )
