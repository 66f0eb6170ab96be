"""The servers and tools the suite needs, and the one rule for when one is missing.

Services are found through AUTH_TEST_POSTGRES_URL / AUTH_TEST_REDIS_URL (defaults: the local
servers). When one is absent its tests skip with the reason, unless
AUTH_TEST_REQUIRE_SERVICES=1 (CI), where absence fails the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import NoReturn

import asyncpg
import pytest

REQUIRE_SERVICES = os.environ.get("AUTH_TEST_REQUIRE_SERVICES") == "1"
POSTGRES_URL = os.environ.get(
    "AUTH_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("AUTH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# The database the suite owns and empties (never the default 0). Two suites running at once on
# one Redis (worktrees, a developer beside CI) each set their own.
REDIS_TEST_DB = int(os.environ.get("AUTH_TEST_REDIS_DB", "15"))


# Parameters of a fixture that runs a test on each database; the PostgreSQL one carries the
# postgres mark, so that -m "not postgres" leaves it out.
BOTH_DATABASES = (
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
)


def service_missing(name: str, reason: str) -> NoReturn:
    """Skip the test because ``name`` is not there, or fail it when the run requires it.

    Every server, binary and package a test needs but the machine may lack goes through here,
    so that a CI run (AUTH_TEST_REQUIRE_SERVICES=1) cannot pass by skipping.
    """
    message = f"{name} not available ({reason})"
    if REQUIRE_SERVICES:
        pytest.fail(message + " and AUTH_TEST_REQUIRE_SERVICES=1", pytrace=False)
    pytest.skip(message)


def asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def sqlalchemy_url(dsn: str) -> str:
    return dsn.replace("postgresql://", "postgresql+asyncpg://", 1)


def postgres_url_of(name: str) -> str:
    """The SQLAlchemy URL of database ``name`` on the test server."""
    return sqlalchemy_url(f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}")


async def pg_admin(sql: str) -> None:
    """One statement on the test server's maintenance database (CREATE/DROP DATABASE)."""
    conn = await asyncpg.connect(asyncpg_dsn(POSTGRES_URL), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def fresh_postgres_database(prefix: str = "auth_test_") -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards; its SQLAlchemy URL."""
    name = f"{prefix}{os.getpid()}_{uuid.uuid4().hex[:8]}"
    try:
        asyncio.run(pg_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        service_missing("PostgreSQL", f"{POSTGRES_URL}: {exc}")
    try:
        yield postgres_url_of(name)
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
