"""Object storage for backups: a local directory, S3 (and S3-compatible) and GCS.

All three go through obstore (the Rust ``object_store`` crate: streaming multipart uploads,
retries, the providers' own credential chains); see docs/adr/0300-backup-storage-obstore.md.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import obstore
from obstore.exceptions import AlreadyExistsError
from obstore.store import GCSStore, LocalStore, S3Store

if TYPE_CHECKING:
    from obstore.store import ClientConfig

from auth_service.backup.errors import BackupError, MissingObject, StorageFull
from auth_service.config.backup import BackupDestination

# Parts of a streaming upload; each is held in memory once, so this bounds upload memory.
PART_SIZE = 8 * 1024 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    size: int
    modified: datetime | None = None


def _storage_error(exc: Exception, where: str) -> BackupError:
    text = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "No space left" in str(exc):
        return StorageFull(f"{where}: no space left on the destination; free space or prune")
    if "<Code>NoSuchBucket</Code>" in str(exc):
        # S3 and GCS (XML API) answer 404 with this code; obstore raises it as a missing object.
        return BackupError(f"{where}: the bucket does not exist; create it or fix the URL")
    if isinstance(exc, FileNotFoundError):
        return MissingObject(f"{where}: object not found in the storage")
    return BackupError(f"{where}: storage error ({text}); check the destination and credentials")


class Storage:
    """One destination. Object names are relative, '/'-separated."""

    def __init__(self, store: Any, url: str, *, multipart: bool = True) -> None:
        self._store = store
        self.url = url
        self._multipart = multipart

    def __repr__(self) -> str:
        return f"Storage({self.url})"

    async def put(self, name: str, data: AsyncIterable[bytes]) -> int:
        """Upload a stream; returns the bytes written. Memory: one part at a time."""
        size = 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal size
            async for piece in data:
                size += len(piece)
                yield piece

        try:
            if self._multipart:
                await obstore.put_async(self._store, name, counted(), chunk_size=PART_SIZE)
            else:
                # Stores without multipart (emulators) get one request, so the whole object
                # is held in memory: `multipart: false` is for emulators and small objects
                # (docs/adr/0300-backup-storage-obstore.md).
                body = b"".join([p async for p in counted()])
                await obstore.put_async(self._store, name, body, use_multipart=False)
        except Exception as exc:
            raise _storage_error(exc, f"{self.url}/{name}") from None
        return size

    async def put_bytes(self, name: str, data: bytes) -> None:
        try:
            await obstore.put_async(self._store, name, data, use_multipart=False)
        except Exception as exc:
            raise _storage_error(exc, f"{self.url}/{name}") from None

    async def put_new(self, name: str, data: bytes) -> bool:
        """Create ``name`` only if no object has that name yet; False when one has.

        The store decides atomically (local: create-exclusive, S3: ``If-None-Match: *``, GCS:
        generation 0), so among several writers exactly one succeeds: a lock.
        """
        try:
            # Sync in a thread, as for delete: the losers' error path is the common one here.
            await asyncio.to_thread(
                obstore.put, self._store, name, data, mode="create", use_multipart=False
            )
        except AlreadyExistsError:
            return False
        except Exception as exc:
            raise _storage_error(exc, f"{self.url}/{name}") from None
        return True

    async def get(self, name: str) -> AsyncIterator[bytes]:
        # A missing object is found by a sync HEAD in a thread: errors from obstore's async
        # calls intermittently aborted the process at exit (obstore 0.12), and a
        # restore_command killed by a signal stops PostgreSQL's recovery.
        if not await self.exists(name):
            raise MissingObject(f"{self.url}/{name}: object not found in the storage")
        try:
            result = await obstore.get_async(self._store, name)
            async for piece in result.stream(min_chunk_size=1024 * 1024):
                yield bytes(piece)
        except Exception as exc:
            raise _storage_error(exc, f"{self.url}/{name}") from None

    async def get_bytes(self, name: str) -> bytes:
        return b"".join([piece async for piece in self.get(name)])

    async def list(self, prefix: str) -> list[ObjectInfo]:
        try:
            batches = await obstore.list(self._store, prefix).collect_async()
        except Exception as exc:
            raise _storage_error(exc, f"{self.url}/{prefix}") from None
        return sorted(
            (
                ObjectInfo(str(meta["path"]), int(meta["size"]), meta.get("last_modified"))
                for meta in batches
            ),
            key=lambda o: o.name,
        )

    async def exists(self, name: str) -> bool:
        try:
            await asyncio.to_thread(obstore.head, self._store, name)
        except FileNotFoundError:
            return False
        except Exception as exc:
            raise _storage_error(exc, f"{self.url}/{name}") from None
        return True

    async def delete(self, name: str) -> None:
        try:
            # The sync call in a thread: delete_async intermittently aborted the process at
            # interpreter exit (obstore 0.12, local store).
            await asyncio.to_thread(obstore.delete, self._store, name)
        except FileNotFoundError:
            return
        except Exception as exc:
            raise _storage_error(exc, f"{self.url}/{name}") from None


def open_storage(dest: BackupDestination) -> Storage:
    """Build a Storage from a destination URL: file:///dir, s3://bucket/prefix, gs://bucket/prefix."""
    parsed = urlparse(dest.url)
    prefix = parsed.path.strip("/") or None
    client: ClientConfig = {"allow_http": True} if dest.allow_http else {}
    if parsed.scheme in ("", "file"):
        root = Path(parsed.path if parsed.scheme else dest.url)
        root.mkdir(parents=True, exist_ok=True)
        return Storage(LocalStore(root, mkdir=True), dest.url)
    if parsed.scheme == "s3":
        kwargs: dict[str, Any] = dict(dest.options)
        if dest.endpoint:
            kwargs["endpoint"] = dest.endpoint
        if dest.region:
            kwargs["region"] = dest.region
        return Storage(
            S3Store(parsed.netloc, prefix=prefix, client_options=client, **kwargs), dest.url
        )
    if parsed.scheme in ("gs", "gcs"):
        kwargs = dict(dest.options)
        provider = None
        if dest.endpoint:
            kwargs["base_url"] = dest.endpoint
        if dest.anonymous:
            # Emulators accept any bearer token; real GCS uses the default credential chain.
            def provider() -> dict[str, Any]:
                return {"token": "anonymous", "expires_at": None}

        return Storage(
            GCSStore(
                parsed.netloc,
                prefix=prefix,
                client_options=client,
                credential_provider=provider,  # type: ignore[arg-type]
                **kwargs,
            ),
            dest.url,
            multipart=dest.multipart,
        )
    raise BackupError(
        f"unsupported backup destination {dest.url!r}: use file:///dir, s3://bucket/prefix "
        "or gs://bucket/prefix"
    )
