"""Settings of backups and disaster recovery (sections ``backup`` and ``dr``).

``config.settings`` mounts them on ``Settings``; ``backup`` and ``dr`` read them from here.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from auth_service.config.sections import Section


class BackupDestination(Section):
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


class BackupSettings(Section):
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


OBSERVER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class DrAutoSettings(Section):
    """Automatic failover by `auth-service dr watch` observers
    (docs/adr/0303-automatic-failover-observers.md)."""

    enabled: bool = Field(
        False, description="observers fail over on their own; off: they only observe"
    )
    unreachable_seconds: float = Field(
        30.0, gt=0, description="the primary must have been unreachable this long"
    )
    quorum: int = Field(2, ge=1, description="observers that must agree (at least 2 when enabled)")
    observation_ttl_seconds: float = Field(
        30.0, gt=0, description="older observations do not count"
    )
    # 2 s, not Patroni's 10 s loop_wait: a hung primary makes each probe wait its 3 s connect
    # timeout, and the window + 10 s target needs the probe period well under 10 s (ADR 0325).
    probe_interval_seconds: float = Field(
        2.0, gt=0, description="how often an observer probes and publishes"
    )
    observer_id: str | None = Field(
        None, description="this observer's name, unique per observer; default the host name"
    )
    store: BackupDestination | None = Field(
        None,
        description="shared object store for observations and the failover lock, outside "
        "region A; default the last of backup.destinations",
    )

    @field_validator("observer_id")
    @classmethod
    def _observer_id(cls, value: str | None) -> str | None:
        if value is not None and not OBSERVER_ID.fullmatch(value):
            raise ValueError(
                "1 to 64 letters, digits, '.', '_' or '-', starting with a "
                "letter or digit (it names an object in the store)"
            )
        return value

    @model_validator(mode="after")
    def _coherent(self) -> DrAutoSettings:
        if not self.enabled:
            return self
        if self.quorum < 2:
            raise ValueError(
                "quorum must be at least 2 when enabled: one observer cannot tell a dead "
                "primary from its own cut-off network"
            )
        if self.unreachable_seconds < 2 * self.probe_interval_seconds:
            raise ValueError(
                "unreachable_seconds must be at least 2 x probe_interval_seconds, so that "
                "one failed probe never triggers a failover"
            )
        if self.observation_ttl_seconds < 2 * self.probe_interval_seconds:
            raise ValueError(
                "observation_ttl_seconds must be at least 2 x probe_interval_seconds, or "
                "live observers' observations go stale between two probes"
            )
        return self


class DrSettings(Section):
    standby_url: SecretStr | None = Field(
        None, description="libpq URL of the standby (region B), as the primary is database.url"
    )
    synchronous: bool = False
    slot_name: str = "auth_dr_standby"
    max_lag_bytes: int = Field(16 * 1024 * 1024, ge=0)
    auto: DrAutoSettings = Field(default_factory=DrAutoSettings)

    @model_validator(mode="after")
    def _auto_needs_standby(self) -> DrSettings:
        if self.auto.enabled and self.standby_url is None:
            raise ValueError("auto.enabled needs standby_url: there is no standby to promote")
        return self
