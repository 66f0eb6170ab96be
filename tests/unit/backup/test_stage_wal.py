"""Staging WAL for recovery (`backup restore --stage-wal`) from a local destination: a segment
whose upload a disaster cut off (object there, checksum marker not) is not archived."""

from __future__ import annotations

import asyncio
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from auth_service.backup.catalog import WAL, Catalog
from auth_service.backup.engines.postgres import _stage_wal
from auth_service.backup.manifest import BackupKind, Manifest
from auth_service.config.backup import BackupSettings

SEGMENTS = ["000000010000000000000002", "000000010000000000000003", "000000010000000000000004"]


def test_a_segment_without_its_checksum_is_not_staged(tmp_path: Path) -> None:
    store = tmp_path / "store"
    catalog = Catalog(
        BackupSettings.model_validate(
            {"key": secrets.token_urlsafe(32), "destinations": [{"url": f"file://{store}"}]}
        ),
        tmp_path,
    )
    wal = tmp_path / "pg_wal"
    wal.mkdir()
    contents = {}
    for name in ["000000010000000000000001", *SEGMENTS]:
        contents[name] = os.urandom(4096)
        (wal / name).write_bytes(contents[name])
        assert asyncio.run(catalog.wal_push(wal / name))
    # The archiver died between the object and its checksum: the last segment is half there.
    (store / WAL / f"{SEGMENTS[-1]}.sha256").unlink()
    manifest = Manifest(
        id="20261205T000000Z-full-test",
        kind=BackupKind.full,
        engine="postgresql",
        service_version="test",
        start_time=datetime.now(UTC),
        start_wal=SEGMENTS[0],
        key_id="k",
    )
    stage = tmp_path / "stage"
    stage.mkdir()

    asyncio.run(_stage_wal(catalog, manifest, stage))

    # From the backup's first segment on, up to the last complete upload.
    assert sorted(p.name for p in stage.iterdir()) == SEGMENTS[:-1]
    assert all((stage / n).read_bytes() == contents[n] for n in SEGMENTS[:-1])
