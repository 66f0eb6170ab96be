"""Flows that must outlive one request: create, load, update, finish.

A flow is bound to the party that started it: ``binding`` is a secret that party holds (the
browser's anti-forgery cookie or its session cookie for the hosted pages; for the JSON API,
the flow id is itself returned only to the client that made the request). Only its SHA-256
is stored; loading a flow with another binding fails exactly like an unknown flow, so a
leaked flow id (a URL in a log, a referrer) cannot be continued elsewhere.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import insert, select, update

from auth_service.db.base import utcnow
from auth_service.db.engine import Database
from auth_service.flows.errors import FlowExpired
from auth_service.flows.models import FlowRow


class FlowKind(StrEnum):
    sign_in = "sign_in"  # credentials, then any further step, then where it came from
    consent = "consent"  # an OAuth2 authorization waiting for the user's decision
    # A pending OAuth2 authorization request (oauth.authorization): kept server-side while
    # the browser signs in and consents, never only in the URL.
    authorization = "authorization"
    # A sign-in at an upstream identity provider (federation): state, nonce, PKCE verifier.
    federation = "federation"
    # A pushed authorization request (RFC 9126), bound to its client, used once by its
    # request_uri.
    pushed_authorization = "pushed_authorization"
    # A device authorization (RFC 8628) whose user code this browser entered on /device,
    # waiting while it signs in and the user answers.
    device_authorization = "device_authorization"


@dataclass
class Flow:
    id: uuid.UUID
    kind: FlowKind
    tenant_id: uuid.UUID
    expires_at: datetime
    state: dict[str, Any] = field(default_factory=dict)
    user_id: uuid.UUID | None = None


def _digest(binding: str) -> bytes:
    return hashlib.sha256(binding.encode()).digest()


class FlowStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        kind: FlowKind,
        *,
        binding: str,
        tenant_id: uuid.UUID,
        ttl_seconds: int,
        state: dict[str, Any] | None = None,
        user_id: uuid.UUID | None = None,
    ) -> Flow:
        """Persist a new flow bound to ``binding``."""
        now = utcnow()
        flow = Flow(
            uuid.uuid4(),
            kind,
            tenant_id,
            now + timedelta(seconds=ttl_seconds),
            dict(state or {}),
            user_id,
        )
        async with self._db.single() as conn:
            await conn.execute(
                insert(FlowRow).values(
                    id=flow.id,
                    tenant_id=tenant_id,
                    kind=kind.value,
                    binding_hash=_digest(binding),
                    state=flow.state,
                    user_id=user_id,
                    created_at=now,
                    expires_at=flow.expires_at,
                )
            )
        return flow

    async def load(self, flow_id: uuid.UUID, kind: FlowKind, *, binding: str) -> Flow:
        """The live flow of this kind with this binding. Raises FlowExpired otherwise."""
        async with self._db.single() as conn:
            row = (
                await conn.execute(
                    select(FlowRow).where(
                        FlowRow.id == flow_id,
                        FlowRow.kind == kind.value,
                        FlowRow.completed_at.is_(None),
                        FlowRow.expires_at > utcnow(),
                    )
                )
            ).first()
        if row is None:
            raise FlowExpired
        found = row  # a Core row: the flow's columns by name
        if not hmac.compare_digest(found.binding_hash, _digest(binding)):
            raise FlowExpired
        return Flow(
            found.id,
            kind,
            found.tenant_id,
            found.expires_at,
            dict(found.state),
            found.user_id,
        )

    async def save(self, flow: Flow) -> None:
        """Store the flow's state and user (it stays live)."""
        async with self._db.single() as conn:
            await conn.execute(
                update(FlowRow)
                .where(FlowRow.id == flow.id, FlowRow.completed_at.is_(None))
                .values(state=flow.state, user_id=flow.user_id)
            )

    async def finish(self, flow: Flow) -> None:
        """Mark the flow completed; exactly one of two concurrent finishes succeeds, the
        other raises FlowExpired (a flow's outcome is used once)."""
        async with self._db.single() as conn:
            result = await conn.execute(
                update(FlowRow)
                .where(
                    FlowRow.id == flow.id,
                    FlowRow.completed_at.is_(None),
                    FlowRow.expires_at > utcnow(),
                )
                .values(completed_at=utcnow(), state=flow.state)
            )
        if result.rowcount != 1:
            raise FlowExpired
