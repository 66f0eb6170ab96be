"""audit.archive on SQLite and PostgreSQL: expired audit events are written to every backup
destination (compressed, sealed with the backup key) before they are deleted, and a failed
archive deletes nothing."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from auth_service.audit.models import AuditEvent
from auth_service.backup.catalog import Catalog
from auth_service.backup.scheduled import AuditArchive
from auth_service.config.settings import Settings
from auth_service.db.engine import Database, create_engine
from auth_service.housekeeping.purge import ARCHIVE_ROWS, Housekeeping

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
OLD = ARCHIVE_ROWS + 2_500  # two archive objects
BACKUP_KEY = "q0wbm4bIzhaPbhc7CqgF4WU2dqmeO0qmPkVQt0yCzUY"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(create_engine(Settings(database={"url": database_url})))  # type: ignore[arg-type]
    try:
        yield database
    finally:
        await database.dispose()


def _settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database={"url": database_url},  # type: ignore[arg-type]
        data_dir=tmp_path,
        audit={"retention_days": 365, "archive": True},  # type: ignore[arg-type]
        housekeeping={"batch_size": 1000, "batch_pause_seconds": 0},  # type: ignore[arg-type]
        backup={  # type: ignore[arg-type]
            "key": BACKUP_KEY,
            "destinations": [
                {"url": f"file://{tmp_path / 'primary'}"},
                {"url": f"file://{tmp_path / 'copy'}"},
            ],
        },
    )


async def _seed(db: Database) -> set[str]:
    def event(at: datetime) -> dict[str, Any]:
        return {
            "id": uuid.uuid4(),
            "type": "login.succeeded",
            "outcome": "success",
            "occurred_at": at,
            "ip": "198.51.100.7",
            "details": {"secret_looking": "no"},
        }

    old = [event(NOW - timedelta(days=400, seconds=i)) for i in range(OLD)]
    recent = [event(NOW - timedelta(days=10)) for _ in range(100)]
    rows = old + recent
    for start in range(0, len(rows), 2000):
        async with db.transaction() as s:
            await s.execute(insert(AuditEvent), rows[start : start + 2000])
    return {str(e["id"]) for e in old}


async def _count(db: Database) -> int:
    async with db.single() as conn:
        return int((await conn.execute(select(func.count()).select_from(AuditEvent))).scalar_one())


async def test_expired_events_are_archived_then_deleted(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    old_ids = await _seed(db)
    settings = _settings(database_url, tmp_path)
    housekeeping = Housekeeping(db, settings, clock=lambda: NOW)
    archive = AuditArchive(Catalog(settings.backup, settings.data_dir))
    housekeeping.archive = archive

    report = await housekeeping.run()
    assert {t.table: t.rows for t in report.tables}["audit_events"] == OLD
    assert await _count(db) == 100

    names = await archive.names()
    assert len(names) == 2
    archived = []
    for name in names:
        lines = (await archive.read(name)).splitlines()
        archived += [json.loads(line) for line in lines]
        for dest in ("primary", "copy"):
            stored = (tmp_path / dest / "audit" / name).read_bytes()
            assert b"login.succeeded" not in stored  # sealed, not plain
            assert (tmp_path / dest / "audit" / f"{name}.json").is_file()
    assert {e["id"] for e in archived} == old_ids
    assert len(archived) == OLD
    assert archived[0]["ip"] == "198.51.100.7"


async def test_a_failed_archive_deletes_nothing(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    await _seed(db)
    housekeeping = Housekeeping(db, _settings(database_url, tmp_path), clock=lambda: NOW)
    with pytest.raises(RuntimeError, match="cannot write archives"):
        await housekeeping.run()  # audit.archive on, no archive attached
    assert await _count(db) == OLD + 100

    async def broken(name: str, data: bytes) -> None:
        raise OSError("the destination is full")

    housekeeping.archive = broken
    with pytest.raises(OSError, match="full"):
        await housekeeping.run()
    assert await _count(db) == OLD + 100
