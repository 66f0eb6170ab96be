"""Settings of backups and disaster recovery (sections ``backup`` and ``dr``).

Kept beside the code that reads them; ``config.settings`` mounts them on ``Settings``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class BackupDestination(_Section):
    url: str = Field(description="file:///dir, s3://bucket/prefix or gs://bucket/prefix")
    endpoint: str | None = Field(None, description="S3-compatible or emulator endpoint URL")
    region: str | None = None
    allow_http: bool = False
    anonymous: bool = Field(False, description="GCS without credentials (emulators only)")
    multipart: bool = Field(True, description="streaming multipart uploads (off for emulators)")
    options: dict[str, str] = Field(
        default_factory=dict,
        description="extra obstore options; credentials belong in the provider's env vars",
    )


class BackupSettings(_Section):
    key: SecretStr | None = Field(
        None, description="backup key: base64url of 32 random bytes (AUTH_BACKUP__KEY_FILE)"
    )
    previous_keys: SecretStr | None = Field(
        None, description="retired backup keys, comma-separated, to open older backups"
    )
    destinations: list[BackupDestination] = Field(
        default_factory=list,
        description="first is primary; more are copies (DR region); default data_dir/backups",
    )
    keep_full: int = Field(7, ge=1, description="full backups kept by prune")
    pitr_window_days: float = Field(7.0, ge=0, description="point-in-time window kept by prune")
    rpo_seconds: float = Field(
        26 * 3600.0, gt=0, description="newest backup older than this: health degraded"
    )
    chunk_bytes: int = Field(1024 * 1024, ge=4096, le=64 * 1024 * 1024)
    compression_level: int = Field(3, ge=1, le=19)
    pg_bin_dir: Path | None = Field(None, description="PostgreSQL client/server binaries")
    spool_dir: Path | None = Field(None, description="wal-stream spool; default data_dir/wal-spool")
    config_files: list[Path] = Field(
        default_factory=list, description="files a `config` backup takes (never inline secrets)"
    )
    schedule_full_seconds: float = Field(24 * 3600.0, gt=0)
    schedule_verify_seconds: float = Field(24 * 3600.0, gt=0)


class DrSettings(_Section):
    standby_url: SecretStr | None = Field(
        None, description="libpq URL of the standby (region B), as the primary is database.url"
    )
    synchronous: bool = False
    slot_name: str = "auth_dr_standby"
    max_lag_bytes: int = Field(16 * 1024 * 1024, ge=0)
