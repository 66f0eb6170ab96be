"""Webhook subscriptions: create, change, delete, rotate the secret; the delivery log.
Every change is audited. Secrets are sealed under the master key and shown only once."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update

from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.audit.service import AuditService
from auth_service.config.settings import WebhookSettings
from auth_service.db.base import DEFAULT_TENANT_ID, utcnow
from auth_service.db.engine import Database
from auth_service.security.aead import MasterKey
from auth_service.security.random import constant_time_equals
from auth_service.webhooks.errors import InvalidWebhook, TargetRefused, WebhookNotFound
from auth_service.webhooks.models import WebhookDelivery, WebhookEventType, WebhookSubscription
from auth_service.webhooks.signing import SECRET_PREFIX, new_secret
from auth_service.webhooks.targets import resolve

Clock = Callable[[], datetime]


def _checked_secret(secret: str) -> str:
    """An operator's signing secret: ``whsec_`` and the base64 of 24 to 64 random bytes, as
    the Standard Webhooks specification asks."""
    try:
        raw = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except ValueError:
        raw = b""
    if not secret.startswith(SECRET_PREFIX) or not 24 <= len(raw) <= 64:
        raise InvalidWebhook("secret", "whsec_ followed by the base64 of 24 to 64 random bytes")
    return secret


def _aad(subscription_id: uuid.UUID) -> bytes:
    # Binds a sealed secret to its subscription: copied into another row it does not open.
    return b"auth-service webhook secret\x00" + subscription_id.bytes


@dataclass(frozen=True)
class WebhookSpec:
    """What an operator gives for a subscription (None in a change: unchanged)."""

    url: str | None = None
    event_types: Sequence[str] | None = None
    description: str | None = None
    enabled: bool | None = None


@dataclass(frozen=True)
class Subscription:
    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    created_at: datetime
    updated_at: datetime
    previous_secret_expires_at: datetime | None


@dataclass(frozen=True)
class Delivery:
    id: uuid.UUID
    webhook_id: str
    event_id: uuid.UUID
    event_type: str
    job_id: uuid.UUID
    status: str
    attempts: int
    response_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True)
class DeliveryTarget:
    """What a delivery needs of its subscription: the URL and the secrets that sign now."""

    url: str
    enabled: bool
    secrets: list[str] = field(default_factory=list)


class WebhookService:
    def __init__(
        self,
        db: Database,
        settings: WebhookSettings,
        master_key: MasterKey,
        audit: AuditService,
        *,
        clock: Clock = utcnow,
        tenant_id: uuid.UUID = DEFAULT_TENANT_ID,
    ) -> None:
        self._db = db
        self.settings = settings
        self._key = master_key
        self._audit = audit
        self.clock = clock
        self.tenant_id = tenant_id

    def apply_settings(self, settings: WebhookSettings) -> None:
        self.settings = settings

    # ---- validation -------------------------------------------------------------------------

    async def _checked_url(self, url: str) -> str:
        if len(url) > 2048:
            raise InvalidWebhook("url", "longer than 2048 characters")
        try:
            await resolve(url, self.settings)
        except TargetRefused as exc:
            raise InvalidWebhook("url", str(exc)) from None
        return url

    @staticmethod
    def _checked_types(types: Sequence[str]) -> list[str]:
        chosen = sorted(set(types))
        if not chosen:
            raise InvalidWebhook("event_types", "at least one event type")
        unknown = [t for t in chosen if t not in events.catalogue()]
        if unknown:
            raise InvalidWebhook("event_types", f"not in the audit catalogue: {', '.join(unknown)}")
        return chosen

    # ---- reading ----------------------------------------------------------------------------

    async def subscriptions(self) -> list[Subscription]:
        """Every subscription, oldest first."""
        async with self._db.session() as s:
            rows = (
                await s.scalars(
                    select(WebhookSubscription)
                    .where(WebhookSubscription.tenant_id == self.tenant_id)
                    .order_by(WebhookSubscription.created_at, WebhookSubscription.id)
                )
            ).all()
            types = await self._types(s, [r.id for r in rows])
        return [self._view(r, types.get(r.id, [])) for r in rows]

    async def get(self, subscription_id: uuid.UUID) -> Subscription:
        """One subscription; WebhookNotFound when there is none."""
        async with self._db.session() as s:
            row = await self._row(s, subscription_id)
            types = await self._types(s, [row.id])
        return self._view(row, types.get(row.id, []))

    async def _row(self, s: Any, subscription_id: uuid.UUID) -> WebhookSubscription:
        row: WebhookSubscription | None = await s.get(WebhookSubscription, subscription_id)
        if row is None or row.tenant_id != self.tenant_id:
            raise WebhookNotFound
        return row

    @staticmethod
    async def _types(s: Any, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
        found: dict[uuid.UUID, list[str]] = {}
        if not ids:
            return found
        rows = await s.execute(
            select(WebhookEventType.subscription_id, WebhookEventType.event_type)
            .where(WebhookEventType.subscription_id.in_(ids))
            .order_by(WebhookEventType.event_type)
        )
        for subscription_id, event_type in rows:
            found.setdefault(subscription_id, []).append(event_type)
        return found

    @staticmethod
    def _view(row: WebhookSubscription, types: list[str]) -> Subscription:
        return Subscription(
            row.id,
            row.url,
            types,
            row.description,
            row.enabled,
            row.created_at,
            row.updated_at,
            row.previous_expires_at,
        )

    async def target(self, subscription_id: uuid.UUID) -> DeliveryTarget | None:
        """The URL and the signing secrets of a delivery (the previous secret too during a
        rotation's overlap); None when the subscription was deleted."""
        async with self._db.session() as s:
            row: WebhookSubscription | None = await s.get(WebhookSubscription, subscription_id)
        if row is None:
            return None
        aad = _aad(row.id)
        secrets = [self._key.open(row.secret_sealed, aad).decode()]
        if (
            row.previous_secret_sealed is not None
            and row.previous_expires_at is not None
            and row.previous_expires_at > self.clock()
        ):
            secrets.append(self._key.open(row.previous_secret_sealed, aad).decode())
        return DeliveryTarget(row.url, row.enabled, secrets)

    # ---- changing ---------------------------------------------------------------------------

    async def create(
        self, spec: WebhookSpec, ctx: RequestContext, *, secret: str | None = None
    ) -> tuple[Subscription, str]:
        """A new subscription and its signing secret (``whsec_...``, shown only now; the
        operator's ``secret`` when given, as configuration as code does)."""
        if spec.url is None or spec.event_types is None:
            raise InvalidWebhook("url" if spec.url is None else "event_types", "required")
        url = await self._checked_url(spec.url)
        types = self._checked_types(spec.event_types)
        secret = _checked_secret(secret) if secret is not None else new_secret()
        now = self.clock()
        row = WebhookSubscription(
            id=uuid.uuid4(),
            tenant_id=self.tenant_id,
            url=url,
            description=spec.description or "",
            enabled=True if spec.enabled is None else spec.enabled,
            created_at=now,
            updated_at=now,
        )
        row.secret_sealed = self._key.seal(secret.encode(), _aad(row.id))
        async with self._db.transaction() as s:
            s.add(row)
            await s.flush()
            s.add_all(self._type_rows(row.id, types))
        await self._audit.record(
            events.WEBHOOK_CREATED, ctx, details={"webhook_id": str(row.id), "url": url}
        )
        return self._view(row, types), secret

    def _type_rows(self, subscription_id: uuid.UUID, types: list[str]) -> list[WebhookEventType]:
        return [
            WebhookEventType(
                tenant_id=self.tenant_id, subscription_id=subscription_id, event_type=t
            )
            for t in types
        ]

    async def update(
        self, subscription_id: uuid.UUID, spec: WebhookSpec, ctx: RequestContext
    ) -> Subscription:
        """Change what ``spec`` sets; the secret is kept."""
        url = await self._checked_url(spec.url) if spec.url is not None else None
        types = self._checked_types(spec.event_types) if spec.event_types is not None else None
        async with self._db.transaction() as s:
            row = await self._row(s, subscription_id)
            if url is not None:
                row.url = url
            if spec.description is not None:
                row.description = spec.description
            if spec.enabled is not None:
                row.enabled = spec.enabled
            row.updated_at = self.clock()
            if types is not None:
                await s.execute(
                    delete(WebhookEventType).where(
                        WebhookEventType.subscription_id == subscription_id
                    )
                )
                s.add_all(self._type_rows(subscription_id, types))
        changed = [
            k
            for k in ("url", "event_types", "description", "enabled")
            if getattr(spec, k) is not None
        ]
        await self._audit.record(
            events.WEBHOOK_UPDATED,
            ctx,
            details={"webhook_id": str(subscription_id), "changed": changed},
        )
        return await self.get(subscription_id)

    async def delete(self, subscription_id: uuid.UUID, ctx: RequestContext) -> Subscription:
        """Delete a subscription and its delivery log; its pending deliveries fail for good
        (dead letters saying the subscription is gone)."""
        found = await self.get(subscription_id)
        async with self._db.transaction() as s:
            await s.execute(
                delete(WebhookSubscription).where(
                    WebhookSubscription.id == subscription_id,
                    WebhookSubscription.tenant_id == self.tenant_id,
                )
            )
        await self._audit.record(
            events.WEBHOOK_DELETED, ctx, details={"webhook_id": str(subscription_id)}
        )
        return found

    async def signs_with(self, subscription_id: uuid.UUID, secret: str) -> bool:
        """Whether ``secret`` is the subscription's current signing secret (compared in
        constant time)."""
        target = await self.target(subscription_id)
        return target is not None and constant_time_equals(
            target.secrets[0].encode(), secret.encode()
        )

    async def rotate_secret(
        self, subscription_id: uuid.UUID, ctx: RequestContext, *, secret: str | None = None
    ) -> tuple[Subscription, str]:
        """A new signing secret (shown only now; the operator's ``secret`` when given). The
        previous one keeps signing beside it for ``webhooks.secret_overlap_hours``, so
        receivers can switch without a gap."""
        secret = _checked_secret(secret) if secret is not None else new_secret()
        now = self.clock()
        until = now + timedelta(hours=self.settings.secret_overlap_hours)
        async with self._db.transaction() as s:
            row = await self._row(s, subscription_id)
            await s.execute(
                update(WebhookSubscription)
                .where(WebhookSubscription.id == subscription_id)
                .values(
                    previous_secret_sealed=row.secret_sealed,
                    previous_expires_at=until,
                    secret_sealed=self._key.seal(secret.encode(), _aad(subscription_id)),
                    updated_at=now,
                )
            )
        await self._audit.record(
            events.WEBHOOK_SECRET_ROTATED,
            ctx,
            details={"webhook_id": str(subscription_id), "overlap_until": until.isoformat()},
        )
        return await self.get(subscription_id), secret

    # ---- the delivery log -------------------------------------------------------------------

    async def deliveries(
        self,
        subscription_id: uuid.UUID,
        *,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Delivery], int]:
        """The deliveries of a subscription, newest first (the last
        ``webhooks.delivery_log_size`` are kept)."""
        await self.get(subscription_id)
        stmt = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
        if status is not None:
            stmt = stmt.where(WebhookDelivery.status == status)
        async with self._db.session() as s:
            total = await s.scalar(select(func.count()).select_from(stmt.subquery()))
            rows = (
                await s.scalars(
                    stmt.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
        return [
            Delivery(
                r.id,
                r.webhook_id,
                r.event_id,
                r.event_type,
                r.job_id,
                r.status,
                r.attempts,
                r.response_code,
                r.last_error,
                r.created_at,
                r.updated_at,
                r.delivered_at,
            )
            for r in rows
        ], int(total or 0)
