"""The DPoP key of a public client's grant (RFC 9449 section 5): recorded when the grant's
first tokens are issued with a proof, required of every refresh after."""

from __future__ import annotations

import uuid

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from auth_service.db.engine import Database
from auth_service.oauth.models import DPoPBinding


class DPoPBindings:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def bind(self, grant_id: uuid.UUID, jkt: str, tenant_id: uuid.UUID) -> None:
        """Bind the grant to ``jkt`` (the first binding stays)."""
        try:
            async with self._db.single() as conn:
                await conn.execute(
                    insert(DPoPBinding).values(grant_id=grant_id, jkt=jkt, tenant_id=tenant_id)
                )
        except IntegrityError:
            pass  # bound already: refreshes are checked against that key

    async def key_of(self, grant_id: uuid.UUID) -> str | None:
        async with self._db.single() as conn:
            found: str | None = await conn.scalar(
                select(DPoPBinding.jkt).where(DPoPBinding.grant_id == grant_id)
            )
        return found
