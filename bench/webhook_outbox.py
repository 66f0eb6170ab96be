"""What the webhook outbox costs an audit write (ADR 0920), on PostgreSQL.

    .venv/bin/python -m bench.webhook_outbox [--events 2000] [--url postgresql+asyncpg://...]

Creates a scratch database, migrates it, and times ``AuditService.record`` one event after
another in three cases: no outbox (the service before webhooks), the outbox with no
subscription of the event's type (every deployment that uses no webhooks), and one
subscription (a job inserted with each event). Prints the median and p99 per case; the
database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import asyncpg

from auth_service.audit import events
from auth_service.audit.context import RequestContext
from auth_service.config.settings import Settings
from auth_service.db.migrate import upgrade_to_head
from auth_service.security.aead import MasterKey
from auth_service.services import build_services
from auth_service.webhooks.service import WebhookSpec

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _timed(record: object, n: int) -> tuple[float, float]:
    samples = []
    ctx = RequestContext(request_id="bench")
    for _ in range(n):
        start = time.perf_counter()
        await record(events.LOGIN_SUCCEEDED, ctx)  # type: ignore[operator]
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


async def main(n: int, admin: str) -> None:
    name = f"bench_outbox_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    try:
        settings = Settings(
            database={"url": url},  # type: ignore[arg-type]
            master_key=MasterKey.generate_text(),  # type: ignore[arg-type]
            webhooks={"allow_http": True, "allowed_networks": ["127.0.0.1/32"]},  # type: ignore[arg-type]
        )
        services = build_services(settings)
        await upgrade_to_head(services.db.engine)
        outbox = services.audit.outbox
        try:
            services.audit.outbox = None
            await _timed(services.audit.record, 200)  # warm the pool and caches
            results = {"no outbox": await _timed(services.audit.record, n)}
            services.audit.outbox = outbox
            results["outbox, no subscription"] = await _timed(services.audit.record, n)
            await services.webhooks.create(
                WebhookSpec("http://127.0.0.1:9/hooks", [events.LOGIN_SUCCEEDED]),
                RequestContext(),
            )
            results["outbox, one subscription"] = await _timed(services.audit.record, n)
            jobs = await services.jobs.pending("webhook")
        finally:
            await services.close()
        for case, (median, p99) in results.items():
            print(f"{case:>26}: median {median:.3f} ms, p99 {p99:.3f} ms ({n} events)")
        print(f"{'webhook jobs enqueued':>26}: {jobs}")
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--url", default=ADMIN, help="an admin connection (creates a database)")
    args = parser.parse_args()
    asyncio.run(main(args.events, args.url))
