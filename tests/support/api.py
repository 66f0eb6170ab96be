"""The app over HTTP, as API tests drive it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from auth_service.services import Services
from tests.support.mail import decode_mail
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
        assert r.status_code == 201, r.text
        r = await self.login(email, password)
        assert r.status_code == 200, r.text
        return {**r.json(), "email": email, "password": password}

    @staticmethod
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def json_body(response: httpx.Response) -> Any:
    assert response.headers["content-type"].startswith(
        ("application/json", "application/problem+json")
    )
    return json.loads(response.content)
