"""Helpers for backup tests: config files for the CLI, seeding, verify and restore."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from auth_service.audit.context import RequestContext
from auth_service.cli.main import app
from auth_service.config.settings import Settings
from auth_service.services import build_services
from tests.support.settings import TEST_MASTER_KEY, make_settings, write_config

PASSWORD = "Tr0ub4dor&3-horse"
CTX = RequestContext(ip="198.51.100.9", request_id="test")
BIN = Path(sys.executable).parent


def cli(config: Path, *args: str) -> Any:
    """Run `auth-service --config CONFIG ARGS` in-process; returns the click Result."""
    return CliRunner().invoke(app, ["--config", str(config), *args], catch_exceptions=False)


async def register_users(settings: Settings, emails: list[str]) -> None:
    services = build_services(settings)
    try:
        for email in emails:
            await services.accounts.registration.register(email, PASSWORD, None, CTX)
    finally:
        await services.close()


async def can_login(settings: Settings, email: str) -> bool:
    services = build_services(settings)
    try:
        await services.accounts.credentials.authenticate(email, PASSWORD, CTX)
        return True
    except Exception:
        return False
    finally:
        await services.close()


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def env_without_aws() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def sqlite_setup(
    tmp_path: Path, sqlite_template: Path, key: str, dest: dict[str, Any]
) -> tuple[Settings, Path]:
    """A migrated SQLite database backed up to ``dest``: settings, and the CLI's config file."""
    db = tmp_path / "auth.db"
    shutil.copy(sqlite_template, db)
    data: dict[str, Any] = {
        "data_dir": str(tmp_path / "data"),
        "master_key": TEST_MASTER_KEY,
        "database": {"url": f"sqlite+aiosqlite:///{db}"},
        "passwords": {"argon2_memory_cost_kib": 1024, "argon2_time_cost": 1},
        "backup": {"key": key, "destinations": [dest]},
    }
    config = write_config(tmp_path / "config.yaml", data)
    return make_settings(tmp_path, data["database"]["url"], backup=data["backup"]), config


def assert_verify_and_restore(
    tmp_path: Path, settings: Settings, config: Path, backup_id: str, emails: list[str]
) -> None:
    """``verify --restore-test`` passes with a known user, and ``restore`` gives a database
    where every seeded user logs in."""
    from auth_service.backup.verify import with_database_url

    (tmp_path / "probe").write_text(PASSWORD)
    result = cli(
        config,
        "backup",
        "verify",
        backup_id,
        "--restore-test",
        "--probe-email",
        emails[0],
        "--probe-password-file",
        str(tmp_path / "probe"),
    )
    assert result.exit_code == 0, result.output
    assert "restore test passed" in result.output
    assert f"users: {len(emails)} rows as in the manifest" in result.output

    target = tmp_path / "restored.db"
    result = cli(config, "backup", "restore", backup_id, "--target", str(target))
    assert result.exit_code == 0, result.output
    restored = with_database_url(settings, f"sqlite+aiosqlite:///{target}")
    assert all(run(can_login(restored, e)) for e in emails)
