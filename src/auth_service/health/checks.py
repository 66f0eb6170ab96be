"""Dependency checks and the registry that builds them from settings.

Each check reads the service graph when it runs (not when it is built) so a hot-reloaded
database URL is checked on its new pool.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import ssl
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import aiosmtplib
import httpx
from sqlalchemy import text

from auth_service.config.backup import BackupSettings
from auth_service.config.sections import HttpEndpoint, TlsHost
from auth_service.config.settings import Settings
from auth_service.db.engine import Backend, sqlite_file
from auth_service.db.revision import current_revision, head_revision
from auth_service.health.monitor import Check, CheckFn, CheckResult, HealthMonitor, Status
from auth_service.keys.service import KeyStatus
from auth_service.observability import metrics

if TYPE_CHECKING:
    from auth_service.services import Services


def database_check(services: Services) -> CheckFn:
    """Connects, accepts writes (not a standby, not read-only) and the schema is at head."""
    head = head_revision()

    async def check() -> CheckResult:
        db = services.db
        async with db.engine.connect() as conn:
            if db.backend is Backend.postgresql:
                row = (
                    await conn.execute(
                        text("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')")
                    )
                ).one()
                if row[0]:
                    return CheckResult(Status.down, "database is a standby (read-only)")
                if row[1] == "on":
                    return CheckResult(Status.down, "database is read-only")
            else:
                await conn.execute(text("SELECT 1"))
        path = sqlite_file(db.engine.url)
        if path is not None and not os.access(path, os.W_OK):
            return CheckResult(Status.down, "database file is read-only")
        revision = await current_revision(db.engine)
        if revision != head:
            return CheckResult(Status.degraded, f"schema at {revision}, code expects {head}")
        role = "primary" if db.backend is Backend.postgresql else "embedded"
        return CheckResult(Status.up, f"{db.backend} {role}, schema at head")

    return check


def redis_check(services: Services) -> CheckFn:
    """PING answers. Not critical by default: while Redis is out the rate limits and the
    lockout count in each process (ADR 0014), so the service is degraded, not down."""

    async def check() -> CheckResult:
        if services.redis is None:
            return CheckResult(Status.down, "redis is not configured")
        try:
            await services.redis.ping()
        except Exception as exc:
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):
                return CheckResult(
                    Status.down,
                    "TLS certificate of Redis refused (check redis.ssl_ca_cert and the host "
                    "name in redis.url): rate limits and lockout count in-process",
                )
            # The type only: the message of a connection error can carry the URL.
            return CheckResult(
                Status.down,
                f"PING failed ({type(exc).__name__}): rate limits and lockout count in-process",
            )
        return CheckResult(Status.up)

    return check


def smtp_check(services: Services) -> CheckFn:
    """The relay accepts a connection and answers EHLO; nothing is sent."""

    async def check() -> CheckResult:
        mail = services.settings.mail
        client = aiosmtplib.SMTP(
            hostname=mail.smtp_host,
            port=mail.smtp_port,
            use_tls=mail.smtp_tls,
            start_tls=False,
            validate_certs=mail.smtp_validate_certs,
            timeout=mail.smtp_timeout_seconds,
        )
        await client.connect()
        try:
            await client.ehlo()
        finally:
            client.close()
        return CheckResult(Status.up, f"{mail.smtp_host}:{mail.smtp_port}")

    return check


def disk_check(
    paths: list[Path],
    warning_percent: float,
    critical_percent: float,
    created_lazily: frozenset[Path] = frozenset(),
) -> CheckFn:
    """Free space of each path; ``created_lazily`` paths may not exist yet (data_dir)."""

    async def check() -> CheckResult:
        worst = Status.up
        notes = []
        for path in paths:
            if path in created_lazily and not path.exists():
                continue
            try:
                usage = await asyncio.to_thread(shutil.disk_usage, path)
            except OSError as exc:
                return CheckResult(Status.down, f"{path}: {exc.strerror}")
            free = 100.0 * usage.free / usage.total if usage.total else 0.0
            notes.append(f"{path} {free:.1f}% free")
            if free < critical_percent:
                worst = Status.down
            elif free < warning_percent and worst is Status.up:
                worst = Status.degraded
        return CheckResult(worst, ", ".join(notes) or "no directory to check yet")

    return check


def signing_keys_check(services: Services, max_age_days: int) -> CheckFn:
    """An active key signs, and it is younger than the rotation policy allows."""

    async def check() -> CheckResult:
        await services.keys.signer()
        active = [k for k in await services.keys.list_keys() if k.status == KeyStatus.active]
        if not active or active[-1].activated_at is None:
            return CheckResult(Status.down, "no active signing key")
        activated = datetime.fromisoformat(active[-1].activated_at)
        if activated.tzinfo is None:
            activated = activated.replace(tzinfo=UTC)
        age_days = (datetime.now(UTC) - activated).total_seconds() / 86400
        if age_days > max_age_days:
            return CheckResult(
                Status.degraded,
                f"active key is {age_days:.0f} days old (rotate: auth-service keys rotate)",
            )
        return CheckResult(Status.up, f"active key {active[-1].kid[:8]}")

    return check


def backup_freshness_check(settings: BackupSettings, data_dir: Path) -> CheckFn:
    """Degraded when the newest full backup is older than the RPO (or there is none)."""
    # Imported here: the object-storage client loads only where backups are configured.
    from auth_service.backup.catalog import Catalog
    from auth_service.backup.errors import BackupError
    from auth_service.backup.observe import refresh_from_catalog

    async def check() -> CheckResult:
        try:
            newest = await refresh_from_catalog(Catalog(settings, data_dir))
        except BackupError as exc:
            return CheckResult(Status.degraded, str(exc))
        if newest is None or newest.stop_time is None:
            return CheckResult(Status.degraded, "no full backup yet")
        age = (datetime.now(UTC) - newest.stop_time).total_seconds()
        if age > settings.rpo_seconds:
            return CheckResult(
                Status.degraded,
                f"newest full backup {newest.id} is {age:.0f}s old "
                f"(RPO {settings.rpo_seconds:.0f}s)",
            )
        return CheckResult(Status.up, f"newest full backup {newest.id} is {age:.0f}s old")

    return check


def http_check(endpoint: HttpEndpoint) -> CheckFn:
    pattern = re.compile(endpoint.body_pattern) if endpoint.body_pattern else None

    async def check() -> CheckResult:
        async with httpx.AsyncClient(timeout=endpoint.timeout_seconds) as client:
            response = await client.get(endpoint.url)
        if response.status_code != endpoint.expected_status:
            return CheckResult(
                Status.down, f"status {response.status_code}, expected {endpoint.expected_status}"
            )
        if pattern is not None and not pattern.search(response.text):
            return CheckResult(Status.down, "body does not match body_pattern")
        return CheckResult(Status.up, f"status {response.status_code}")

    return check


def tls_check(target: TlsHost) -> CheckFn:
    """Chain and hostname verified by the TLS handshake; days left against the thresholds."""
    context = ssl.create_default_context(cafile=str(target.ca_file) if target.ca_file else None)

    async def check() -> CheckResult:
        try:
            _, writer = await asyncio.open_connection(
                target.host, target.port, ssl=context, server_hostname=target.host
            )
        except ssl.SSLCertVerificationError as exc:
            return CheckResult(Status.down, f"certificate rejected: {exc.verify_message}")
        try:
            cert = writer.get_extra_info("peercert")
        finally:
            writer.close()
        not_after = ssl.cert_time_to_seconds(cert["notAfter"])
        metrics.TLS_CERT_EXPIRY.labels(target.host).set(not_after)
        days = (not_after - time.time()) / 86400
        message = f"certificate expires in {days:.0f} days"
        if days < target.critical_days:
            return CheckResult(Status.down, message)
        if days < target.warning_days:
            return CheckResult(Status.degraded, message)
        return CheckResult(Status.up, message)

    return check


def build_monitor(services: Services) -> HealthMonitor:
    """A monitor with the checks the services' settings ask for (not started)."""
    monitor = HealthMonitor()
    for check in build_checks(services, services.settings):
        monitor.register(check)
    return monitor


