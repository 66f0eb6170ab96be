"""The base of every settings section, and the sections for health checks and alerting.

Health and alerting are kept out of ``config.settings`` so the shared module only gains two
fields; every section follows the same rules through ``Section``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class Section(BaseModel):
    """A group of settings: unknown keys are errors (a typo in a config file must not silently
    fall back to a default), and defaults are validated like given values."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class CheckTuning(Section):
    """Per-check overrides of schedule and criticality, keyed by check name."""

    enabled: bool = True
    interval_seconds: float | None = Field(None, gt=0, le=3600)
    timeout_seconds: float | None = Field(None, gt=0, le=120)
    critical: bool | None = None


class HttpEndpoint(Section):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")
    url: str
    expected_status: int = Field(200, ge=100, le=599)
    body_pattern: str | None = Field(None, description="regular expression the body must match")
    timeout_seconds: float = Field(5.0, gt=0, le=60)
    critical: bool = False

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return v

    @field_validator("body_pattern")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"body_pattern is not a regular expression ({exc})") from None
        return v


class TlsHost(Section):
    host: str = Field(min_length=1)
    port: int = Field(443, ge=1, le=65535)
    warning_days: int = Field(21, ge=1, le=365)
    critical_days: int = Field(7, ge=0, le=365)
    ca_file: Path | None = Field(None, description="CA bundle; default: the system store")

    @model_validator(mode="after")
    def _thresholds(self) -> TlsHost:
        if self.critical_days >= self.warning_days:
            raise ValueError("critical_days must be below warning_days")
        return self


class HealthSettings(Section):
    expose_details: bool = Field(
        True, description="false: /health answers only the overall status, not each check"
    )
    drain_delay_seconds: float = Field(
        0.0,
        ge=0,
        le=300,
        description="after SIGTERM, keep serving with readiness 503 this long before closing",
    )
    interval_seconds: float = Field(5.0, gt=0, le=3600, description="default check interval")
    timeout_seconds: float = Field(2.0, gt=0, le=120, description="default check timeout")
    checks: dict[str, CheckTuning] = Field(
        default_factory=dict, description="per-check overrides, e.g. {smtp: {enabled: false}}"
    )
    disk_paths: list[Path] = Field(
        default_factory=list, description="directories checked for free space besides data_dir"
    )
    disk_warning_free_percent: float = Field(10.0, ge=0, le=100)
    disk_critical_free_percent: float = Field(5.0, ge=0, le=100)
    signing_key_max_age_days: int = Field(
        90, ge=1, le=3650, description="an older active key makes signing_keys degraded"
    )
    http_endpoints: list[HttpEndpoint] = Field(default_factory=list)
    tls_hosts: list[TlsHost] = Field(default_factory=list)

    @model_validator(mode="after")
    def _disk(self) -> HealthSettings:
        if self.disk_critical_free_percent > self.disk_warning_free_percent:
            raise ValueError("disk_critical_free_percent must not exceed disk_warning_free_percent")
        return self


class Severity(StrEnum):
    info = "info"
    warning = "warning"
    critical = "critical"

    @property
    def rank(self) -> int:
        return ("info", "warning", "critical").index(self.value)


class _Channel(Section):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_.-]+$")
    tier: int = Field(
        0, ge=0, le=5, description="0 is notified at once; tier n after n escalation periods"
    )
    min_severity: Severity = Severity.warning


class AlertmanagerChannel(_Channel):
    type: Literal["alertmanager"]
    url: str = Field(description="Alertmanager base URL; alerts go to <url>/api/v2/alerts")


class SlackChannel(_Channel):
    type: Literal["slack"]
    webhook_url: SecretStr


class PagerDutyChannel(_Channel):
    type: Literal["pagerduty"]
    routing_key: SecretStr
    url: str = "https://events.pagerduty.com/v2/enqueue"


class EmailChannel(_Channel):
    type: Literal["email"]
    to: list[str] = Field(min_length=1)


class WebhookChannel(_Channel):
    type: Literal["webhook"]
    url: str
    secret: SecretStr = Field(description="HMAC-SHA256 key; signature in X-Auth-Signature")


Channel = Annotated[
    AlertmanagerChannel | SlackChannel | PagerDutyChannel | EmailChannel | WebhookChannel,
    Field(discriminator="type"),
]


class AlertingSettings(Section):
    enabled: bool = False
    channels: list[Channel] = Field(default_factory=list)
    cooldown_seconds: float = Field(
        3600.0, ge=0, description="no repeat notice for a firing alert within this time"
    )
    escalation_seconds: float = Field(
        900.0, gt=0, description="still firing after this long: notify the next tier"
    )
    timeout_seconds: float = Field(5.0, gt=0, le=60)
    max_attempts: int = Field(3, ge=1, le=10)
    retry_base_seconds: float = Field(0.5, gt=0, le=60)
    cluster_key_prefix: str = Field(
        "auth:alerts:", description="Redis key prefix that dedups notices across replicas"
    )

    @model_validator(mode="after")
    def _unique(self) -> AlertingSettings:
        names = [c.name for c in self.channels]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"channel names must be unique: {', '.join(dupes)}")
        return self
