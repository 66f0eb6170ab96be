"""Consent: the scopes a user allowed a client, remembered per user and client.

A request whose scopes the user already allowed this client goes on without asking again;
first-party clients never ask (unless the client sends ``prompt=consent``). Withdrawing
consent ("Connected apps" on /account) also ends every grant the client holds for the user.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update

from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.audit.service import AuditService
from auth_service.db.base import utcnow
from auth_service.db.engine import Database
from auth_service.oauth.clients import Client, ClientService
from auth_service.oauth.models import Consent
from auth_service.sessions.grants import GrantSessions


@dataclass(frozen=True)
class ConnectedApp:
    """A client the user allowed, for the account page."""

    client_id: str
    name: str
    scopes: tuple[str, ...]
    since: datetime


class ConsentStore:
    def __init__(
        self, db: Database, clients: ClientService, grants: GrantSessions, audit: AuditService
    ) -> None:
        self._db = db
        self._clients = clients
        self._grants = grants
        self._audit = audit

    async def allowed(self, user_id: uuid.UUID, client: Client) -> frozenset[str]:
        async with self._db.single() as conn:
            scopes = await conn.scalar(
                select(Consent.scopes).where(
                    Consent.user_id == user_id, Consent.client_pk == client.pk
                )
            )
        return frozenset(scopes or ())

    async def covers(self, user_id: uuid.UUID, client: Client, scopes: Iterable[str]) -> bool:
        """Whether the user already allowed the client every scope of ``scopes``."""
        return set(scopes) <= await self.allowed(user_id, client)

    async def grant(
        self, user_id: uuid.UUID, client: Client, scopes: Iterable[str], ctx: RequestContext
    ) -> None:
        """Remember that the user allowed ``scopes`` (added to what they allowed before)."""
        wanted = tuple(scopes)
        now = utcnow()
        async with self._db.transaction() as s:
            current = await s.scalar(
                select(Consent.scopes).where(
                    Consent.user_id == user_id, Consent.client_pk == client.pk
                )
            )
            merged = list(dict.fromkeys((*(current or ()), *wanted)))
            if current is None:
                await s.execute(
                    insert(Consent).values(
                        id=uuid.uuid4(),
                        tenant_id=client.tenant_id,
                        user_id=user_id,
                        client_pk=client.pk,
                        scopes=merged,
                        created_at=now,
                        updated_at=now,
                    )
                )
            else:
                await s.execute(
                    update(Consent)
                    .where(Consent.user_id == user_id, Consent.client_pk == client.pk)
                    .values(scopes=merged, updated_at=now)
                )
        await self._audit.record(
            events.OAUTH_CONSENT_GRANTED,
            ctx,
            subject=user_id,
            details={"client_id": client.client_id, "scope": " ".join(wanted)},
        )

    async def connected_apps(self, user_id: uuid.UUID) -> list[ConnectedApp]:
        """The clients the user allowed, most recent first."""
        async with self._db.single() as conn:
            rows = (
                await conn.execute(
                    select(Consent.client_pk, Consent.scopes, Consent.created_at)
                    .where(Consent.user_id == user_id)
                    .order_by(Consent.updated_at.desc())
                )
            ).all()
        clients = await self._clients.by_pk([r.client_pk for r in rows])
        return [
            ConnectedApp(c.client_id, c.name, tuple(r.scopes), r.created_at)
            for r in rows
            if (c := clients.get(r.client_pk)) is not None
        ]

    async def revoke(self, user_id: uuid.UUID, client_id: str, ctx: RequestContext) -> bool:
        """Withdraw the user's consent to the client and end its grants. False when the user
        had not allowed that client."""
        client = await self._clients.find(client_id)
        if client is None:
            return False
        async with self._db.single() as conn:
            result = await conn.execute(
                delete(Consent).where(Consent.user_id == user_id, Consent.client_pk == client.pk)
            )
        ended = await self._grants.revoke_client_grants(user_id, client_id, reason="consent")
        if result.rowcount == 0 and ended == 0:
            return False
        await self._audit.record(
            events.OAUTH_CONSENT_REVOKED,
            ctx,
            subject=user_id,
            details={"client_id": client_id, "grants_ended": ended},
        )
        return True
