"""The failover lock is a conditional create: among racing observers exactly one wins, on every
storage backend observers may share (local directory, S3 over its real protocol)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from auth_service.backup.storage import open_storage
from auth_service.config.backup import BackupDestination
from auth_service.dr.auto import LOCK, FailoverRecord, read_lock, rearm
from tests.support.object_store import s3_destination


@pytest.fixture(params=["local", "s3"])
def destination(request: pytest.FixtureRequest, tmp_path: Path) -> BackupDestination:
    if request.param == "local":
        return BackupDestination(url=f"file://{tmp_path / 'store'}")
    endpoint: str = request.getfixturevalue("s3_endpoint")
    return BackupDestination.model_validate(s3_destination(endpoint, f"dr-{uuid.uuid4().hex[:12]}"))


async def test_exactly_one_racing_observer_takes_the_lock(destination: BackupDestination) -> None:
    store = open_storage(destination)
    now = datetime.now(UTC)
    records = [
        FailoverRecord(f"observer-{i}", now, "a:5432", "b:5432", "test", []) for i in range(6)
    ]
    won = await asyncio.gather(*(store.put_new(LOCK, r.to_json()) for r in records))
    assert sum(won) == 1
    held = await read_lock(store)
    assert held is not None
    assert held.observer == records[won.index(True)].observer
    assert not await store.put_new(LOCK, records[0].to_json())

    assert (await rearm(store)) == held
    assert await read_lock(store) is None
    assert await store.put_new(LOCK, records[0].to_json())
