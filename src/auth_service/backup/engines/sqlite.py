"""SQLite: an online snapshot through SQLite's backup API, restored as a checked file."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from auth_service.backup.catalog import BACKUPS, Catalog, Progress, _noop, read_file
from auth_service.backup.engines.common import COUNTED_TABLES, finish_backup, restore_file
from auth_service.backup.errors import BackupError, NotFound
from auth_service.backup.manifest import BackupKind, Manifest, new_backup_id
from auth_service.config.settings import Settings
from auth_service.db.engine import sqlite_file


def sqlite_path(settings: Settings) -> Path:
    path = sqlite_file(settings.database_url)
    if path is None:
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return path


def _sqlite_snapshot(source: Path, dest: Path) -> tuple[dict[str, int], str | None]:
    # The backup API copies a consistent image while the service keeps writing.
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(dest)
    try:
        src.backup(dst, pages=4096)
    finally:
        src.close()
    try:
        return _sqlite_facts(dst)
    finally:
        dst.close()


def _sqlite_facts(conn: sqlite3.Connection) -> tuple[dict[str, int], str | None]:
    counts = {}
    for table in COUNTED_TABLES:
        with contextlib.suppress(sqlite3.Error):
            counts[table] = int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])  # noqa: S608
    revision = None
    with contextlib.suppress(sqlite3.Error):
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        revision = row[0] if row else None
    return counts, revision


async def backup_sqlite(settings: Settings, catalog: Catalog, progress: Progress) -> Manifest:
    source = sqlite_path(settings)
    if not await asyncio.to_thread(source.exists):
        raise NotFound(f"SQLite database {source} does not exist: nothing to back up")
    backup_id = new_backup_id(BackupKind.full)
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="auth-backup-") as tmp:
        snap = Path(tmp) / "auth.db"
        counts, revision = await asyncio.to_thread(_sqlite_snapshot, source, snap)
        record = await catalog.put_object(
            f"{BACKUPS}/{backup_id}/auth.db", read_file(snap), progress
        )
    return await finish_backup(
        catalog,
        id=backup_id,
        kind=BackupKind.full,
        engine="sqlite",
        engine_version=sqlite3.sqlite_version,
        schema_revision=revision,
        start_time=started,
        objects=[record],
        row_counts=counts,
    )


async def restore_sqlite(
    catalog: Catalog, manifest: Manifest, target: Path, progress: Progress = _noop
) -> None:
    """Write the snapshot to target and check its integrity."""
    await restore_file(catalog, manifest, target, progress, check=_sqlite_integrity)


def _sqlite_integrity(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
    if result != "ok":
        raise BackupError(f"restored SQLite file fails integrity_check: {result}")
