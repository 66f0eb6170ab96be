"""GCS destinations (``gs://bucket/prefix``) end to end, over GCS's XML API on loopback.

obstore's GCS client (``GCSStore``, as ``open_storage`` builds it from the destination's
``endpoint``/``anonymous`` options) talks to moto's server: obstore speaks only GCS's XML API,
which is S3's wire format, and no GCS emulator installable here serves it. Nothing is faked;
what is not covered (GCS-only ``x-goog-*`` semantics, GCS auth and error bodies) is listed in
``gcs_support.py``. Each test checks the server's own view of the bucket, not only obstore's.
"""

from __future__ import annotations

import hashlib
import json
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from auth_service.backup.catalog import Catalog
from auth_service.backup.storage import PART_SIZE, open_storage
from auth_service.config.backup import BackupDestination
from tests.integration.backup.gcs_support import gcs_destination, server_etag, server_objects
from tests.integration.backup.support import (
    assert_verify_and_restore,
    cli,
    register_users,
    run,
    sqlite_setup,
)


def _bucket() -> str:
    # Letters and digits only: obstore percent-encodes '-' and '.' in the bucket segment, which
    # GCS decodes and moto does not (gcs_support.py).
    return f"gcs{uuid.uuid4().hex[:12]}"


def test_gcs_backup_list_verify_restore_round_trip(
    tmp_path: Path, sqlite_template: Path, backup_key: str, gcs_endpoint: str
) -> None:
    bucket = _bucket()
    settings, config = sqlite_setup(
        tmp_path, sqlite_template, backup_key, gcs_destination(gcs_endpoint, bucket)
    )
    emails = [f"g{i}@example.com" for i in range(3)]
    run(register_users(settings, emails))

    result = cli(config, "backup", "run", "--kind", "full")
    assert result.exit_code == 0, result.output
    backups = json.loads(cli(config, "backup", "list", "--format", "json").stdout)
    assert [(b["kind"], b["engine"]) for b in backups] == [("full", "sqlite")]
    backup_id = backups[0]["id"]

    # The objects are in the server's bucket, under the URL's prefix, at the recorded sizes.
    manifest = run(Catalog(settings.backup, settings.data_dir).manifest(backup_id))
    stored = server_objects(gcs_endpoint, bucket, "auth/")
    for obj in manifest.objects:
        assert stored[f"auth/{obj.name}"] == obj.size
    assert any(name.endswith(f"{backup_id}/manifest.json") for name in stored)

    assert_verify_and_restore(tmp_path, settings, config, backup_id, emails)


async def _pieces(total: int, seed: bytes) -> AsyncIterator[bytes]:
    """``total`` deterministic pseudo-random bytes in 1 MiB pieces."""
    block = hashlib.sha256(seed).digest() * (1024 * 1024 // 32)
    sent = 0
    while sent < total:
        piece = block[: min(len(block), total - sent)]
        sent += len(piece)
        yield piece


async def _digest(stream: AsyncIterator[bytes]) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    async for piece in stream:
        h.update(piece)
        size += len(piece)
    return h.hexdigest(), size


def test_gcs_multipart_upload_over_the_part_size(gcs_endpoint: str) -> None:
    """A stream past PART_SIZE goes up in parts (XML multipart API) and reads back whole."""
    bucket = _bucket()
    storage = open_storage(BackupDestination(**gcs_destination(gcs_endpoint, bucket)))
    total = PART_SIZE + 3 * 1024 * 1024 + 17

    async def upload() -> int:
        return await storage.put("big/object", _pieces(total, b"big"))

    assert run(upload()) == total
    # The server's own view: the object at its size, and an ETag "<md5 of part md5s>-<parts>",
    # which only a completed multipart upload gets.
    assert server_objects(gcs_endpoint, bucket, "auth/") == {"auth/big/object": total}
    assert server_etag(gcs_endpoint, bucket, "auth/big/object").endswith("-2")

    async def read_list_delete() -> None:
        assert await _digest(storage.get("big/object")) == await _digest(_pieces(total, b"big"))
        assert [(o.name, o.size) for o in await storage.list("big/")] == [("big/object", total)]
        await storage.delete("big/object")
        assert not await storage.exists("big/object")

    run(read_list_delete())
    assert server_objects(gcs_endpoint, bucket, "auth/") == {}


def test_gcs_missing_bucket_and_unreachable_endpoint_fail_clearly(
    tmp_path: Path, sqlite_template: Path, backup_key: str, gcs_endpoint: str
) -> None:
    bucket = _bucket()
    _, config = sqlite_setup(
        tmp_path,
        sqlite_template,
        backup_key,
        gcs_destination(gcs_endpoint, bucket, create=False),
    )
    result = cli(config, "backup", "run")
    assert result.exit_code == 1, result.output
    assert f"gs://{bucket}/auth" in result.output
    assert "bucket does not exist" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    down = tmp_path / "down"
    down.mkdir()
    _, config = sqlite_setup(
        down, sqlite_template, backup_key, gcs_destination(dead, bucket, create=False)
    )
    result = cli(config, "backup", "run")
    assert result.exit_code == 1, result.output
    assert "error sending request" in result.output
    assert "check the destination" in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
