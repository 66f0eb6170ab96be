"""A million expired rows purged while logins run: the login p99 before and during the purge
(issue #16, ADR 0910). PostgreSQL.

    .venv/bin/python -m bench.housekeeping_purge [--scale 13] [--slice 10] [--connections 4]

1. creates the database ``auth_bench_housekeeping`` (dropped first), migrates it, and seeds
   rows past their retention in every purged table with tests.support.housekeeping (scale 1
   = about 73,500 purgeable rows; 13 = about a million), plus one account to sign in with;
2. starts ``auth-service serve`` (one worker, every rate limit raised so the limiters run but
   never refuse, argon2id at the service's defaults);
3. measures logins with wrk (``--latency``) in slices of ``--slice`` seconds: three slices
   before, then slices while ``auth-service housekeeping run --confirm`` purges, until it
   exits. Prints one JSON object as the last line of stdout (the seeding's audit log line
   comes before it): rows purged, purge seconds, and per slice the login rate and p50/p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from tests.support.housekeeping import seed
from tests.support.net import free_port, wait_ready

from auth_service.audit.context import RequestContext
from auth_service.config.settings import Settings
from auth_service.db.migrate import upgrade_to_head
from auth_service.security.aead import MasterKey
from auth_service.services import build_services

ROOT = Path(__file__).resolve().parents[1]
CLI = str(ROOT / ".venv" / "bin" / "auth-service")
ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
NAME = "auth_bench_housekeeping"
URL = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{NAME}"
EMAIL = "hk-bench@example.com"
PASSWORD = "Purge-while-signing-in-7"
LUA = f"""
wrk.method = "POST"
wrk.body = '{{"email":"{EMAIL}","password":"{PASSWORD}"}}'
wrk.headers["Content-Type"] = "application/json"
"""


async def _prepare(master_key: str, scale: float) -> int:
    conn = await asyncpg.connect(ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{NAME}"')
    finally:
        await conn.close()
    settings = Settings(database={"url": URL}, master_key=master_key)  # type: ignore[arg-type]
    services = build_services(settings)
    try:
        await upgrade_to_head(services.db.engine)
        seeded = await seed(services.db, datetime.now(UTC), scale=scale)
        await services.accounts.registration.create_user(
            EMAIL, PASSWORD, admin=False, ctx=RequestContext(), verified=True
        )
    finally:
        await services.close()
    return seeded.total_purged


def _wrk(url: str, seconds: int, connections: int, lua: Path) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(lua), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if match is None:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "logins_per_second": float(rate.group(1)) if rate else 0.0,
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=13)
    parser.add_argument("--slice", type=int, default=10)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed: apt-get install -y wrk")

    master_key = MasterKey.generate_text()
    started = time.perf_counter()
    purgeable = asyncio.run(_prepare(master_key, args.scale))
    seeded_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="bench-hk-") as scratch:
        port, management = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")}
        env.update(
            AUTH_DATA_DIR=scratch,
            AUTH_DATABASE__URL=URL,
            AUTH_MASTER_KEY=master_key,
            AUTH_SERVER__PORT=str(port),
            AUTH_SERVER__MANAGEMENT_PORT=str(management),
            AUTH_LOGGING__LEVEL="WARNING",
            AUTH_LOGGING__ACCESS_LOG="false",
            AUTH_HOUSEKEEPING__ENABLED="false",  # the run below is the only one
            AUTH_RATE_LIMITS__LOGIN_PER_IP="1000000/minute",
            AUTH_RATE_LIMITS__LOGIN_PER_ACCOUNT="1000000/minute",
        )
        lua = Path(scratch) / "login.lua"
        lua.write_text(LUA)
        log = (Path(scratch) / "serve.log").open("wb")
        server = subprocess.Popen([CLI, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            if not wait_ready(server, f"http://127.0.0.1:{management}/health/ready", 60):
                raise SystemExit("server not ready")
            url = f"http://127.0.0.1:{port}/v1/auth/login"
            _wrk(url, 3, args.connections, lua)  # warm up
            before = [_wrk(url, args.slice, args.connections, lua) for _ in range(3)]
            purge_started = time.perf_counter()
            purge = subprocess.Popen(
                [CLI, "housekeeping", "run", "--confirm", "--format", "json"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            ended: list[float] = []

            def wait_for_purge() -> None:
                # The purge's own end, not the end of the wrk slice running when it ended.
                purge.wait()
                ended.append(time.perf_counter())

            waiter = threading.Thread(target=wait_for_purge)
            waiter.start()
            during = []
            while not ended:
                during.append(_wrk(url, args.slice, args.connections, lua))
            waiter.join()
            purge_seconds = ended[0] - purge_started
            report = json.loads((purge.stdout.read() if purge.stdout else b"{}") or b"{}")
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(
        json.dumps(
            {
                "seeded_purgeable_rows": purgeable,
                "seed_seconds": round(seeded_seconds),
                "purge": report,
                "purge_seconds": round(purge_seconds, 1),
                "before": before,
                "during": during,
            }
        )
    )


if __name__ == "__main__":
    main()
