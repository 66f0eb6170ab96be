"""Dependency checks registered with the health monitor."""

from __future__ import annotations

from redis.asyncio import Redis
from sqlalchemy import text

from auth_service.db.engine import Database
from auth_service.health.monitor import CheckFn, CheckResult, Status
from auth_service.keys.service import KeyService


def database_check(db: Database) -> CheckFn:
    async def check() -> CheckResult:
        async with db.engine.connect() as conn:
            if db.dialect == "postgresql":
                row = (
                    await conn.execute(
                        text("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')")
                    )
                ).one()
                if row[0]:
                    return CheckResult(Status.down, "database is a standby (read-only)")
                if row[1] == "on":
                    return CheckResult(Status.down, "database is read-only")
            else:
                await conn.execute(text("SELECT 1"))
        return CheckResult(Status.up, db.dialect)

    return check


def redis_check(redis: Redis) -> CheckFn:
    async def check() -> CheckResult:
        await redis.ping()
        return CheckResult(Status.up)

    return check


def signing_keys_check(keys: KeyService) -> CheckFn:
    async def check() -> CheckResult:
        await keys.signer()
        return CheckResult(Status.up)

    return check
