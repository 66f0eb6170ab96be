"""The backup catalog: sealed objects, manifests and archived WAL in one or more destinations.

Layout in every destination::

    backups/<id>/manifest.json     plain JSON (no secrets): what the backup holds
    backups/<id>/<object>          sealed objects (crypto.py)
    wal/<segment>                  sealed WAL segments and timeline history files
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import ValidationError

from auth_service.backup import crypto
from auth_service.backup.errors import BackupError, CorruptObject, MissingObject, NotFound
from auth_service.backup.manifest import BackupKind, Manifest, ObjectRecord
from auth_service.backup.storage import Storage, open_storage
from auth_service.config.backup import BackupDestination, BackupSettings

Progress = Callable[[int], None]
BACKUPS = "backups"
WAL = "wal"
VERIFIED = "verifications/latest.json"


def _noop(_: int) -> None:
    return None


@dataclass
class VerifyReport:
    backup_id: str
    objects: int = 0
    stored_bytes: int = 0
    plain_bytes: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class PrunePlan:
    keep: list[str]
    delete_backups: list[str]
    delete_wal: list[str]
    oldest_needed_wal: str | None


class Catalog:
    """Backups and WAL across the configured destinations (the first one is primary)."""

    def __init__(self, settings: BackupSettings, data_dir: Path) -> None:
        self.settings = settings
        dests = settings.destinations or [
            BackupDestination(url=f"file://{(data_dir / 'backups').resolve()}")
        ]
        self.storages: list[Storage] = [open_storage(d) for d in dests]
        self._keyring: crypto.Keyring | None = None

    @property
    def primary(self) -> Storage:
        return self.storages[0]

    @property
    def keyring(self) -> crypto.Keyring:
        if self._keyring is None:
            key = self.settings.key.get_secret_value() if self.settings.key else None
            old = self.settings.previous_keys
            self._keyring = crypto.Keyring.from_text(key, old.get_secret_value() if old else None)
        return self._keyring

    # ---- objects ------------------------------------------------------------------------

    async def put_object(
        self, name: str, source: AsyncIterable[bytes], progress: Progress = _noop
    ) -> ObjectRecord:
        """Compress, seal and upload a stream to every destination; memory stays bounded."""
        sealer = crypto.Sealer(
            self.keyring,
            chunk_size=self.settings.chunk_bytes,
            level=self.settings.compression_level,
        )
        digest = hashlib.sha256()

        async def counted() -> AsyncIterator[bytes]:
            async for piece in source:
                progress(len(piece))
                yield piece

        async def hashed() -> AsyncIterator[bytes]:
            async for piece in crypto.seal_stream(counted(), sealer):
                digest.update(piece)
                yield piece

        size = await self.primary.put(name, hashed())
        record = ObjectRecord(
            name=name,
            size=size,
            sha256=digest.hexdigest(),
            plain_bytes=sealer.plain_bytes,
            plain_sha256=sealer.plain_sha256,
        )
        for extra in self.storages[1:]:
            await extra.put(name, self.primary.get(name))
        return record

    async def open_object(
        self, record: ObjectRecord, storage: Storage | None = None, progress: Progress = _noop
    ) -> AsyncIterator[bytes]:
        """Stream an object's plaintext; checks the stored SHA-256 and the plaintext SHA-256."""
        store = storage or self.primary
        digest = hashlib.sha256()
        plain = hashlib.sha256()
        opener = crypto.Opener(self.keyring, record.name)

        async def raw() -> AsyncIterator[bytes]:
            async for piece in store.get(record.name):
                digest.update(piece)
                progress(len(piece))
                yield piece

        async for piece in crypto.open_stream(raw(), opener):
            plain.update(piece)
            yield piece
        if record.sha256 and digest.hexdigest() != record.sha256:
            raise CorruptObject(
                f"object {record.name} does not match its SHA-256 in the manifest; "
                "restore from another destination or an older backup"
            )
        if plain.hexdigest() != record.plain_sha256:
            raise CorruptObject(f"object {record.name}: plaintext checksum mismatch")

    # ---- manifests ----------------------------------------------------------------------

    async def write_manifest(self, manifest: Manifest) -> None:
        for storage in self.storages:
            await storage.put_bytes(f"{BACKUPS}/{manifest.id}/manifest.json", manifest.dumps())

    async def manifests(self, storage: Storage | None = None) -> list[Manifest]:
        """Every complete backup (one with a manifest), oldest first."""
        store = storage or self.primary
        out = []
        for info in await store.list(BACKUPS):
            if not info.name.endswith("/manifest.json"):
                continue
            try:
                out.append(Manifest.model_validate_json(await store.get_bytes(info.name)))
            except ValidationError:
                continue
        return sorted(out, key=lambda m: m.start_time)

    async def manifest(self, backup_id: str | None = None) -> Manifest:
        if backup_id is None:
            full = [m for m in await self.manifests() if m.kind is BackupKind.full]
            if not full:
                raise NotFound("no full backup yet: run `auth-service backup run --kind full`")
            return full[-1]
        name = f"{BACKUPS}/{backup_id}/manifest.json"
        try:
            return Manifest.model_validate_json(await self.primary.get_bytes(name))
        except MissingObject:
            raise NotFound(
                f"no backup {backup_id}: `auth-service backup list` shows the ones there are"
            ) from None

    async def newest_before(self, target: datetime) -> Manifest:
        candidates = [
            m
            for m in await self.manifests()
            if m.kind is BackupKind.full
            and m.engine == "postgresql"
            and m.stop_time is not None
            and m.stop_time <= target
        ]
        if not candidates:
            raise NotFound(
                f"no PostgreSQL full backup finished before {target.isoformat()}: "
                "point-in-time recovery starts from a base backup older than the target"
            )
        return candidates[-1]

    # ---- verification -------------------------------------------------------------------

    async def verify(
        self, backup_id: str | None = None, progress: Progress = _noop
    ) -> VerifyReport:
        """Re-read every object of a backup in every destination: checksums and decryption."""
        manifest = await self.manifest(backup_id)
        report = VerifyReport(manifest.id)
        for storage in self.storages:
            for record in manifest.objects:
                try:
                    async for piece in self.open_object(record, storage, progress):
                        report.plain_bytes += len(piece)
                    report.objects += 1
                    report.stored_bytes += record.size
                except (CorruptObject, MissingObject) as exc:
                    report.problems.append(f"{storage.url}: {exc}")
        return report

    async def record_verification(self, report: VerifyReport, restore_tested: bool) -> None:
        """Leave a note of the last good verification for the service's metrics to read."""
        note = {
            "backup_id": report.backup_id,
            "time": datetime.now(UTC).isoformat(),
            "restore_tested": restore_tested,
        }
        for storage in self.storages:
            await storage.put_bytes(VERIFIED, json.dumps(note).encode())

    async def last_verification(self) -> datetime | None:
        try:
            note = json.loads(await self.primary.get_bytes(VERIFIED))
        except (MissingObject, ValueError):
            return None
        return datetime.fromisoformat(note["time"])

    # ---- WAL ----------------------------------------------------------------------------

    async def wal_push(self, path: Path, *, name: str | None = None) -> bool:
        """Archive one WAL segment or history file. False if an identical copy is there.

        PostgreSQL may archive a segment again after a crash; an identical copy counts as
        success, a different one is refused (never overwrite the archive).
        """
        base = name or path.name
        name = f"{WAL}/{base}"
        digest = await asyncio.to_thread(_file_sha256, path)
        marker = f"{name}.sha256"
        # A .partial segment grows until it is complete: each push replaces the previous.
        if not base.endswith(".partial") and await self.primary.exists(marker):
            existing = (await self.primary.get_bytes(marker)).decode().strip()
            if existing == digest:
                return False
            raise BackupError(
                f"{name} is already archived with different contents: two clusters archive "
                "into the same destination; give each its own prefix"
            )
        await self.put_object(name, read_file(path))
        for storage in self.storages:
            await storage.put_bytes(marker, digest.encode())
        return True

    async def wal_fetch(self, name: str, dest: Path) -> None:
        """Restore one archived WAL file to dest (restore_command); MissingObject if absent."""
        record = await self._wal_record(name)
        tmp = dest.with_name(dest.name + ".fetching")
        try:
            with tmp.open("wb") as fh:
                async for piece in self.open_object(record):
                    await asyncio.to_thread(fh.write, piece)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)

    async def _wal_record(self, name: str) -> ObjectRecord:
        obj = f"{WAL}/{name}"
        try:
            digest = (await self.primary.get_bytes(obj + ".sha256")).decode().strip()
        except MissingObject:
            raise MissingObject(f"WAL file {name} is not in the archive") from None
        # WAL objects are self-describing (the header names the key); the plaintext digest
        # recorded at push time is the check.
        return ObjectRecord(name=obj, size=0, sha256="", plain_bytes=0, plain_sha256=digest)

    async def wal_names(self) -> list[str]:
        return [
            i.name.removeprefix(f"{WAL}/")
            for i in await self.primary.list(WAL)
            if not i.name.endswith(".sha256")
        ]

    async def newest_wal_time(self) -> datetime | None:
        infos = [i for i in await self.primary.list(WAL) if not i.name.endswith(".sha256")]
        times = [i.modified for i in infos if i.modified is not None]
        return max(times) if times else None

    # ---- retention ----------------------------------------------------------------------

    async def plan_prune(self, now: datetime | None = None) -> PrunePlan:
        """Keep the newest N full backups, every backup inside the PITR window, and the WAL
        from the oldest kept base backup on. The newest verified-readable backup is never
        deleted (it is always among the kept)."""
        now = now or datetime.now(UTC)
        manifests = await self.manifests()
        full = [m for m in manifests if m.kind is BackupKind.full]
        window_start = now - timedelta(days=self.settings.pitr_window_days)
        keep_ids = {m.id for m in full[-self.settings.keep_full :]}
        # PITR to any time in the window needs the newest base at or before the window start.
        before_window = [m for m in full if m.start_time <= window_start]
        if before_window:
            keep_ids.add(before_window[-1].id)
        keep_ids |= {m.id for m in full if m.start_time > window_start}
        for kind in (BackupKind.config, BackupKind.logical):
            others = [m for m in manifests if m.kind == kind]
            keep_ids |= {m.id for m in others[-self.settings.keep_full :]}
        kept_full = [m for m in full if m.id in keep_ids]
        oldest_wal = min(
            (m.start_wal for m in kept_full if m.start_wal), default=None, key=_wal_sort_key
        )
        delete_wal: list[str] = []
        if oldest_wal is not None:
            for name in await self.wal_names():
                if name.endswith(".history"):
                    continue
                segment = name.removesuffix(".partial")
                if len(segment) == 24 and _wal_sort_key(segment) < _wal_sort_key(oldest_wal):
                    delete_wal.append(name)
        return PrunePlan(
            keep=[m.id for m in manifests if m.id in keep_ids],
            delete_backups=[m.id for m in manifests if m.id not in keep_ids],
            delete_wal=delete_wal,
            oldest_needed_wal=oldest_wal,
        )

    async def apply_prune(self, plan: PrunePlan) -> None:
        for storage in self.storages:
            for backup_id in plan.delete_backups:
                # The manifest goes first: a half-deleted backup is then simply not listed.
                await storage.delete(f"{BACKUPS}/{backup_id}/manifest.json")
                for info in await storage.list(f"{BACKUPS}/{backup_id}/"):
                    await storage.delete(info.name)
            for name in plan.delete_wal:
                await storage.delete(f"{WAL}/{name}")
                await storage.delete(f"{WAL}/{name}.sha256")


def _wal_sort_key(name: str) -> tuple[str, str]:
    # Segment names are TTTTTTTTXXXXXXXXYYYYYYYY; order by log position, then timeline.
    return (name[8:24], name[:8])


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


async def read_file(path: Path, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    """A file as an async byte stream; reads happen in a thread."""
    fh = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(fh.read, size):
            yield chunk
    finally:
        fh.close()
