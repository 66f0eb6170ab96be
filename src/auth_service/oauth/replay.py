"""One-time JWTs: a client assertion (RFC 7523 section 3, item 7) or a DPoP proof (RFC 9449
section 11.1) is accepted once. Every ``jti`` seen is a row until the JWT would have expired
anyway, so every worker and every replica refuses a second use: the insert of a known
digest fails on the primary key, atomically, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from sqlalchemy import delete, insert, text
from sqlalchemy.exc import IntegrityError

from auth_service.db.base import utcnow
from auth_service.db.engine import Backend, Database
from auth_service.oauth.models import UsedJti

# Expired rows are deleted every this many inserts of a process (and at least once).
PURGE_EVERY = 200


def _digest(purpose: str, issuer: str, jti: str) -> bytes:
    return hashlib.sha256("\0".join((purpose, issuer, jti)).encode()).digest()


class SeenOnce:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._inserts = 0

    async def first_use(
        self, purpose: str, issuer: str, jti: str, *, until: datetime, tenant_id: uuid.UUID
    ) -> bool:
        """Record ``jti`` of ``issuer`` for ``purpose``; False when it was seen already."""
        if self._inserts % PURGE_EVERY == 0:
            async with self._db.single() as conn:
                await conn.execute(delete(UsedJti).where(UsedJti.expires_at < utcnow()))
        self._inserts += 1
        row = insert(UsedJti).values(
            digest=_digest(purpose, issuer, jti), expires_at=until, tenant_id=tenant_id
        )
        try:
            if self._db.backend is Backend.postgresql:
                async with self._db.transaction() as session:
                    # The uniqueness check is the insert itself, done before COMMIT returns
                    # either way; only the WAL flush is not awaited (a crash in the next
                    # fraction of a second could forget a jti, for its short lifetime).
                    # A flushed commit per client-authenticated request was most of the
                    # added latency (docs/adr/0730).
                    await session.execute(text("SET LOCAL synchronous_commit TO OFF"))
                    await session.execute(row)
            else:
                async with self._db.single() as conn:
                    await conn.execute(row)
        except IntegrityError:
            return False
        return True
