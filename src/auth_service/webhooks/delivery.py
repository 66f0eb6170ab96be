"""Delivering one webhook message: the handler of the ``webhook`` job kind.

Each attempt resolves and checks the target again (targets.py), signs the body (Standard
Webhooks, signing.py) with the subscription's secret (and the previous one during a
rotation's overlap), POSTs it without following redirects, reads at most
``webhooks.max_response_bytes`` of the answer, and records the outcome in the delivery log.
A 2xx answer is delivered; anything else raises, and the job queue retries with backoff
until the job is dead (a dead letter in ``jobs list --state dead`` and in the log).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import structlog
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from auth_service.audit.service import AuditService
from auth_service.config.settings import WebhookSettings
from auth_service.db.engine import Backend, Database
from auth_service.jobs.kinds import Job, JobKind, PermanentFailure
from auth_service.jobs.queue import JobQueue
from auth_service.security.aead import MasterKey
from auth_service.webhooks.errors import TargetRefused
from auth_service.webhooks.models import WebhookDelivery
from auth_service.webhooks.outbox import WEBHOOK_KIND, WebhookOutbox
from auth_service.webhooks.service import WebhookService
from auth_service.webhooks.signing import parse_webhook_id, signature_header
from auth_service.webhooks.transport import OutboundPoster

log = structlog.get_logger(__name__)

USER_AGENT = "auth-service-webhooks/1"
ERROR_CHARS = 500


class DeliveryFailed(Exception):
    """The receiver did not take the message; the job is retried."""


@dataclass(frozen=True)
class Outcome:
    status: str  # delivered, retrying, dead, skipped
    response_code: int | None = None
    error: str | None = None


def body_of(payload: dict[str, Any]) -> bytes:
    """The bytes sent and signed: the same at every attempt."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


class WebhookDeliverer:
    """The ``webhook`` job handler."""

    def __init__(self, db: Database, webhooks: WebhookService) -> None:
        self._db = db
        self._webhooks = webhooks
        self._poster = OutboundPoster(lambda: webhooks.settings)

    async def __call__(self, job: Job) -> None:
        try:
            event_id, subscription_id = parse_webhook_id(job.key)
        except ValueError:
            raise PermanentFailure("the job key is no webhook message id") from None
        target = await self._webhooks.target(subscription_id)
        if target is None:
            raise PermanentFailure("the subscription was deleted")
        if not target.enabled:
            await self._record(job, subscription_id, event_id, Outcome("skipped"))
            return
        outcome = await self._attempt(job, target.url, target.secrets)
        if outcome.status != "delivered" and job.final_attempt:
            outcome = Outcome("dead", outcome.response_code, outcome.error)
        await self._record(job, subscription_id, event_id, outcome)
        if outcome.status != "delivered":
            raise DeliveryFailed(outcome.error or "not delivered")

    async def _attempt(self, job: Job, url: str, secrets: list[str]) -> Outcome:
        body = body_of(job.payload)
        timestamp = int(self._webhooks.clock().timestamp())
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": job.key,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(secrets, job.key, timestamp, body),
        }
        try:
            code = await self._poster.post(url, headers, body)
        except TargetRefused as exc:
            return Outcome("retrying", error=f"target refused: {exc}")
        except TimeoutError:
            return Outcome("retrying", error="timed out")
        except httpx.HTTPError as exc:
            return Outcome(
                "retrying", error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            )
        if 200 <= code < 300:
            return Outcome("delivered", code)
        reason = "a redirect (not followed)" if 300 <= code < 400 else f"status {code}"
        return Outcome("retrying", code, f"the receiver answered {reason}")

    async def _record(
        self, job: Job, subscription_id: uuid.UUID, event_id: uuid.UUID, outcome: Outcome
    ) -> None:
        now = self._webhooks.clock()
        values: dict[str, Any] = {
            "id": uuid.uuid4(),
            "tenant_id": job.tenant_id,
            "subscription_id": subscription_id,
            "webhook_id": job.key,
            "event_id": event_id,
            "event_type": str(job.payload.get("type", ""))[:64],
            "job_id": job.id,
            "status": outcome.status,
            "attempts": 1,
            "response_code": outcome.response_code,
            "last_error": (outcome.error or None) and outcome.error[:ERROR_CHARS],
            "created_at": now,
            "updated_at": now,
            "delivered_at": now if outcome.status == "delivered" else None,
        }
        dialect = postgresql if self._db.backend is Backend.postgresql else sqlite
        stmt = dialect.insert(WebhookDelivery).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["webhook_id"],
            set_={
                "status": stmt.excluded.status,
                "attempts": WebhookDelivery.attempts + 1,
                "response_code": stmt.excluded.response_code,
                "last_error": stmt.excluded.last_error,
                "job_id": stmt.excluded.job_id,
                "updated_at": stmt.excluded.updated_at,
                "delivered_at": stmt.excluded.delivered_at,
            },
        )
        async with self._db.transaction() as s:
            await s.execute(stmt)
            if job.attempt == 1:
                await s.execute(self._pruned(subscription_id))
        log.info(
            "webhook_attempt",
            webhook_id=job.key,
            status=outcome.status,
            attempt=job.attempt,
            response_code=outcome.response_code,
        )

    def _pruned(self, subscription_id: uuid.UUID) -> Any:
        """The log of a subscription bounded to its newest ``webhooks.delivery_log_size``."""
        kept = (
            select(WebhookDelivery.id)
            .where(WebhookDelivery.subscription_id == subscription_id)
            .order_by(WebhookDelivery.created_at.desc())
            .limit(self._webhooks.settings.delivery_log_size)
        )
        return delete(WebhookDelivery).where(
            WebhookDelivery.subscription_id == subscription_id,
            WebhookDelivery.id.not_in(kept.scalar_subquery()),
        )


def install(
    db: Database,
    settings: WebhookSettings,
    master_key: MasterKey,
    audit: AuditService,
    jobs: JobQueue,
) -> WebhookService:
    """The webhooks of one process: the service, its job kind on ``jobs`` and its outbox on
    ``audit`` (from now on every recorded event of a subscribed type is delivered)."""
    webhooks = WebhookService(db, settings, master_key, audit)
    jobs.register(
        JobKind(
            WEBHOOK_KIND,
            WebhookDeliverer(db, webhooks),
            max_attempts=settings.max_attempts,
            # A whole attempt is bounded by webhooks.timeout_seconds; a margin for the log.
            timeout_seconds=settings.timeout_seconds + 30,
        )
    )
    audit.outbox = WebhookOutbox(jobs)
    return webhooks
