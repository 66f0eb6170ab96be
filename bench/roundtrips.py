"""Count database and Redis round trips per request, in process, against the bench database.

Builds the real app from the same environment as the benchmarked server, drives each endpoint
through httpx's ASGI transport and counts, per request:
- SQL statements (``before_cursor_execute``), transaction begins and ends (commit/rollback):
  asyncpg sends BEGIN and COMMIT as messages of their own, so each is a network round trip;
- Redis commands sent (pipelines and Lua scripts count once).
Prints one JSON object. Run by ``bench/run.py`` with the service environment.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections import Counter
from typing import Any

import httpx
from redis.asyncio.connection import AbstractConnection
from sqlalchemy import event

from auth_service.app import create_app
from auth_service.config.loader import load_settings
from auth_service.db.engine import Database

COUNTS: Counter[str] = Counter()

_send = AbstractConnection.send_packed_command


async def _counting_send(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
    COUNTS["redis"] += 1
    await _send(self, command, check_health)


_fetch_driver = Database.fetch_driver


async def _counting_fetch_driver(self: Database, statement: Any, params: Any) -> Any:
    # Statements sent on asyncpg's connection directly (ADR 0445: the refresh exchange) do
    # not pass through SQLAlchemy's events: one statement, one round trip, in autocommit.
    COUNTS["statements"] += 1
    return await _fetch_driver(self, statement, params)


def _instrument(engine: Any) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def _statement(*_: Any) -> None:
        COUNTS["statements"] += 1

    # In autocommit, SQLAlchemy still fires begin/rollback for its logical transaction, but
    # asyncpg sends nothing: only real BEGIN/COMMIT/ROLLBACK messages are counted.
    def _real(conn: Any) -> bool:
        return bool(conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT")

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        if _real(conn):
            COUNTS["begin"] += 1

    @event.listens_for(engine, "commit")
    def _commit(conn: Any) -> None:
        if _real(conn):
            COUNTS["commit"] += 1

    @event.listens_for(engine, "rollback")
    def _rollback(conn: Any) -> None:
        if _real(conn):
            COUNTS["rollback"] += 1


async def _measure(
    name: str, n: int, call: Any, results: dict[str, Any], expect: int = 200
) -> None:
    for _ in range(3):  # warm: prepared statements, connections, key cache
        await call()
    COUNTS.clear()
    statuses: Counter[int] = Counter()
    for _ in range(n):
        statuses[(await call()).status_code] += 1
    per = {k: v / n for k, v in COUNTS.items()}
    per["db_round_trips"] = (
        per.get("statements", 0)
        + per.get("begin", 0)
        + per.get("commit", 0)
        + per.get("rollback", 0)
    )
    per["statuses"] = {str(k): v for k, v in statuses.items()}  # type: ignore[assignment]
    per["requests"] = n
    if statuses.get(expect, 0) != n:
        per["warning"] = f"expected {n} x {expect}"  # type: ignore[assignment]
    results[name] = per


async def main() -> None:
    users = int(os.environ.get("BENCH_USERS", "1000"))
    password = os.environ["BENCH_PASSWORD"]
    settings = load_settings().settings
    app = create_app(settings)
    AbstractConnection.send_packed_command = _counting_send  # type: ignore[method-assign]
    Database.fetch_driver = _counting_fetch_driver  # type: ignore[method-assign]
    results: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        _instrument(app.state.services.db.engine.sync_engine)
        transport = httpx.ASGITransport(app=app)
        management = httpx.ASGITransport(app=app.state.management)
        async with (
            httpx.AsyncClient(transport=transport, base_url="https://bench.invalid") as client,
            httpx.AsyncClient(transport=management, base_url="http://management") as mgmt,
        ):
            counter = iter(range(10**9))

            async def login() -> httpx.Response:
                email = f"user{next(counter) % users}@bench.invalid"
                return await client.post(
                    "/v1/auth/login", json={"email": email, "password": password}
                )

            first = (await login()).json()
            chain = {"refresh": first["refresh_token"]}
            bearer = {"Authorization": f"Bearer {first['access_token']}"}

            async def refresh() -> httpx.Response:
                r = await client.post("/v1/auth/refresh", json={"refresh_token": chain["refresh"]})
                if r.status_code == 200:
                    chain["refresh"] = r.json()["refresh_token"]
                return r

            async def me() -> httpx.Response:
                return await client.get("/v1/users/me", headers=bearer)

            async def jwks() -> httpx.Response:
                return await client.get("/.well-known/jwks.json")

            async def ready() -> httpx.Response:
                return await mgmt.get("/health/ready")

            async def register() -> httpx.Response:
                n = next(counter)
                return await client.post(
                    "/v1/auth/register",
                    json={
                        "email": f"rt-{os.getpid()}-{n}@example.com",
                        "password": f"Correct-Horse-{n}-Battery",
                    },
                )

            def forgot(email: str) -> Any:
                return lambda: client.post("/v1/auth/password/forgot", json={"email": email})

            await _measure("login", 10, login, results)
            await _measure("refresh", 50, refresh, results)
            await _measure("me", 50, me, results)
            await _measure("jwks", 50, jwks, results)
            await _measure("health_ready", 50, ready, results)
            await _measure("register", 5, register, results, expect=202)
            # The same round trips for an address with and without an account (ADR 0011).
            known = f"rt-forgot-{os.getpid()}@example.com"
            await client.post(
                "/v1/auth/register", json={"email": known, "password": "Correct-Horse-Battery-9"}
            )
            await _measure("forgot_known", 10, forgot(known), results, 202)
            unknown = f"rt-nobody-{os.getpid()}@example.com"
            await _measure("forgot_unknown", 10, forgot(unknown), results, 202)
    json.dump(results, sys.stdout)
    print()


if __name__ == "__main__":
    asyncio.run(main())
