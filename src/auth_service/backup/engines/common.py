"""What every engine shares: the manifest that completes a backup, and writing a backup's
one object to a file."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auth_service import __version__
from auth_service.backup.catalog import Catalog, Progress, _noop
from auth_service.backup.errors import BackupError
from auth_service.backup.manifest import Manifest
from auth_service.config.settings import Settings
from auth_service.db.engine import Backend, backend_of

# Rows counted into a manifest, so that a restore test can compare.
COUNTED_TABLES = ("users", "sessions", "refresh_tokens", "signing_keys")


def engine_of(settings: Settings) -> Backend:
    """The engine of the configured database, or BackupError when it cannot be backed up."""
    url = settings.database_url
    try:
        return backend_of(url)
    except ValueError:
        raise BackupError(f"cannot back up database URL scheme {url.split(':', 1)[0]!r}") from None


async def finish_backup(catalog: Catalog, **fields: Any) -> Manifest:
    """Record a completed backup: the manifest goes last, so a failed run is never listed."""
    manifest = Manifest(
        service_version=__version__,
        stop_time=datetime.now(UTC),
        key_id=catalog.keyring.current_id,
        **fields,
    )
    await catalog.write_manifest(manifest)
    return manifest


async def restore_file(
    catalog: Catalog,
    manifest: Manifest,
    target: Path,
    progress: Progress = _noop,
    check: Callable[[Path], None] | None = None,
) -> None:
    """Write a backup's object to a file atomically: a failed restore leaves no half file."""
    if await asyncio.to_thread(target.exists):
        raise BackupError(f"{target} exists: restore into a new path, then swap it in")
    await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".restoring")
    try:
        with tmp.open("wb") as fh:
            async for piece in catalog.open_object(manifest.objects[0], progress=progress):
                await asyncio.to_thread(fh.write, piece)
        if check is not None:
            await asyncio.to_thread(check, tmp)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
