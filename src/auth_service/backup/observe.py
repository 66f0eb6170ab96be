"""Backup metrics: set after each backup and verification, and refreshed from the catalog
(by the backup-freshness health check, health.checks)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from auth_service.backup.catalog import Catalog
from auth_service.backup.manifest import BackupKind, Manifest
from auth_service.observability import metrics


def record_success(manifest: Manifest, seconds: float) -> None:
    end = manifest.stop_time or datetime.now(UTC)
    metrics.BACKUP_LAST_SUCCESS.labels(manifest.kind).set(end.timestamp())
    metrics.BACKUP_DURATION.labels(manifest.kind).set(seconds)
    metrics.BACKUP_BYTES.labels(manifest.kind).set(manifest.stored_bytes)


def record_failure(kind: BackupKind) -> None:
    metrics.BACKUP_FAILURES.labels(kind).inc()


def record_verification() -> None:
    metrics.BACKUP_LAST_VERIFICATION.set(time.time())


async def refresh_from_catalog(catalog: Catalog) -> Manifest | None:
    """Set the gauges from what the storage holds; returns the newest full backup."""
    manifests = await catalog.manifests()
    newest: Manifest | None = None
    for manifest in manifests:
        record_success(
            manifest,
            ((manifest.stop_time or manifest.start_time) - manifest.start_time).total_seconds(),
        )
        if manifest.kind is BackupKind.full:
            newest = manifest
    verified = await catalog.last_verification()
    if verified is not None:
        metrics.BACKUP_LAST_VERIFICATION.set(verified.timestamp())
    wal_time = await catalog.newest_wal_time()
    if wal_time is not None:
        metrics.WAL_ARCHIVE_LAG.set(max(0.0, time.time() - wal_time.timestamp()))
    return newest
