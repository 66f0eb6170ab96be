"""Shared fixtures: real SQLite and PostgreSQL databases, real Redis, the app over HTTP.

Services are found through AUTH_TEST_POSTGRES_URL / AUTH_TEST_REDIS_URL (defaults: the local
servers). When one is absent its tests skip with the reason, unless
AUTH_TEST_REQUIRE_SERVICES=1 (CI), where absence fails the run.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from redis import Redis as SyncRedis

from auth_service.app import create_app
from auth_service.config.settings import Settings
from auth_service.db.engine import create_engine
from auth_service.db.migrate import upgrade_to_head
from auth_service.observability.logging import configure_logging
from auth_service.security.aead import MasterKey
from auth_service.services import Services, build_services
from tests.support.secrets import SECRETS, collect_request_secrets, collect_response_secrets

# Fixtures for journeys: Chromium (browser, browser_context, page), the Node harness, and a
# live server on PostgreSQL with real SMTP. tests/README.md tells how to install and run them.
pytest_plugins = ["tests.support.browser", "tests.support.harness", "tests.support.live_server"]

REQUIRE_SERVICES = os.environ.get("AUTH_TEST_REQUIRE_SERVICES") == "1"
POSTGRES_URL = os.environ.get(
    "AUTH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("AUTH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# The database the suite owns and empties (never the default 0). Two suites running at once on
# one Redis (worktrees, a developer beside CI) each set their own.
REDIS_TEST_DB = int(os.environ.get("AUTH_TEST_REDIS_DB", "15"))

# Everything the suite logs goes here; tests/test_zz_log_secrets.py greps it for secrets.
LOG_FILE = Path(
    os.environ.get("AUTH_TEST_LOG_FILE")
    or Path(tempfile.gettempdir()) / f"auth-service-test-{os.getpid()}.log"
)

USER_TABLES = (
    "refresh_tokens",
    "sessions",
    "one_time_tokens",
    "user_roles",
    "audit_events",
    "signing_keys",
    "users",
    "oauth_clients",
    "oauth_revoked_access_tokens",
)


def service_missing(name: str, reason: str) -> None:
    message = f"{name} not reachable ({reason})"
    if REQUIRE_SERVICES:
        pytest.fail(message + " and AUTH_TEST_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


# ---- logging capture -------------------------------------------------------------------------


class _Tee:
    def __init__(self, path: Path) -> None:
        self._fh = path.open("a", encoding="utf-8")

    def write(self, text: str) -> int:
        self._fh.write(text)
        self._fh.flush()
        return len(text)

    def flush(self) -> None:
        self._fh.flush()


@pytest.fixture(scope="session", autouse=True)
def captured_log() -> Iterator[Path]:
    """Send every log line of the suite (structlog and stdlib) to LOG_FILE as JSON."""
    LOG_FILE.write_text("")
    from auth_service.config.settings import Environment, LoggingSettings

    tee = _Tee(LOG_FILE)
    # The tee is the output stream, so the JSON access-line fast path writes here too.
    configure_logging(
        LoggingSettings(level="DEBUG", format="json"),
        Environment.production,
        stream=tee,  # type: ignore[arg-type]
    )
    return LOG_FILE


# ---- databases ---------------------------------------------------------------------------------


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session; dropped at the end."""
    name = f"auth_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        _run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        service_missing("PostgreSQL", f"{POSTGRES_URL}: {exc}")
    base = POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    url = f"{base}/{name}"

    async def migrate() -> None:
        engine = create_engine(Settings(database={"url": url}))  # type: ignore[arg-type]
        try:
            await upgrade_to_head(engine)
        finally:
            await engine.dispose()

    _run(migrate())
    yield url
    _run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


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


@pytest.fixture(params=["sqlite", "postgresql"])
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
    dsn = _asyncpg_dsn(url)

    async def truncate() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f"TRUNCATE {tables} CASCADE")
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

TEST_MASTER_KEY = MasterKey.generate_text()


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    """Test settings: cheap argon2 so the suite is fast; generous limits unless a test sets them."""
    data: dict[str, Any] = {
        "data_dir": str(tmp_path / "data"),
        "master_key": TEST_MASTER_KEY,
        "database": {"url": database_url},
        "passwords": {"argon2_memory_cost_kib": 1024, "argon2_time_cost": 1, "hash_concurrency": 2},
        "rate_limits": {
            "login_per_ip": "1000/minute",
            "login_per_account": "1000/minute",
            "register_per_ip": "1000/minute",
            "forgot_per_ip": "1000/minute",
            "forgot_per_account": "1000/minute",
            "reset_per_ip": "1000/minute",
            "refresh_per_ip": "1000/minute",
            "verify_per_ip": "1000/minute",
        },
        "mail": {"max_attempts": 2, "retry_base_seconds": 0.05},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return Settings(**data)


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings for one test: parametrise indirectly, or override the fixture in a module."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
def settings(tmp_path: Path, database_url: str, settings_overrides: dict[str, Any]) -> Settings:
    return make_settings(tmp_path, database_url, **settings_overrides)


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

    async def user(
        self, email: str | None = None, password: str = "Tr0ub4dor&3-horse"
    ) -> dict[str, Any]:
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


async def _collect_request(request: httpx.Request) -> None:
    collect_request_secrets(request.content)


async def _collect_response(response: httpx.Response) -> None:
    await response.aread()
    collect_response_secrets(response.content)


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    services = build_services(settings)
    app = create_app(settings, services)
    try:
        async with LifespanManager(app):
            hooks = {"request": [_collect_request], "response": [_collect_response]}
            transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
            mtransport = httpx.ASGITransport(app=app.state.management)
            async with (
                httpx.AsyncClient(
                    transport=transport, base_url="http://testserver", event_hooks=hooks
                ) as client,
                httpx.AsyncClient(transport=mtransport, base_url="http://management") as mclient,
            ):
                yield Api(client, mclient, services)
                await services.mail.join()
                for text in await Api(client, mclient, services).mail():
                    SECRETS.update(t for t in _tokens_in_mail(text))
    finally:
        await services.close()


def decode_mail(raw: bytes) -> str:
    """Headers and the decoded text body (bodies are quoted-printable on the wire)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    headers = "".join(f"{k}: {v}\n" for k, v in message.items())
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return headers + "\n" + body.get_content()


def _tokens_in_mail(text: str) -> list[str]:
    import re

    return re.findall(r"token=([A-Za-z0-9_-]{20,})", text)


def json_body(response: httpx.Response) -> Any:
    assert response.headers["content-type"].startswith(
        ("application/json", "application/problem+json")
    )
    return json.loads(response.content)