def build_checks(services: Services, settings: Settings) -> list[Check]:
    """The checks these settings ask for, with their per-check tuning applied."""
    health = settings.health
    specs: list[tuple[str, CheckFn, bool, float | None]] = [
        ("database", database_check(services), True, None),
    ]
    if services.redis is not None:
        specs.append(("redis", redis_check(services), False, None))
    if settings.mail.backend == "smtp":
        specs.append(("smtp", smtp_check(services), False, 30.0))
    disk_paths = [settings.data_dir, *health.disk_paths]
    specs.append(
        (
            "disk",
            disk_check(
                disk_paths,
                health.disk_warning_free_percent,
                health.disk_critical_free_percent,
                frozenset({settings.data_dir}),
            ),
            False,
            30.0,
        )
    )
    specs.append(
        ("signing_keys", signing_keys_check(services, health.signing_key_max_age_days), True, 30.0)
    )
    if settings.backup.key is not None:
        freshness = backup_freshness_check(settings.backup, settings.data_dir)
        specs.append(("backup", freshness, False, 300.0))
    # The endpoint's own timeout bounds the HTTP request; the check's must not cut it first.
    own_timeouts: dict[str, float] = {}
    for endpoint in health.http_endpoints:
        specs.append((f"http:{endpoint.name}", http_check(endpoint), endpoint.critical, None))
        own_timeouts[f"http:{endpoint.name}"] = endpoint.timeout_seconds + 0.5
    for host in health.tls_hosts:
        specs.append((f"tls:{host.host}:{host.port}", tls_check(host), False, 3600.0))
    checks = []
    for name, fn, critical, interval in specs:
        tuning = health.checks.get(name)
        if tuning is not None and not tuning.enabled:
            continue
        checks.append(
            Check(
                name,
                fn,
                interval_seconds=(tuning and tuning.interval_seconds)
                or interval
                or health.interval_seconds,
                timeout_seconds=(tuning and tuning.timeout_seconds)
                or own_timeouts.get(name, health.timeout_seconds),
                critical=tuning.critical
                if tuning is not None and tuning.critical is not None
                else critical,
            )
        )
    return checks
