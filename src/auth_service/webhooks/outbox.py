"""The outbox: an audit event of a subscribed type becomes one delivery job per subscription,
inserted by the statement that stores the event (``AuditService.stores``), so a delivery
exists if and only if its event does, and no event is lost between the two."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Insert, String, cast, func, literal, select

from auth_service.audit.service import AuditEntry
from auth_service.jobs.queue import JobQueue
from auth_service.webhooks.models import WebhookEventType, WebhookSubscription
from auth_service.webhooks.signing import webhook_id

WEBHOOK_KIND = "webhook"


def event_payload(entry: AuditEntry) -> dict[str, Any]:
    """The body every subscription receives for ``entry`` (Standard Webhooks' ``type``,
    ``timestamp``, ``data``). Audit details hold no secrets (AuditService.prepare drops
    them); the network origin (address, user agent) is left out."""
    return {
        "type": entry.type,
        "timestamp": entry.occurred_at.isoformat(),
        "data": {
            "event_id": str(entry.id),
            "tenant_id": str(entry.tenant_id),
            "outcome": entry.outcome,
            "subject_user_id": str(entry.subject_user_id) if entry.subject_user_id else None,
            "actor_user_id": str(entry.actor_user_id) if entry.actor_user_id else None,
            "request_id": entry.request_id,
            "details": entry.details,
        },
    }


class WebhookOutbox:
    """``AuditOutbox`` of the webhooks: given to the AuditService when the graph is built."""

    def __init__(self, jobs: JobQueue) -> None:
        self._jobs = jobs

    def writes(self, entry: AuditEntry) -> list[Insert]:
        """One INSERT ... SELECT of the jobs of ``entry``'s enabled subscriptions (none when
        nobody subscribes to its type)."""
        sub = WebhookSubscription
        # webhook_id(event, subscription), built in SQL for each subscription the join finds;
        # a UUID as text is 32 hex digits on SQLite, dashed on PostgreSQL.
        prefix = webhook_id(entry.id, entry.id)[: -len(entry.id.hex)]
        key = literal(prefix, String) + func.replace(cast(sub.id, String), "-", "")
        keys = (
            select(key.label("key"))
            .select_from(sub)
            .join(WebhookEventType, WebhookEventType.subscription_id == sub.id)
            .where(
                sub.tenant_id == entry.tenant_id,
                sub.enabled.is_(True),
                WebhookEventType.tenant_id == entry.tenant_id,
                WebhookEventType.event_type == entry.type,
            )
        )
        return [
            self._jobs.prepare_each(
                WEBHOOK_KIND, event_payload(entry), keys, tenant_id=entry.tenant_id
            )
        ]
