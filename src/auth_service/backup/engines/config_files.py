"""Configuration backups: the config files as they are on disk, the signing keys (sealed
under the master key already) and the schema revision."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from sqlalchemy import text

from auth_service.backup.catalog import BACKUPS, Catalog, Progress
from auth_service.backup.engines.common import finish_backup
from auth_service.backup.errors import NotFound
from auth_service.backup.manifest import BackupKind, Manifest, new_backup_id
from auth_service.config.settings import Settings
from auth_service.db.engine import create_engine


async def backup_config(settings: Settings, catalog: Catalog, progress: Progress) -> Manifest:
    """Config files as they are on disk (secrets stay in their secret files, never copied),
    signing keys (already sealed under the master key) and the schema revision."""
    backup_id = new_backup_id(BackupKind.config)
    started = datetime.now(UTC)
    engine = create_engine(settings)
    try:
        async with engine.connect() as conn:
            revision = (
                await conn.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar()
            rows = (await conn.execute(text("SELECT * FROM signing_keys"))).mappings().all()
    finally:
        await engine.dispose()
    keys = [{k: (v if isinstance(v, int | None) else str(v)) for k, v in r.items()} for r in rows]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in settings.backup.config_files:
            if not path.is_file():
                raise NotFound(f"config file {path} (backup.config_files) does not exist")
            tar.add(str(path), arcname=f"config/{path.name}")
        blob = json.dumps({"schema_revision": revision, "signing_keys": keys}, indent=2).encode()
        entry = tarfile.TarInfo("signing_keys.json")
        entry.size = len(blob)
        tar.addfile(entry, io.BytesIO(blob))

    async def one() -> AsyncIterator[bytes]:
        yield buf.getvalue()

    record = await catalog.put_object(f"{BACKUPS}/{backup_id}/config.tar", one(), progress)
    return await finish_backup(
        catalog,
        id=backup_id,
        kind=BackupKind.config,
        engine="config",
        schema_revision=revision,
        start_time=started,
        objects=[record],
        row_counts={"signing_keys": len(keys)},
    )
