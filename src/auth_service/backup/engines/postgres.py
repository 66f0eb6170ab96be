"""PostgreSQL: physical base backups (pg_basebackup) restored with point-in-time recovery,
and logical exports (pg_dump)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]

from auth_service.backup import pgtools
from auth_service.backup.catalog import BACKUPS, Catalog, Progress, _noop
from auth_service.backup.engines.common import COUNTED_TABLES, engine_of, finish_backup
from auth_service.backup.errors import BackupError, MissingObject, ToolFailed
from auth_service.backup.manifest import BackupKind, Manifest, ObjectRecord, new_backup_id
from auth_service.config.settings import Settings
from auth_service.db.engine import Backend

_START = re.compile(r"write-ahead log start point: ([0-9A-F]+/[0-9A-F]+) on timeline (\d+)")
_END = re.compile(r"write-ahead log end point: ([0-9A-F]+/[0-9A-F]+)")


async def _facts(info: pgtools.ConnInfo) -> tuple[str, str | None, dict[str, int]]:
    conn = await asyncpg.connect(info.asyncpg_dsn(), timeout=10)
    try:
        version = await conn.fetchval("SHOW server_version")
        revision = None
        with contextlib.suppress(asyncpg.PostgresError):
            revision = await conn.fetchval("SELECT version_num FROM alembic_version")
        counts = {}
        for table in COUNTED_TABLES:
            with contextlib.suppress(asyncpg.PostgresError):
                counts[table] = int(await conn.fetchval(f'SELECT count(*) FROM "{table}"'))  # noqa: S608
    finally:
        await conn.close()
    return str(version), revision, counts


async def _stream_tool(
    proc: asyncio.subprocess.Process,
    catalog: Catalog,
    name: str,
    progress: Progress,
    *,
    hint: str,
) -> tuple[ObjectRecord, str]:
    """Stream a tool's stdout through the pipeline into ``name``; on failure remove the
    partial object and raise with the tool's last lines. Returns the record and its stderr."""
    assert proc.stdout is not None
    assert proc.stderr is not None
    stderr_task = asyncio.create_task(proc.stderr.read())

    async def stdout() -> AsyncIterator[bytes]:
        assert proc.stdout is not None
        while chunk := await proc.stdout.read(1024 * 1024):
            yield chunk

    try:
        record = await catalog.put_object(name, stdout(), progress)
    except BaseException:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        for storage in catalog.storages:
            await storage.delete(name)
        raise
    await proc.wait()
    log = (await stderr_task).decode(errors="replace")
    if proc.returncode != 0:
        for storage in catalog.storages:
            await storage.delete(name)
        tail = " | ".join(log.strip().splitlines()[-3:])
        raise ToolFailed(
            f"{name.rsplit('/', 1)[-1]}: tool failed (exit {proc.returncode}): {tail}; {hint}"
        )
    return record, log


async def backup_postgres(settings: Settings, catalog: Catalog, progress: Progress) -> Manifest:
    """A physical base backup over the replication protocol, streamed through the pipeline."""
    info = pgtools.ConnInfo.from_url(settings.database_url, settings.database)
    version, revision, counts = await _facts(info)
    backup_id = new_backup_id(BackupKind.full)
    started = datetime.now(UTC)
    argv = [
        pgtools.tool("pg_basebackup", settings.backup.pg_bin_dir),
        "-d",
        info.libpq(),
        "-D",
        "-",
        "-F",
        "tar",
        "-X",
        "fetch",
        "--checkpoint=fast",
        "-v",
        "-l",
        backup_id,
    ]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **info.env()},
    )
    record, log = await _stream_tool(
        proc,
        catalog,
        f"{BACKUPS}/{backup_id}/base.tar",
        progress,
        hint="the user needs the REPLICATION attribute and a `replication` line in pg_hba.conf",
    )
    start = _START.search(log)
    end = _END.search(log)
    timeline = int(start.group(2)) if start else None
    first_wal = pgtools.wal_segment_name(timeline, start.group(1)) if start and timeline else None
    return await finish_backup(
        catalog,
        id=backup_id,
        kind=BackupKind.full,
        engine="postgresql",
        engine_version=version,
        schema_revision=revision,
        start_time=started,
        start_lsn=start.group(1) if start else None,
        stop_lsn=end.group(1) if end else None,
        timeline=timeline,
        start_wal=first_wal,
        objects=[record],
        row_counts=counts,
    )


