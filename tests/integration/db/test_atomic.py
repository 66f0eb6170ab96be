"""Database.atomic: the services' own operations, each written as its own transaction, join
ONE transaction (ADR 0930), on SQLite and PostgreSQL; their audit events are logged only
when it commits."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from auth_service.audit.context import RequestContext
from auth_service.oauth.client_metadata import ClientSpec, ClientType
from auth_service.services import Services, build_services
from auth_service.webhooks.service import WebhookSpec
from tests.support.settings import make_settings

CTX = RequestContext(request_id="atomic-test")
SPEC = ClientSpec(name="a", client_type=ClientType.public, redirect_uris=("https://a/cb",))


async def _services(tmp_path: Path, database_url: str) -> Services:
    return build_services(
        make_settings(
            tmp_path,
            database_url,
            webhooks={"allow_http": True, "allowed_networks": ["127.0.0.1/32"]},
        )
    )


async def _part_way(services: Services) -> None:
    async with services.db.atomic():
        await services.accounts.roles.create("auditor", None, CTX)
        await services.oauth.clients.create(SPEC, CTX, client_id="one")
        await services.webhooks.create(
            WebhookSpec("http://127.0.0.1:9/h", ["user.registered"]), CTX
        )
        # The services read their own uncommitted writes inside the block.
        assert (await services.oauth.clients.get("one")).name == "a"
        assert "auditor" in [r.name for r in await services.accounts.roles.all()]
        raise RuntimeError("part way")


async def test_everything_inside_is_undone_when_the_block_raises(
    tmp_path: Path, database_url: str
) -> None:
    services = await _services(tmp_path, database_url)
    try:
        with structlog.testing.capture_logs() as logs, pytest.raises(RuntimeError):
            await _part_way(services)
        assert [r.name for r in await services.accounts.roles.all()] == ["admin"]
        assert await services.oauth.clients.list() == []
        assert await services.webhooks.subscriptions() == []
        assert (await services.audit.query())[1] == 0
        # No log line tells of a change the database undid.
        assert [e for e in logs if e.get("log_type") == "audit"] == []
    finally:
        await services.close()


async def test_a_dry_run_writes_nothing_and_a_commit_logs_each_event_once(
    tmp_path: Path, database_url: str
) -> None:
    services = await _services(tmp_path, database_url)
    try:
        async with services.db.atomic(commit=False):
            await services.oauth.clients.create(SPEC, CTX, client_id="dry")
        assert await services.oauth.clients.find("dry") is None

        with structlog.testing.capture_logs() as logs:
            async with services.db.atomic():
                await services.oauth.clients.create(SPEC, CTX, client_id="kept")
                await services.oauth.clients.update("kept", CTX, name="b")
                assert [e["event"] for e in logs if e.get("log_type") == "audit"] == []
        assert (await services.oauth.clients.get("kept")).name == "b"
        assert [e["event"] for e in logs if e.get("log_type") == "audit"] == [
            "oauth.client_created",
            "oauth.client_updated",
        ]
        with pytest.raises(RuntimeError, match="do not nest"):
            async with services.db.atomic(), services.db.atomic():
                pass
    finally:
        await services.close()
