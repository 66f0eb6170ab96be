"""Storage errors become operator messages: disk full, missing object, bad URL."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from auth_service.backup.errors import BackupError, MissingObject, StorageFull
from auth_service.backup.storage import _storage_error, open_storage
from auth_service.config.backup import BackupDestination


def test_disk_full_says_what_to_do() -> None:
    err = _storage_error(OSError(errno.ENOSPC, "No space left on device"), "file:///b/x")
    assert isinstance(err, StorageFull)
    assert "free space or prune" in str(err)


def test_missing_object_named() -> None:
    err = _storage_error(FileNotFoundError("gone"), "s3://b/backups/1/base.tar")
    assert isinstance(err, MissingObject)
    assert "s3://b/backups/1/base.tar" in str(err)


def test_unknown_scheme_rejected(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="unsupported backup destination"):
        open_storage(BackupDestination(url="ftp://host/dir"))


async def test_local_round_trip_and_listing(tmp_path: Path) -> None:
    storage = open_storage(BackupDestination(url=f"file://{tmp_path}"))

    async def parts():  # type: ignore[no-untyped-def]
        for _ in range(3):
            yield b"x" * (5 * 1024 * 1024)

    assert await storage.put("a/b", parts()) == 15 * 1024 * 1024
    assert [o.name for o in await storage.list("a")] == ["a/b"]
    assert await storage.exists("a/b")
    await storage.delete("a/b")
    assert not await storage.exists("a/b")
    with pytest.raises(MissingObject):
        await storage.get_bytes("a/b")
