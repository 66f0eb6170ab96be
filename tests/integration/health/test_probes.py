"""Probes over HTTP on the management app, on SQLite and PostgreSQL."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from auth_service.db.engine import Backend, Database, backend_of
from auth_service.health.checks import database_check
from auth_service.health.monitor import Status
from auth_service.services import Services
from tests.support.api import Api


async def test_probes_when_healthy(api: Api) -> None:
    m = api.management
    for path in ("/health/live", "/health/ready", "/health/started"):
        r = await m.get(path)
        assert r.status_code == 200, (path, r.text)
        assert r.json()["status"] == "UP"
        assert r.headers["cache-control"] == "no-store"
    body = (await m.get("/health")).json()
    assert body["status"] == "up", body
    assert {"database", "signing_keys", "disk"} <= set(body["checks"])
    db = body["checks"]["database"]
    assert db["status"] == "up"
    assert db["message"].endswith("schema at head")
    assert db["critical"] is True
    assert db["consecutive_failures"] == 0
    assert db["last_success"] is not None
    assert {"latency_ms", "last_checked", "message"} <= set(db)
    assert body["version"]


async def test_draining_fails_readiness_but_not_liveness(api: Api) -> None:
    runtime = api.management._transport.app.state.runtime  # type: ignore[attr-defined]
    runtime.monitor.start_draining()
    r = await api.management.get("/health/ready")
    assert r.status_code == 503
    assert r.json() == {"status": "DOWN", "detail": "draining"}
    assert (await api.management.get("/health/live")).status_code == 200
    # Requests keep being served while draining.
    assert (await api.client.get("/.well-known/jwks.json")).status_code == 200


async def test_a_critical_check_down_fails_readiness(api: Api) -> None:
    monitor = api.management._transport.app.state.monitor  # type: ignore[attr-defined]
    state = monitor.states["database"]
    state.status = Status.down
    r = await api.management.get("/health/ready")
    assert r.status_code == 503
    assert r.json()["detail"] == "a critical check is down: database"
    full = await api.management.get("/health")
    assert full.status_code == 503
    assert full.json()["status"] == "down"


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return getattr(request, "param", {})


@pytest.mark.parametrize(
    "settings_overrides", [{"health": {"expose_details": False}}], indirect=True
)
async def test_details_can_be_hidden(api: Api) -> None:
    body = (await api.management.get("/health")).json()
    assert set(body) == {"status", "version"}


async def test_read_only_postgres_is_down(database_url: str) -> None:
    if backend_of(database_url) is not Backend.postgresql:
        pytest.skip("read-only detection is PostgreSQL's (SQLite is a local file)")
    engine = create_async_engine(
        database_url, connect_args={"server_settings": {"default_transaction_read_only": "on"}}
    )
    try:
        services = cast(Services, SimpleNamespace(db=Database(engine)))
        result = await database_check(services)()
    finally:
        await engine.dispose()
    assert result.status is Status.down
    assert result.message == "database is read-only"
