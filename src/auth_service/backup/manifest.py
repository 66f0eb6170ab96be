"""The manifest of a backup: what was taken, from what, and how to check it."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

FORMAT = 1


class BackupKind(StrEnum):
    full = "full"  # the database: a base backup (PostgreSQL) or a snapshot (SQLite)
    config = "config"  # config files, sealed signing keys and the schema revision
    logical = "logical"  # a pg_dump export, to move across PostgreSQL major versions


class ObjectRecord(BaseModel):
    name: str
    size: int = Field(description="stored (sealed) bytes")
    sha256: str = Field(description="SHA-256 of the stored bytes")
    plain_bytes: int
    plain_sha256: str


class Manifest(BaseModel):
    format: int = FORMAT
    id: str
    kind: BackupKind
    engine: Literal["postgresql", "sqlite", "config"]
    engine_version: str | None = None
    service_version: str
    schema_revision: str | None = None
    start_time: datetime
    stop_time: datetime | None = None
    start_lsn: str | None = None
    stop_lsn: str | None = None
    timeline: int | None = None
    start_wal: str | None = Field(None, description="first WAL segment a restore needs")
    parent: str | None = None
    key_id: str
    objects: list[ObjectRecord] = Field(default_factory=list)
    row_counts: dict[str, int] = Field(default_factory=dict)

    @property
    def stored_bytes(self) -> int:
        return sum(o.size for o in self.objects)

    @property
    def plain_bytes(self) -> int:
        return sum(o.plain_bytes for o in self.objects)

    def dumps(self) -> bytes:
        return json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True).encode()

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "engine": self.engine,
            "start_time": self.start_time.isoformat(),
            "stop_time": self.stop_time.isoformat() if self.stop_time else None,
            "stored_bytes": self.stored_bytes,
            "plain_bytes": self.plain_bytes,
            "schema_revision": self.schema_revision,
            "key_id": self.key_id,
            "start_lsn": self.start_lsn,
            "stop_lsn": self.stop_lsn,
        }


def new_backup_id(kind: BackupKind, now: datetime | None = None) -> str:
    """Sortable by time: 20260101T000000Z-full-1a2b."""
    now = now or datetime.now(UTC)
    return f"{now.strftime('%Y%m%dT%H%M%S')}Z-{kind}-{secrets.token_hex(2)}"
