"""The app over HTTP, as API tests drive it."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from auth_service.app import create_app
from auth_service.audit.context import RequestContext
from auth_service.config.settings import Settings
from auth_service.services import Services, build_services
from tests.support.mail import decode_mail, tokens_in_mail
from tests.support.secrets import EVENT_HOOKS, remember
from tests.support.settings import PASSWORD

# Parsing and token checks do not touch the database: one backend is enough for them.
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


class Api:
    """The app over HTTP, plus the services behind it for white-box assertions."""

    def __init__(
        self, client: httpx.AsyncClient, management: httpx.AsyncClient, services: Services
    ):
        self.client = client
        self.management = management
        self.services = services

    @property
    def outbox(self) -> Path:
        return self.services.settings.outbox_dir

    async def mail(self) -> list[str]:
        await self.services.mail.join()
        if not self.outbox.exists():
            return []
        return [decode_mail(p.read_bytes()) for p in sorted(self.outbox.glob("*.eml"))]

    async def mailed_token(self, marker: str) -> str:
        """The ``token=`` of the newest mail containing ``marker`` (``reset-password``...)."""
        mail = next(m for m in reversed(await self.mail()) if marker in m)
        found = tokens_in_mail(mail)
        assert found, mail
        return found[0]

    async def register(self, email: str, password: str, name: str | None = None) -> httpx.Response:
        body: dict[str, Any] = {"email": email, "password": password}
        if name is not None:
            body["name"] = name
        return await self.client.post("/v1/auth/register", json=body)

    async def login(self, email: str, password: str, **kw: Any) -> httpx.Response:
        return await self.client.post(
            "/v1/auth/login", json={"email": email, "password": password}, **kw
        )

    async def user(self, email: str | None = None, password: str = PASSWORD) -> dict[str, Any]:
        """Register and log in a fresh user; return the login body plus email/password."""
        email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
        r = await self.register(email, password)
        assert r.status_code == 202, r.text
        r = await self.login(email, password)
        assert r.status_code == 200, r.text
        return {**r.json(), "email": email, "password": password}

    async def requests_counted(
        self, route: str, method: str = "GET", status_class: str = "2xx"
    ) -> float:
        """``auth_http_requests_total`` of one route, method and status class, as scraped."""
        scrape = (await self.management.get("/metrics")).text
        for line in scrape.splitlines():
            if (
                line.startswith("auth_http_requests_total{")
                and f'route="{route}"' in line
                and f'method="{method}"' in line
                and f'status_class="{status_class}"' in line
            ):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    async def admin_headers(self) -> dict[str, str]:
        """The Authorization header of a fresh admin (the API has no way to make the first:
        it is created through the service, as `users create --admin` does, then logs in)."""
        email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
        await self.services.accounts.registration.create_user(
            email, PASSWORD, admin=True, ctx=RequestContext()
        )
        r = await self.login(email, PASSWORD)
        assert r.status_code == 200, r.text
        return self.bearer(r.json()["access_token"])

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def json_body(response: httpx.Response) -> Any:
    assert response.headers["content-type"].startswith(
        ("application/json", "application/problem+json")
    )
    return json.loads(response.content)


@asynccontextmanager
async def running_api(settings: Settings) -> AsyncIterator[Api]:
    """The app built from ``settings``, started (lifespan) and driven over HTTP in-process.

    Every password and token the client sends or receives, or the app mails, is collected
    for the session's check that none reached the logs.
    """
    services = build_services(settings)
    app = create_app(settings, services)
    try:
        # Generous: on a busy shared machine a start (migration check, keys, warm-up hash)
        # has taken longer than the 5 s default; a hang still fails the test's own timeout.
        async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
            transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
            mtransport = httpx.ASGITransport(app=app.state.management)
            async with (
                httpx.AsyncClient(
                    transport=transport, base_url="http://testserver", event_hooks=EVENT_HOOKS
                ) as client,
                httpx.AsyncClient(transport=mtransport, base_url="http://management") as mclient,
            ):
                api = Api(client, mclient, services)
                yield api
                for text in await api.mail():
                    remember(*tokens_in_mail(text))
    finally:
        await services.close()