async def _untar_stream(chunks: AsyncIterator[bytes], target: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        "tar",
        "-x",
        "-f",
        "-",
        "-C",
        str(target),
        stdin=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None
    assert proc.stderr is not None
    try:
        async for piece in chunks:
            proc.stdin.write(piece)
            await proc.stdin.drain()
    except BaseException:
        proc.kill()
        await proc.wait()
        raise
    proc.stdin.close()
    err = (await proc.stderr.read()).decode(errors="replace")
    if await proc.wait() != 0:
        if "No space left" in err:
            raise BackupError(f"no space left on the device holding {target}; free space")
        raise ToolFailed(f"tar failed extracting into {target}: {err.strip()[:300]}")


async def restore_postgres(
    catalog: Catalog,
    manifest: Manifest,
    target: Path,
    *,
    to_time: datetime | None = None,
    to_end: bool = False,
    restore_command: str | None = None,
    progress: Progress = _noop,
) -> None:
    """Unpack a base backup into a new data directory and set up recovery.

    With ``to_time`` the server replays archived WAL up to that moment and promotes; with
    ``to_end`` it replays every archived WAL file (the newest state the archive holds, as after
    the loss of the primary) and promotes at the end of the archive. WAL comes through
    ``restore_command`` (normally ``auth-service backup wal-fetch %f %p``); without one the
    archived WAL is staged, decrypted, next to the data and copied in with ``cp``.
    """
    await asyncio.to_thread(_prepare_data_dir, target)
    await _untar_stream(catalog.open_object(manifest.objects[0], progress=progress), target)
    settings = {"archive_mode": "off"}
    if to_time is not None or to_end:
        if restore_command is None:
            stage = target / "restore_wal"
            await asyncio.to_thread(stage.mkdir)
            await _stage_wal(catalog, manifest, stage)
            restore_command = f'cp "{stage}/%f" "%p"'
        settings.update(restore_command=restore_command, recovery_target_timeline="latest")
        if to_time is not None:
            settings.update(
                recovery_target_time=to_time.astimezone(UTC).isoformat(sep=" "),
                recovery_target_action="promote",
            )
        # Without a target PostgreSQL recovers until restore_command finds no next file, then
        # promotes onto a new timeline.
        await asyncio.to_thread((target / "recovery.signal").touch)
    lines = "".join(f"{k} = '{v}'\n" for k, v in settings.items())
    await asyncio.to_thread(_append, target / "postgresql.auto.conf", lines)
    await asyncio.to_thread(pgtools.chown_to_server_user, target)


def _append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write("# written by auth-service backup restore\n" + text)


def _prepare_data_dir(target: Path) -> None:
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: restore into a new directory")
    target.mkdir(parents=True, exist_ok=True)
    target.chmod(0o700)


async def _stage_wal(catalog: Catalog, manifest: Manifest, stage: Path) -> None:
    """Decrypt the archived WAL a recovery from ``manifest`` may ask for into ``stage``."""
    names = await catalog.wal_names()
    full = {n for n in names if len(n) == 24}
    first = manifest.start_wal or ""
    for name in names:
        if name.endswith(".history"):
            dest = name
        elif name.endswith(".partial") and name.removesuffix(".partial") not in full:
            # The segment pg_receivewal was still writing: the newest WAL there is.
            dest = name.removesuffix(".partial")
        elif len(name) == 24:
            dest = name
        else:
            continue
        if len(dest) == 24 and (dest[8:], dest[:8]) < (first[8:], first[:8]):
            continue
        try:
            await catalog.wal_fetch(name, stage / dest)
        except MissingObject:
            # Its checksum is written after every copy of the object: without one, the upload
            # was cut off (the archiver died with the region) and the file is not archived.
            # Recovery ends where the archive has its first gap, as with wal-fetch.
            continue


async def backup_logical(settings: Settings, catalog: Catalog, progress: Progress) -> Manifest:
    """A pg_dump (custom format) export, for moving across major versions; restore it with
    pg_restore into any newer server."""
    if engine_of(settings) is not Backend.postgresql:
        raise BackupError("a logical backup needs PostgreSQL; SQLite full backups are portable")
    info = pgtools.ConnInfo.from_url(settings.database_url, settings.database)
    version, revision, counts = await _facts(info)
    backup_id = new_backup_id(BackupKind.logical)
    started = datetime.now(UTC)
    proc = await asyncio.create_subprocess_exec(
        pgtools.tool("pg_dump", settings.backup.pg_bin_dir),
        "-d",
        info.libpq(),
        "-F",
        "custom",
        "-Z",
        "0",  # the pipeline compresses
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **info.env()},
    )
    record, _ = await _stream_tool(
        proc, catalog, f"{BACKUPS}/{backup_id}/dump.pgc", progress, hint="check database.url"
    )
    return await finish_backup(
        catalog,
        id=backup_id,
        kind=BackupKind.logical,
        engine="postgresql",
        engine_version=version,
        schema_revision=revision,
        start_time=started,
        objects=[record],
        row_counts=counts,
    )
