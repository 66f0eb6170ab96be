"""Taking and restoring backups of each engine: PostgreSQL (physical, pg_basebackup), SQLite
(online snapshot through SQLite's backup API) and configuration."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import sqlite3
import tarfile
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from auth_service import __version__
from auth_service.backup import pgtools
from auth_service.backup.catalog import BACKUPS, Catalog, Progress, _noop, read_file
from auth_service.backup.errors import BackupError, NotFound, ToolFailed
from auth_service.backup.manifest import Manifest, ObjectRecord, new_backup_id
from auth_service.config.settings import Settings
from auth_service.db.engine import Backend, backend_of, sqlite_file

COUNTED_TABLES = ("users", "sessions", "refresh_tokens", "signing_keys")


def engine_of(settings: Settings) -> Backend:
    url = settings.database_url
    try:
        return backend_of(url)
    except ValueError:
        raise BackupError(f"cannot back up database URL scheme {url.split(':', 1)[0]!r}") from None


def sqlite_path(settings: Settings) -> Path:
    path = sqlite_file(settings.database_url)
    if path is None:
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return path


async def _finish(catalog: Catalog, **fields: Any) -> Manifest:
    """Record a completed backup: the manifest goes last, so a failed run is never listed."""
    manifest = Manifest(
        service_version=__version__,
        stop_time=datetime.now(UTC),
        key_id=catalog.keyring.current_id,
        **fields,
    )
    await catalog.write_manifest(manifest)
    return manifest


# ---- SQLite ---------------------------------------------------------------------------------


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
    backup_id = new_backup_id("full")
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="auth-backup-") as tmp:
        snap = Path(tmp) / "auth.db"
        counts, revision = await asyncio.to_thread(_sqlite_snapshot, source, snap)
        record = await catalog.put_object(
            f"{BACKUPS}/{backup_id}/auth.db", read_file(snap), progress
        )
    return await _finish(
        catalog,
        id=backup_id,
        kind="full",
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


def _sqlite_integrity(path: Path) -> None:
    conn = sqlite3.connect(path)
    try:
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
    if result != "ok":
        raise BackupError(f"restored SQLite file fails integrity_check: {result}")


# ---- PostgreSQL -----------------------------------------------------------------------------

_START = re.compile(r"write-ahead log start point: ([0-9A-F]+/[0-9A-F]+) on timeline (\d+)")
_END = re.compile(r"write-ahead log end point: ([0-9A-F]+/[0-9A-F]+)")


async def _pg_facts(info: pgtools.ConnInfo) -> tuple[str, str | None, dict[str, int]]:
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
    info = pgtools.ConnInfo.from_url(settings.database_url)
    version, revision, counts = await _pg_facts(info)
    backup_id = new_backup_id("full")
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
    return await _finish(
        catalog,
        id=backup_id,
        kind="full",
        engine="postgresql",
        engine_version=version,
        schema_revision=revision,
        start_time=started,
        start_lsn=start.group(1) if start else None,
        stop_lsn=end.group(1) if end else None,
        timeline=timeline,
        start_wal=pgtools.wal_segment_name(timeline, start.group(1))
        if start and timeline
        else None,
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


@dataclass
class PgRestore:
    data_dir: Path
    manifest: Manifest
    wal_staged: int


async def restore_postgres(
    catalog: Catalog,
    manifest: Manifest,
    target: Path,
    *,
    to_time: datetime | None = None,
    restore_command: str | None = None,
    progress: Progress = _noop,
) -> PgRestore:
    """Unpack a base backup into a new data directory and set up recovery.

    With ``to_time`` the server replays archived WAL up to that moment and promotes. WAL comes
    through ``restore_command`` (normally ``auth-service backup wal-fetch %f %p``); without one
    the archived WAL is staged, decrypted, next to the data and copied in with ``cp``.
    """
    await asyncio.to_thread(_prepare_data_dir, target)
    await _untar_stream(catalog.open_object(manifest.objects[0], progress=progress), target)
    staged = 0
    settings = {"archive_mode": "off"}
    if to_time is not None:
        if restore_command is None:
            stage = target / "restore_wal"
            await asyncio.to_thread(stage.mkdir)
            staged = await _stage_wal(catalog, manifest, stage)
            restore_command = f'cp "{stage}/%f" "%p"'
        settings.update(
            restore_command=restore_command,
            recovery_target_time=to_time.astimezone(UTC).isoformat(sep=" "),
            recovery_target_action="promote",
            recovery_target_timeline="latest",
        )
        await asyncio.to_thread((target / "recovery.signal").touch)
    lines = "".join(f"{k} = '{v}'\n" for k, v in settings.items())
    await asyncio.to_thread(_append, target / "postgresql.auto.conf", lines)
    await asyncio.to_thread(pgtools.chown_to_server_user, target)
    return PgRestore(target, manifest, staged)


def _append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write("# written by auth-service backup restore\n" + text)


def _prepare_data_dir(target: Path) -> None:
    if target.exists() and any(target.iterdir()):
        raise BackupError(f"{target} is not empty: restore into a new directory")
    target.mkdir(parents=True, exist_ok=True)
    target.chmod(0o700)


async def _stage_wal(catalog: Catalog, manifest: Manifest, stage: Path) -> int:
    names = await catalog.wal_names()
    full = {n for n in names if len(n) == 24}
    first = manifest.start_wal or ""
    count = 0
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
        await catalog.wal_fetch(name, stage / dest)
        count += 1
    return count


# ---- configuration --------------------------------------------------------------------------


async def backup_config(settings: Settings, catalog: Catalog, progress: Progress) -> Manifest:
    """Config files as they are on disk (secrets stay in their secret files, never copied),
    signing keys (already sealed under the master key) and the schema revision."""
    from sqlalchemy import text

    from auth_service.db.engine import create_engine

    backup_id = new_backup_id("config")
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
    return await _finish(
        catalog,
        id=backup_id,
        kind="config",
        engine="config",
        schema_revision=revision,
        start_time=started,
        objects=[record],
        row_counts={"signing_keys": len(keys)},
    )


async def backup_logical(settings: Settings, catalog: Catalog, progress: Progress) -> Manifest:
    """A pg_dump (custom format) export, for moving across major versions; restore it with
    pg_restore into any newer server."""
    if engine_of(settings) is not Backend.postgresql:
        raise BackupError("a logical backup needs PostgreSQL; SQLite full backups are portable")
    info = pgtools.ConnInfo.from_url(settings.database_url)
    version, revision, counts = await _pg_facts(info)
    backup_id = new_backup_id("logical")
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
    return await _finish(
        catalog,
        id=backup_id,
        kind="logical",
        engine="postgresql",
        engine_version=version,
        schema_revision=revision,
        start_time=started,
        objects=[record],
        row_counts=counts,
    )


async def run_backup(
    settings: Settings, catalog: Catalog, kind: str, progress: Progress = _noop
) -> Manifest:
    if kind == "config":
        return await backup_config(settings, catalog, progress)
    if kind == "logical":
        return await backup_logical(settings, catalog, progress)
    engine = engine_of(settings)
    runner: Callable[[Settings, Catalog, Progress], Awaitable[Manifest]] = (
        backup_postgres if engine is Backend.postgresql else backup_sqlite
    )
    return await runner(settings, catalog, progress)
