"""Throwaway PostgreSQL clusters for backup and DR tests (initdb as the postgres user)."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from auth_service.backup import pgtools
from auth_service.db.migrate import upgrade_to_head
from tests.conftest import service_missing


def require_postgres_binaries() -> None:
    try:
        pgtools.tool("initdb")
        pgtools.tool("pg_basebackup")
    except Exception as exc:
        service_missing("PostgreSQL server binaries", str(exc))
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as postgres")


@asynccontextmanager
async def cluster(prefix: str = "auth-pg-", **settings: str) -> AsyncIterator[pgtools.Cluster]:
    """A fresh, started cluster on a free port; stopped and removed even on failure."""
    require_postgres_binaries()
    c = pgtools.Cluster(pgtools.Cluster.new_root(prefix), pgtools.free_port(), settings=settings)
    try:
        await c.initdb()
        await c.start()
        yield c
    finally:
        await c.destroy()


async def create_database(c: pgtools.Cluster, name: str = "auth") -> str:
    """Create and migrate the service's database; returns its SQLAlchemy URL."""
    conn = await c.connect()
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = c.conninfo.sqlalchemy_url(name)
    engine = create_async_engine(url)
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()
    return url


BIN = Path(__import__("sys").executable).parent


def clean_env() -> dict[str, str]:
    """The environment minus other tests' service settings: the config file decides."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AUTH_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }


async def acli(config: Path, *args: str, timeout: float = 240) -> tuple[int, str]:
    """Run the real `auth-service` command; returns (exit code, stdout+stderr)."""
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "auth-service"),
        "--config",
        str(config),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=clean_env(),
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode()
