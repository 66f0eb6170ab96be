"""The per-worker client cache (ADR 0761) on `auth-service serve --workers 2` with PostgreSQL
and Redis: the hot path does not read the database, and a rotated-out or deleted client is
refused by every worker as soon as the change returns.

Proved by ordering, not by sleeping: each check is a burst of requests on new connections
(the kernel spreads them over both workers), sent after the CLI call (another process, which
publishes on the invalidation bus) has returned. That the cache serves at all is shown by
deleting the client's secrets behind the service's back (SQL): every worker keeps answering
from memory, so every worker held the client, and each must then forget it."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support.server import CLI, Server, base_env, migrate, postgres_database
from tests.support.services import sqlalchemy_url

# ~60 s on a loaded 2-core machine (a 2-worker server and four CLI calls).
pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

SCOPE = "api:read"
BURST = 24


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh PostgreSQL database's plain DSN (postgresql://)."""
    with postgres_database() as dsn:
        yield dsn


def _cli(tmp: Path, env: dict[str, str], *args: str) -> dict[str, str]:
    done = subprocess.run(
        [CLI, "clients", *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, str] = json.loads(done.stdout) if "--format" in args else {}
    return result


def _burst(url: str, client_id: str, secret: str) -> list[int]:
    """``BURST`` client_credentials requests, each on a new connection, 8 at a time."""
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()

    def post(_: int) -> int:
        with httpx.Client(timeout=30) as http:
            r = http.post(
                url + "/oauth2/token",
                data={"grant_type": "client_credentials", "scope": SCOPE},
                headers={"Authorization": "Basic " + raw},
            )
            return r.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(post, range(BURST)))


async def _delete_secrets(dsn: str, client_id: str) -> int:
    """SQL behind the service's back: no invalidation is published."""
    conn = await asyncpg.connect(dsn)
    try:
        status = await conn.execute(
            "DELETE FROM oauth_client_secrets WHERE client_pk = "
            "(SELECT id FROM oauth_clients WHERE client_id = $1)",
            client_id,
        )
    finally:
        await conn.close()
    return int(status.rsplit(" ", 1)[1])


def test_every_worker_forgets_a_rotated_or_deleted_client(
    tmp_path: Path, database: str, redis_url: str
) -> None:
    env = base_env(
        tmp_path,
        sqlalchemy_url(database),
        AUTH_REDIS__URL=redis_url,
        AUTH_OAUTH__SCOPES=json.dumps({SCOPE: "Read the API"}),
    )
    migrate(tmp_path, env)
    created = _cli(
        tmp_path,
        env,
        *("create", "--name", "machine", "--type", "confidential"),
        *("--grant-type", "client_credentials", "--scope", SCOPE, "--format", "json"),
    )
    client_id, old = created["client_id"], created["client_secret"]
    with Server(tmp_path, env, workers=2) as server:
        assert _burst(server.url, client_id, old) == [200] * BURST

        # Rotation without overlap: the old secret is refused everywhere at once.
        rotated = _cli(
            tmp_path,
            env,
            "rotate-secret",
            client_id,
            "--overlap-seconds",
            "0",
            "--format",
            "json",
        )
        new = rotated["client_secret"]
        assert _burst(server.url, client_id, old) == [401] * BURST
        assert _burst(server.url, client_id, new) == [200] * BURST

        # Behind the service's back: the secrets are gone from the database, and every
        # worker still answers from its cache (the hot path reads no database) ...
        assert asyncio.run(_delete_secrets(database, client_id)) >= 1
        assert _burst(server.url, client_id, new) == [200] * BURST

        # ... until the client is deleted: no worker answers from memory any more.
        _cli(tmp_path, env, "delete", client_id)
        assert _burst(server.url, client_id, new) == [401] * BURST
