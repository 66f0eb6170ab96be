"""PostgreSQL stops in the middle of a login flood and comes back.

The server is a real `auth-service serve` on a throwaway cluster of the test's own (never the
shared server on 5432). While the database is gone every login is answered 503
`database-unavailable` with `Retry-After`, never a 500, and nothing logs a traceback; readiness
says the database is down. Once the cluster is started again the same server process serves
logins again, without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.pg_cluster import cluster, create_database
from tests.support.problems import assert_problem
from tests.support.server import Server, base_env
from tests.support.settings import PASSWORD
from tests.support.wait import async_wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

CLIENTS = 6


@dataclass
class Flood:
    """Clients logging in back to back; every answer is kept, in order."""

    http: httpx.AsyncClient
    email: str
    answers: list[httpx.Response] = field(default_factory=list)

    def count(self, status: int, since: int = 0) -> int:
        return sum(r.status_code == status for r in self.answers[since:])

    async def _client(self) -> None:
        body = {"email": self.email, "password": PASSWORD}
        while True:
            self.answers.append(await self.http.post("/v1/auth/login", json=body))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Flood]:
        tasks = [asyncio.create_task(self._client()) for _ in range(CLIENTS)]
        try:
            yield self
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def _readiness(server: Server) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as http:
        return await http.get(f"{server.management_url}/health/ready")


async def test_login_flood_gets_503_while_postgres_is_down_and_recovers(tmp_path: Path) -> None:
    async with cluster("auth-outage-") as pg:
        url = await create_database(pg)
        env = base_env(tmp_path, url)
        with Server(tmp_path, env) as server:
            assert server.process is not None
            pid = server.process.pid
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                email = "flood@example.com"
                registered = await http.post(
                    "/v1/auth/register", json={"email": email, "password": PASSWORD}
                )
                assert registered.status_code in (201, 202), registered.text
                flood = Flood(http, email)
                async with flood.running():
                    await async_wait_for(lambda: flood.count(200) >= 20, 60, "logins served")

                    await pg.stop("fast")  # terminates the server's connections mid-flood
                    down = len(flood.answers)
                    await async_wait_for(
                        lambda: flood.count(503, since=down) >= 50, 60, "logins refused"
                    )
                    ready = await async_wait_for(
                        lambda: _unready(server), 30, "readiness to see the database down"
                    )
                    assert "database" in ready.json()["detail"]

                    await pg.start()
                    back = len(flood.answers)
                    await async_wait_for(
                        lambda: flood.count(200, since=back) >= 50, 120, "logins served again"
                    )
                    await async_wait_for(lambda: _ready(server), 30, "readiness back")
            assert server.process.poll() is None
            assert server.process.pid == pid  # the same process recovered; nothing restarted
        logs = server.logs()

    statuses = Counter(r.status_code for r in flood.answers)
    assert set(statuses) <= {200, 503}, statuses
    refusals = [r for r in flood.answers if r.status_code == 503]
    for refusal in refusals:
        body = assert_problem(refusal, 503, "database-unavailable")
        assert refusal.headers["retry-after"] == "5"
        assert "detail" not in body  # the driver's reason stays in the log
    assert "Traceback" not in logs
    events = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert not [e for e in events if e.get("level") in ("error", "critical")], logs[-4000:]
    assert any(e.get("event") == "database_unavailable" for e in events)


async def _unready(server: Server) -> httpx.Response | None:
    r = await _readiness(server)
    return r if r.status_code == 503 else None


async def _ready(server: Server) -> bool:
    return (await _readiness(server)).status_code == 200
