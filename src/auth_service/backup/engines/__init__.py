"""Taking and restoring backups: which engine does the work for a kind of backup and a
database. Callers (the CLI, the scheduler, restore tests) ask for a kind or hand over a
manifest; they never choose an engine.

One module per engine: ``sqlite`` (online snapshot), ``postgres`` (pg_basebackup with
point-in-time recovery, pg_dump exports), ``config_files`` (config files and sealed signing
keys); ``common`` holds what they share.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path

from auth_service.backup.catalog import Catalog, Progress, _noop
from auth_service.backup.engines.common import engine_of, restore_file
from auth_service.backup.engines.config_files import backup_config
from auth_service.backup.engines.postgres import backup_logical, backup_postgres, restore_postgres
from auth_service.backup.engines.sqlite import backup_sqlite, restore_sqlite
from auth_service.backup.errors import BackupError
from auth_service.backup.manifest import BackupKind, Manifest
from auth_service.config.settings import Settings
from auth_service.db.engine import Backend


class Restored(StrEnum):
    """What a restore left at its target, which says what the operator does next."""

    database_file = "database_file"  # a SQLite database, checked: point database.url at it
    data_directory = "data_directory"  # a PostgreSQL data directory: start a server on it
    dump = "dump"  # a pg_dump archive: load it with pg_restore
    config = "config"  # a tar of the config files and the sealed signing keys


async def run_backup(
    settings: Settings, catalog: Catalog, kind: BackupKind, progress: Progress = _noop
) -> Manifest:
    """Take a backup of ``kind`` from the configured database and files, into every
    destination; the manifest is written last, so a failed run is never listed."""
    if kind is BackupKind.config:
        return await backup_config(settings, catalog, progress)
    if kind is BackupKind.logical:
        return await backup_logical(settings, catalog, progress)
    if engine_of(settings) is Backend.postgresql:
        return await backup_postgres(settings, catalog, progress)
    return await backup_sqlite(settings, catalog, progress)


async def run_restore(
    catalog: Catalog,
    manifest: Manifest,
    target: Path,
    *,
    to_time: datetime | None = None,
    to_end: bool = False,
    restore_command: str | None = None,
    progress: Progress = _noop,
) -> Restored:
    """Restore the backup ``manifest`` describes into ``target``, a new path (never over
    existing data). ``to_time`` asks a PostgreSQL base backup for point-in-time recovery,
    ``to_end`` for recovery to the end of the WAL archive, with WAL from ``restore_command``
    (else staged next to the data)."""
    if manifest.engine == "sqlite":
        if to_time is not None or to_end:
            raise BackupError("point-in-time recovery needs PostgreSQL (SQLite has no WAL archive)")
        await restore_sqlite(catalog, manifest, target, progress)
        return Restored.database_file
    if manifest.kind in (BackupKind.logical, BackupKind.config):
        await restore_file(catalog, manifest, target, progress)
        return Restored.dump if manifest.kind is BackupKind.logical else Restored.config
    if manifest.engine != "postgresql":
        raise BackupError(f"{manifest.id} is a {manifest.kind} backup; restore a full one")
    await restore_postgres(
        catalog,
        manifest,
        target,
        to_time=to_time,
        to_end=to_end,
        restore_command=restore_command,
        progress=progress,
    )
    return Restored.data_directory
