"""Tens of thousands of rows for housekeeping to purge, written with bulk inserts: for every
table, rows past their retention (``purged``) beside rows that must stay (``kept``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select

from auth_service.accounts.models import OneTimeToken, User
from auth_service.audit.models import AuditEvent
from auth_service.db.engine import Database
from auth_service.flows.models import FlowRow
from auth_service.jobs.models import JobRow
from auth_service.oauth.models import (
    AuthorizationCode,
    DeviceCode,
    OAuthClient,
    RevokedAccessToken,
)
from auth_service.sessions.models import RefreshToken, Session

TABLES = {
    "refresh_tokens": RefreshToken,
    "sessions": Session,
    "one_time_tokens": OneTimeToken,
    "oauth_authorization_codes": AuthorizationCode,
    "oauth_device_codes": DeviceCode,
    "oauth_revoked_access_tokens": RevokedAccessToken,
    "flows": FlowRow,
    "jobs": JobRow,
    "audit_events": AuditEvent,
}
CHUNK = 2000
TOKENS_PER_SESSION = 3


@dataclass
class Seeded:
    """What was written: rows per table that a run must delete, and that it must keep."""

    purged: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    user_id: uuid.UUID = field(default_factory=uuid.uuid4)
    live_session_ids: list[uuid.UUID] = field(default_factory=list)

    @property
    def total_purged(self) -> int:
        return sum(self.purged.values())


class _Digests:
    """Distinct 32-byte values for the unique hash columns."""

    def __init__(self) -> None:
        self._n = 0

    def __call__(self) -> bytes:
        self._n += 1
        return self._n.to_bytes(32, "big")


async def _bulk(db: Database, model: Any, rows: Iterable[dict[str, Any]]) -> None:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == CHUNK:
            async with db.transaction() as s:
                await s.execute(insert(model), batch)
            batch = []
    if batch:
        async with db.transaction() as s:
            await s.execute(insert(model), batch)


async def seed(db: Database, now: datetime, scale: float = 1.0) -> Seeded:
    """Rows for the default settings (session retention 7 days, token retention 24 h, idle
    lifetime 7 days, jobs kept 168 h / dead 30 days, audit 365 days). ``scale`` multiplies
    every count; at 1 about 80,000 rows."""
    seeded = Seeded()
    digest = _Digests()
    day = timedelta(days=1)
    async with db.transaction() as s:
        await s.execute(
            insert(User).values(id=seeded.user_id, email=f"hk-{seeded.user_id.hex}@example.com")
        )
        client_pk = uuid.uuid4()
        await s.execute(
            insert(OAuthClient).values(
                id=client_pk,
                client_id=f"hk-{client_pk.hex[:12]}",
                name="housekeeping test",
                client_type="public",
                metadata_={},
            )
        )

    # Sessions: ended long ago (revoked, expired, idle) go; recently ended and live stay.
    def session(**values: Any) -> dict[str, Any]:
        base = {
            "id": uuid.uuid4(),
            "user_id": seeded.user_id,
            "created_at": now - 60 * day,
            "last_used_at": now - day,
            "expires_at": now + 20 * day,
        }
        return {**base, **values}

    def many(n: int, **values: Any) -> list[dict[str, Any]]:
        return [session(**values) for _ in range(int(n * scale))]

    ended = (
        many(3000, revoked_at=now - 30 * day, revoked_reason="logout")
        + many(3000, expires_at=now - 30 * day)
        + many(1000, last_used_at=now - 30 * day)
    )
    recent = many(500, revoked_at=now - day, revoked_reason="logout")
    live = many(1000)
    seeded.live_session_ids = [row["id"] for row in live]
    await _bulk(db, Session, [*ended, *recent, *live])
    seeded.purged["sessions"] = len(ended)
    seeded.kept["sessions"] = len(recent) + len(live)

    def chain(session_id: uuid.UUID) -> list[dict[str, Any]]:
        # Two spent links and the current one: the spent ones are what reuse detection reads.
        return [
            {
                "session_id": session_id,
                "token_hash": digest(),
                "created_at": now - (3 - i) * day,
                "used_at": now - (2 - i) * day if i < TOKENS_PER_SESSION - 1 else None,
            }
            for i in range(TOKENS_PER_SESSION)
        ]

    await _bulk(db, RefreshToken, (t for row in ended for t in chain(row["id"])))
    await _bulk(db, RefreshToken, (t for row in [*recent, *live] for t in chain(row["id"])))
    seeded.purged["refresh_tokens"] = len(ended) * TOKENS_PER_SESSION
    seeded.kept["refresh_tokens"] = (len(recent) + len(live)) * TOKENS_PER_SESSION

    def onetime(expires: datetime, used: datetime | None = None) -> dict[str, Any]:
        return {
            "user_id": seeded.user_id,
            "purpose": "password_reset",
            "token_hash": digest(),
            "expires_at": expires,
            "used_at": used,
        }

    await _bulk(
        db,
        OneTimeToken,
        [
            *(onetime(now - 3 * day) for _ in range(int(8000 * scale))),
            *(onetime(now + day, used=now - 2 * day) for _ in range(int(1000 * scale))),
            *(onetime(now + day) for _ in range(int(500 * scale))),
            *(onetime(now + day, used=now - timedelta(hours=1)) for _ in range(int(200 * scale))),
        ],
    )
    seeded.purged["one_time_tokens"] = int(9000 * scale)
    seeded.kept["one_time_tokens"] = int(700 * scale)

    def code(expires: datetime) -> dict[str, Any]:
        return {
            "code_hash": digest(),
            "client_pk": client_pk,
            "user_id": seeded.user_id,
            "request": {},
            "expires_at": expires,
        }

    await _bulk(
        db,
        AuthorizationCode,
        [
            *(code(now - 2 * day) for _ in range(int(5000 * scale))),
            # Expired an hour ago: inside the retention, a replay would still be recognised.
            *(code(now - timedelta(hours=1)) for _ in range(int(100 * scale))),
        ],
    )
    seeded.purged["oauth_authorization_codes"] = int(5000 * scale)
    seeded.kept["oauth_authorization_codes"] = int(100 * scale)

    def device_code(expires: datetime) -> dict[str, Any]:
        return {
            "device_code_hash": digest(),
            "user_code_hash": digest(),
            "client_pk": client_pk,
            "request": {},
            "status": "pending",
            "interval": 5,
            "expires_at": expires,
        }

    await _bulk(
        db,
        DeviceCode,
        [
            *(device_code(now - 2 * day) for _ in range(int(1000 * scale))),
            *(device_code(now - timedelta(hours=1)) for _ in range(int(100 * scale))),
        ],
    )
    seeded.purged["oauth_device_codes"] = int(1000 * scale)
    seeded.kept["oauth_device_codes"] = int(100 * scale)

    def revoked(expires: datetime) -> dict[str, Any]:
        return {"jti": uuid.uuid4().hex, "client_id": "hk", "expires_at": expires}

    await _bulk(
        db,
        RevokedAccessToken,
        [
            *(revoked(now - timedelta(hours=1)) for _ in range(int(3000 * scale))),
            *(revoked(now + timedelta(minutes=10)) for _ in range(int(100 * scale))),
        ],
    )
    seeded.purged["oauth_revoked_access_tokens"] = int(3000 * scale)
    seeded.kept["oauth_revoked_access_tokens"] = int(100 * scale)

    def flow(expires: datetime) -> dict[str, Any]:
        return {"kind": "signin", "binding_hash": digest(), "state": {}, "expires_at": expires}

    await _bulk(
        db,
        FlowRow,
        [
            *(flow(now - 2 * day) for _ in range(int(5000 * scale))),
            *(flow(now + timedelta(minutes=10)) for _ in range(int(100 * scale))),
        ],
    )
    seeded.purged["flows"] = int(5000 * scale)
    seeded.kept["flows"] = int(100 * scale)

    def job(state: str, finished: datetime | None) -> dict[str, Any]:
        job_id = uuid.uuid4()
        return {
            "id": job_id,
            "kind": "test.seeded",
            "key": job_id.hex,
            "state": state,
            "payload": {},
            "max_attempts": 3,
            "run_at": now - 40 * day,
            "created_at": now - 40 * day,
            "updated_at": now - 40 * day,
            "finished_at": finished,
        }

    await _bulk(
        db,
        JobRow,
        [
            *(job("done", now - 30 * day) for _ in range(int(3000 * scale))),
            *(job("dead", now - 40 * day) for _ in range(int(500 * scale))),
            *(job("queued", None) for _ in range(int(100 * scale))),
            *(job("dead", now - day) for _ in range(int(100 * scale))),
        ],
    )
    seeded.purged["jobs"] = int(3500 * scale)
    seeded.kept["jobs"] = int(200 * scale)

    def event(at: datetime) -> dict[str, Any]:
        return {
            "type": "login.succeeded",
            "outcome": "success",
            "subject_user_id": seeded.user_id,
            "occurred_at": at,
            "details": {},
        }

    await _bulk(
        db,
        AuditEvent,
        [
            *(event(now - 400 * day) for _ in range(int(20000 * scale))),
            *(event(now - 10 * day) for _ in range(int(1000 * scale))),
        ],
    )
    seeded.purged["audit_events"] = int(20000 * scale)
    seeded.kept["audit_events"] = int(1000 * scale)
    return seeded


async def counts(db: Database) -> dict[str, int]:
    """Rows in every table housekeeping purges."""
    async with db.single() as conn:
        return {
            table: int((await conn.execute(select(func.count()).select_from(model))).scalar_one())
            for table, model in TABLES.items()
        }


async def _measure(url: str) -> str:
    from auth_service.config.settings import Settings
    from auth_service.db.engine import create_engine
    from auth_service.db.migrate import upgrade_to_head
    from auth_service.housekeeping.purge import Housekeeping

    now = datetime(2030, 6, 1, 12, tzinfo=UTC)
    settings = Settings(
        database={"url": url},  # type: ignore[arg-type]
        housekeeping={"batch_size": 500, "batch_pause_seconds": 0},  # type: ignore[arg-type]
    )
    db = Database(create_engine(settings))
    try:
        await upgrade_to_head(db.engine)
        seeded = await seed(db, now)
        report = await Housekeeping(db, settings, clock=lambda: now).run()
    finally:
        await db.dispose()
    tables = ", ".join(f"{t.table} {t.rows} in {t.seconds:.2f}s" for t in report.tables)
    seconds = sum(t.seconds for t in report.tables)
    written = seeded.total_purged + sum(seeded.kept.values())
    return f"{written} rows, {report.total} purged in {seconds:.2f}s: {tables}"


def main() -> None:
    """``python -m tests.support.housekeeping``: one run over freshly seeded databases (a
    new PostgreSQL database on the test server, and a SQLite file), with its timings."""
    import asyncio
    import tempfile
    from pathlib import Path

    from tests.support.services import fresh_postgres_database

    with fresh_postgres_database("auth_measure_") as url:
        print("postgresql:", asyncio.run(_measure(url)))
    with tempfile.TemporaryDirectory() as tmp:
        print("sqlite:", asyncio.run(_measure(f"sqlite+aiosqlite:///{Path(tmp) / 'auth.db'}")))


if __name__ == "__main__":
    main()
