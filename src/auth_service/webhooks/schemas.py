"""API shapes of the webhooks (admin API ``/v1/admin/webhooks``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from auth_service.audit import events
from auth_service.security.text import NameText, PlainText
from auth_service.webhooks.service import Delivery, Subscription, WebhookSpec

UrlText = Annotated[PlainText, StringConstraints(min_length=1, max_length=2048)]
# The audit catalogue's names, listed in the API description; the service checks them.
EventType = Annotated[
    PlainText,
    StringConstraints(min_length=1, max_length=64),
    WithJsonSchema({"type": "string", "enum": sorted(events.catalogue())}),
]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: UrlText = Field(description="https URL the events are POSTed to")
    event_types: list[EventType] = Field(
        min_length=1, max_length=100, description="audit event types, e.g. user.registered"
    )
    description: NameText = ""
    enabled: bool = True

    def spec(self) -> WebhookSpec:
        return WebhookSpec(self.url, self.event_types, self.description, self.enabled)


class WebhookPatch(BaseModel):
    """Fields to change; the secret changes only by rotate-secret."""

    model_config = ConfigDict(extra="forbid")

    url: UrlText | None = None
    event_types: list[EventType] | None = Field(None, min_length=1, max_length=100)
    description: NameText | None = None
    enabled: bool | None = None

    def spec(self) -> WebhookSpec:
        return WebhookSpec(self.url, self.event_types, self.description, self.enabled)


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    event_types: list[str]
    description: str
    enabled: bool
    created_at: datetime
    updated_at: datetime
    previous_secret_expires_at: datetime | None = Field(
        description="until when the previous secret also signs (after a rotation)"
    )

    @classmethod
    def of(cls, sub: Subscription) -> WebhookOut:
        return cls.model_validate(sub, from_attributes=True)


class WebhookWithSecret(WebhookOut):
    secret: str = Field(description="the signing secret (whsec_...): shown only in this answer")


class DeliveryOut(BaseModel):
    id: uuid.UUID
    webhook_id: str = Field(description="the webhook-id header: the same at every attempt")
    event_id: uuid.UUID
    event_type: str
    job_id: uuid.UUID
    status: str = Field(description="delivered, retrying, dead or skipped (disabled)")
    attempts: int
    response_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:
        return cls.model_validate(d, from_attributes=True)


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    total: int
    limit: int
    offset: int
