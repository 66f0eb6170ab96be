"""Shared fixtures: real SQLite and PostgreSQL databases, real Redis, the app over HTTP.

Helpers live in tests/support/ (test modules import those, never this file or each other);
the plugins below add the session-wide checks and the fixtures of several directories.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from redis import Redis as SyncRedis

from auth_service.config.settings import Settings
from auth_service.db.engine import create_engine
from auth_service.db.migrate import upgrade_to_head
from tests.support.api import Api, running_api
from tests.support.services import (
    BOTH_DATABASES,
    POSTGRES_URL,
    REDIS_TEST_DB,
    REDIS_URL,
    asyncpg_dsn,
    pg_admin,
    postgres_url_of,
    service_missing,
)
from tests.support.settings import make_settings

pytest_plugins = (
    "pytester",
    "tests.support.log_secrets",
    "tests.support.loop_leftovers",
    "tests.support.object_store",
    "tests.support.required",
    "tests.support.prometheus",
    "tests.support.smtp",
    # Journeys: Chromium (browser, browser_context, page), the Node harness, and a live server
    # on PostgreSQL with real SMTP. tests/README.md tells how to install and run them.
    "tests.support.browser",
    "tests.support.harness",
    "tests.support.live_server",
)

USER_TABLES = (
    "user_external_ids",
    "webhook_deliveries",
    "webhook_event_types",
    "webhook_subscriptions",
    "mfa_enrolment_grace",
    "mfa_passkeys",
    "mfa_recovery_codes",
    "mfa_totp",
    "flows",
    "jobs",
    "refresh_tokens",
    "sessions",
    "one_time_tokens",
    "user_roles",
    "audit_events",
    "signing_keys",
    "users",
    "oauth_clients",
    "oauth_revoked_access_tokens",
    "oauth_used_jtis",
    "oauth_dpop_bindings",
    "oauth_device_codes",
    "federation_connectors",
    "federated_identities",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what a test needs from the fixtures it uses, so that `-m "not postgres"` and
    `-m "not redis"` leave out every test that would reach those servers."""
    for item in items:
        needs = set(getattr(item, "fixturenames", ()))
        if "postgres_database" in needs:
            item.add_marker(pytest.mark.postgres)
        if "redis_url" in needs:
            item.add_marker(pytest.mark.redis)


# ---- databases ---------------------------------------------------------------------------------


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session; dropped at the end."""
    name = f"auth_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        _run(pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        service_missing("PostgreSQL", f"{POSTGRES_URL}: {exc}")
    url = postgres_url_of(name)

    async def migrate() -> None:
        engine = create_engine(Settings(database={"url": url}))  # type: ignore[arg-type]
        try:
            await upgrade_to_head(engine)
        finally:
            await engine.dispose()

    _run(migrate())
    yield url
    _run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each test gets a copy (fresh state, no migration cost)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "auth.db"

    async def migrate() -> None:
        engine = create_engine(Settings(database={"url": f"sqlite+aiosqlite:///{path}"}))  # type: ignore[arg-type]
        try:
            await upgrade_to_head(engine)
        finally:
            await engine.dispose()

    _run(migrate())
    return path


@pytest.fixture(params=BOTH_DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on the embedded SQLite default and on PostgreSQL."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = tmp_path / "auth.db"
        shutil.copy(template, target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    url: str = request.getfixturevalue("postgres_database")
    tables = ", ".join(USER_TABLES)

    async def truncate() -> None:
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await conn.execute(f"TRUNCATE {tables} CASCADE")
            # Roles are data too (apply creates them); the built-in ones come with the schema.
            await conn.execute("DELETE FROM roles WHERE name <> 'admin'")
        finally:
            await conn.close()

    _run(truncate())
    yield url


@pytest.fixture
def redis_url() -> str:
    """A real Redis, emptied for the test (AUTH_TEST_REDIS_DB, default 15; never 0)."""
    url = REDIS_URL.rsplit("/", 1)[0] + f"/{REDIS_TEST_DB}"
    try:
        client = SyncRedis.from_url(url, socket_connect_timeout=2)
        client.flushdb()
        client.close()
    except Exception as exc:
        service_missing("Redis", f"{url}: {exc}")
    return url


# ---- settings, app, client ---------------------------------------------------------------------


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings for one test: parametrise indirectly, or override the fixture in a module."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
def settings(tmp_path: Path, database_url: str, settings_overrides: dict[str, Any]) -> Settings:
    return make_settings(tmp_path, database_url, **settings_overrides)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    async with running_api(settings) as running:
        yield running
