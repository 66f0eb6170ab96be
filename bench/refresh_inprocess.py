"""CPU per refresh of the real app in process (PostgreSQL + Redis), without uvicorn or wrk.

Drives ``POST /v1/auth/refresh`` through the ASGI app with raw ASGI calls, sequentially on one
token chain, and prints the process CPU per refresh: the app's own cost (middleware, routing,
rate limiter, exchange, signing, response) with no HTTP server and no load generator sharing
the cores. Run it with two checkouts' interpreters in alternation for an A/B on a shared
machine. Needs a migrated database with the account below (``auth-service users create``)::

    AUTH_ENV=production AUTH_SERVER__PUBLIC_URL=https://bench.invalid \\
    AUTH_MASTER_KEY_FILE=<file> AUTH_DATA_DIR=<dir> AUTH_MAIL__BACKEND=outbox \\
    AUTH_DATABASE__URL=postgresql+asyncpg://postgres@127.0.0.1:5432/<db> \\
    AUTH_REDIS__URL=redis://127.0.0.1:6379/<n> \\
    AUTH_RATE_LIMITS__REFRESH_PER_IP=1000000/minute AUTH_RATE_LIMITS__LOGIN_PER_IP=1000000/minute \\
    AUTH_RATE_LIMITS__LOGIN_PER_ACCOUNT=1000000/minute \\
    BENCH_EMAIL=<email> BENCH_PASSWORD=<password> .venv/bin/python bench/refresh_inprocess.py [n]
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

from auth_service.app import create_app
from auth_service.config.loader import load_settings


async def call(app: Any, path: str, body: bytes) -> tuple[int, bytes]:
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:  # nothing more: wait like a client that keeps the connection open
            await asyncio.sleep(3600)
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [
        (b"host", b"bench.invalid"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"user-agent", b"refresh-inprocess"),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 443),
        "state": {},
    }
    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def main(n: int) -> None:
    app = create_app(load_settings().settings)
    credentials = {"email": os.environ["BENCH_EMAIL"], "password": os.environ["BENCH_PASSWORD"]}
    async with app.router.lifespan_context(app):
        status, body = await call(app, "/v1/auth/login", json.dumps(credentials).encode())
        if status != 200:
            raise SystemExit(f"login: {status} {body[:200]!r}")
        token = json.loads(body)["refresh_token"]

        async def chain(count: int) -> None:
            nonlocal token
            for _ in range(count):
                payload = json.dumps({"refresh_token": token}).encode()
                status, body = await call(app, "/v1/auth/refresh", payload)
                if status != 200:
                    raise SystemExit(f"refresh: {status} {body[:200]!r}")
                token = json.loads(body)["refresh_token"]

        await chain(200)  # warm: prepared statements, pools, caches
        cpu, wall = time.process_time(), time.perf_counter()
        await chain(n)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    print(
        f"{n} refreshes: {1000 * cpu / n:.3f} ms CPU each, {n / cpu:.0f} per CPU-s "
        f"({wall:.1f} s wall)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
