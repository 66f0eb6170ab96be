"""The backup-freshness health check and the backup metrics it sets."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from prometheus_client import REGISTRY

from auth_service.backup.catalog import Catalog
from auth_service.backup.engines import run_backup
from auth_service.health.checks import backup_freshness_check, build_checks
from auth_service.health.monitor import Status
from auth_service.services import build_services
from tests.support.settings import make_settings


def _settings(tmp_path: Path, sqlite_template: Path, **backup: object):  # type: ignore[no-untyped-def]
    db = tmp_path / "auth.db"
    shutil.copy(sqlite_template, db)
    return make_settings(
        tmp_path,
        f"sqlite+aiosqlite:///{db}",
        backup={"key": secrets.token_urlsafe(32), **backup},
    )


async def test_degraded_without_backup_then_up_then_stale(
    tmp_path: Path, sqlite_template: Path
) -> None:
    settings = _settings(tmp_path, sqlite_template)
    check = backup_freshness_check(settings.backup, settings.data_dir)
    result = await check()
    assert result.status is Status.degraded
    assert "no full backup yet" in result.message

    manifest = await run_backup(settings, Catalog(settings.backup, settings.data_dir), "full")
    result = await check()
    assert result.status is Status.up
    assert manifest.id in result.message
    stamp = REGISTRY.get_sample_value(
        "auth_backup_last_success_timestamp_seconds", {"kind": "full"}
    )
    assert stamp == manifest.stop_time.timestamp()  # type: ignore[union-attr]
    assert REGISTRY.get_sample_value("auth_backup_bytes", {"kind": "full"}) == manifest.stored_bytes

    catalog = Catalog(settings.backup, settings.data_dir)
    await catalog.record_verification(await catalog.verify(), restore_tested=False)
    await check()
    verified = REGISTRY.get_sample_value("auth_backup_last_verification_timestamp_seconds")
    assert verified == (await catalog.last_verification()).timestamp()  # type: ignore[union-attr]

    stale_check = backup_freshness_check(
        settings.backup.model_copy(update={"rpo_seconds": 0.001}), settings.data_dir
    )
    result = await stale_check()
    assert result.status is Status.degraded
    assert "RPO" in result.message


def test_registered_only_when_backups_are_configured(tmp_path: Path, sqlite_template: Path) -> None:
    with_key = _settings(tmp_path, sqlite_template)
    services = build_services(with_key)
    try:
        assert "backup" in [c.name for c in build_checks(services, with_key)]
    finally:
        services.hasher.close()
    without = with_key.model_copy(
        update={"backup": with_key.backup.model_copy(update={"key": None})}
    )
    services = build_services(without)
    try:
        assert "backup" not in [c.name for c in build_checks(services, without)]
    finally:
        services.hasher.close()
