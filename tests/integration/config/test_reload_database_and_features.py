"""Hot reload of feature flags and of the database itself (a drained pool swap)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from auth_service.config.settings import Settings
from auth_service.db.engine import Backend, backend_of, create_engine
from auth_service.db.migrate import upgrade_to_head
from tests.support.api import Api
from tests.support.reload import dump, runtime_of
from tests.support.services import pg_admin, postgres_url_of


async def _reload_with(api: Api, tmp_path: Path, change: dict[str, dict[str, Any]]) -> Any:
    data = dump(api.services.settings)
    for section, values in change.items():
        data[section] = {**data.get(section, {}), **values}
    path = tmp_path / "auth.yaml"
    path.write_text(yaml.safe_dump(data))
    return await runtime_of(api, path).reloader.reload("test")


async def test_feature_flags_switch_flows_off_and_on_without_restart(
    api: Api, tmp_path: Path
) -> None:
    user = await api.user()
    result = await _reload_with(
        api, tmp_path, {"features": {"registration": False, "password_reset": False}}
    )
    assert result.result == "applied", result
    assert result.restart_required == []
    r = await api.register("late@example.com", "Tr0ub4dor&3-horse")
    assert r.status_code == 403
    assert r.json()["type"].endswith("/feature-disabled")
    r = await api.client.post("/v1/auth/password/forgot", json={"email": user["email"]})
    assert r.status_code == 403
    # Everything else keeps working.
    assert (await api.login(user["email"], user["password"])).status_code == 200
    result = await _reload_with(api, tmp_path, {"features": {"registration": True}})
    assert result.result == "applied"
    assert (await api.register("late@example.com", "Tr0ub4dor&3-horse")).status_code == 202


async def _second_database(database_url: str, tmp_path: Path) -> tuple[str, Any]:
    """Another migrated database of the same engine; returns its URL and a cleanup."""
    if backend_of(database_url) is Backend.sqlite:
        target = tmp_path / "second.db"
        shutil.copy(database_url.removeprefix("sqlite+aiosqlite:///"), target)
        url = f"sqlite+aiosqlite:///{target}"

        async def nothing() -> None:
            return None

        # A copy holds the first database's users; empty it so the two are told apart.
        engine = create_engine(Settings(database={"url": url}))  # type: ignore[arg-type]
        async with engine.begin() as conn:
            from sqlalchemy import text

            for table in ("refresh_tokens", "sessions", "one_time_tokens", "user_roles", "users"):
                await conn.execute(text(f"DELETE FROM {table}"))
        await engine.dispose()
        return url, nothing
    name = f"auth_swap_{uuid.uuid4().hex[:8]}"
    await pg_admin(f'CREATE DATABASE "{name}"')
    url = postgres_url_of(name)
    engine = create_engine(Settings(database={"url": url}))  # type: ignore[arg-type]
    await upgrade_to_head(engine)
    await engine.dispose()

    async def drop() -> None:
        await pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url, drop


async def test_database_url_swaps_without_restart(
    api: Api, tmp_path: Path, database_url: str
) -> None:
    before = await api.user()
    second, cleanup = await _second_database(database_url, tmp_path)
    try:
        result = await _reload_with(api, tmp_path, {"database": {"url": second}})
        assert result.result == "applied", result
        assert "database.url" in result.applied
        # New requests go to the new database: the old user is not there, a new one is.
        assert (await api.login(before["email"], before["password"])).status_code == 401
        after = await api.user()
        me = await api.client.get("/v1/users/me", headers=api.bearer(after["access_token"]))
        assert me.status_code == 200
        ready = await api.management.get("/health/ready")
        assert ready.status_code == 200
    finally:
        # Back to the first database before the second is dropped: the app (its job worker,
        # the fixture's wait for mail) keeps using the database until it stops.
        await _reload_with(api, tmp_path, {"database": {"url": database_url}})
        await api.services.db.dispose()
        await cleanup()


async def test_unusable_database_url_is_refused_and_nothing_changes(
    api: Api, tmp_path: Path, database_url: str
) -> None:
    user = await api.user()
    bad = (
        "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"
        if backend_of(database_url) is Backend.postgresql
        else f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'never.db'}"
    )
    # Also change another reloadable key: a refused reload must apply none of it.
    result = await _reload_with(
        api, tmp_path, {"database": {"url": bad}, "lockout": {"threshold": 1}}
    )
    assert result.result == "error", result
    assert "database" in result.error
    assert api.services.settings.lockout.threshold != 1
    assert (await api.login(user["email"], user["password"])).status_code == 200


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}
