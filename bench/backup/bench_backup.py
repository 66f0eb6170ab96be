"""Backup benchmarks: pipeline throughput, full backup/restore of a 1,000,000-user
PostgreSQL database with peak memory, and the region-loss drill at 1,000,000 users. See
bench/backup/README.md.

    .venv/bin/python -m bench.backup.bench_backup pipeline --mb 512
    .venv/bin/python -m bench.backup.bench_backup full --users 1000000
    .venv/bin/python -m bench.backup.bench_backup region-loss --users 1000000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from auth_service.backup import crypto, pgtools
from auth_service.backup.catalog import Catalog
from auth_service.config.backup import BackupDestination, BackupSettings

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent


def _sample(mb: int) -> list[bytes]:
    """Database-like pages: repetitive structure, random hashes and ids (compresses ~3x)."""
    # 32 distinct blocks (~20 MiB) repeat beyond zstd's window, so nothing is free.
    distinct = []
    for _ in range(32):
        rows = [
            f"{i:08d}|user-{secrets.token_hex(6)}@example.com|$argon2id$v=19$m=19456,t=2,p=1$"
            f"{secrets.token_urlsafe(16)}${secrets.token_urlsafe(32)}|active|2026-01-01\n".encode()
            for i in range(4096)
        ]
        distinct.append(b"".join(rows))
    blocks = []
    size = 0
    while size < mb * 1024 * 1024:
        block = distinct[len(blocks) % len(distinct)]
        blocks.append(block)
        size += len(block)
    return blocks


async def pipeline(mb: int) -> None:
    blocks = _sample(mb)
    total = sum(map(len, blocks))
    ring = crypto.Keyring(os.urandom(32))

    t0 = time.perf_counter()
    sealer = crypto.Sealer(ring)
    sealed = [sealer.header]
    for b in blocks:
        sealed.append(sealer.update(b))
    sealed.append(sealer.finish())
    t_seal = time.perf_counter() - t0
    stored = sum(map(len, sealed))

    t0 = time.perf_counter()
    opener = crypto.Opener(ring, "bench")
    n = 0
    for s in sealed:
        n += len(opener.update(s))
    opener.finish()
    t_open = time.perf_counter() - t0
    assert n == total

    with tempfile.TemporaryDirectory() as tmp:
        catalog = Catalog(
            BackupSettings(
                key=secrets.token_urlsafe(32),  # type: ignore[arg-type]
                destinations=[BackupDestination(url=f"file://{tmp}/store")],
            ),
            Path(tmp),
        )

        async def source():  # type: ignore[no-untyped-def]
            for b in blocks:
                yield b

        t0 = time.perf_counter()
        record = await catalog.put_object("bench/object", source())
        t_put = time.perf_counter() - t0
        t0 = time.perf_counter()
        got = 0
        async for piece in catalog.open_object(record):
            got += len(piece)
        t_get = time.perf_counter() - t0
        assert got == total

    mib = total / 1024 / 1024
    print(f"input {mib:.0f} MiB, stored {stored / 1024 / 1024:.0f} MiB ({total / stored:.1f}x)")
    print(f"seal (zstd-3 + AES-256-GCM, 1 MiB chunks): {mib / t_seal:.0f} MiB/s")
    print(f"open (verify + decrypt + decompress):      {mib / t_open:.0f} MiB/s")
    print(f"pipeline to local storage (async, SHA-256): {mib / t_put:.0f} MiB/s")
    print(f"pipeline from local storage (verify):       {mib / t_get:.0f} MiB/s")


def _timed(argv: list[str]) -> tuple[float, int, str]:
    """Run a command under /usr/bin/time -v: (seconds, peak RSS KiB, output)."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-v", *argv], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{argv[2:5]} failed: {proc.stdout[-500:]} {proc.stderr[-1500:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))  # type: ignore[union-attr]
    return seconds, rss, proc.stdout


async def full(users: int) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from auth_service.db.migrate import upgrade_to_head

    c = pgtools.Cluster(pgtools.Cluster.new_root("auth-bench-"), pgtools.free_port())
    restored = pgtools.Cluster(pgtools.Cluster.new_root("auth-bench-r-"), pgtools.free_port())
    tmp = Path(tempfile.mkdtemp(prefix="auth-bench-store-"))
    try:
        await c.initdb()
        await c.start()
        conn = await c.connect()
        await conn.execute("CREATE DATABASE auth")
        await conn.close()
        url = c.conninfo.sqlalchemy_url("auth")
        engine = create_async_engine(url)
        await upgrade_to_head(engine)
        await engine.dispose()
        conn = await c.connect("auth")
        t0 = time.perf_counter()
        await conn.execute(
            f"""INSERT INTO users (id, tenant_id, email, name, password_hash, status,
                created_at, updated_at)
            SELECT gen_random_uuid(), (SELECT id FROM tenants LIMIT 1),
                'user' || g || '@example.com', 'User ' || g,
                '$argon2id$v=19$m=19456,t=2,p=1$' || md5(g::text) || '$' || md5(random()::text)
                    || md5(random()::text),
                'active', now(), now()
            FROM generate_series(1, {users}) g"""
        )
        await conn.execute("VACUUM ANALYZE users")
        size = await conn.fetchval("SELECT pg_database_size('auth')")
        await conn.close()
        print(
            f"seeded {users} users in {time.perf_counter() - t0:.1f}s; database {size / 1e6:.0f} MB"
        )
        config = tmp / "config.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "data_dir": str(tmp / "data"),
                    "database": {"url": url},
                    "backup": {
                        "key": secrets.token_urlsafe(32),
                        "destinations": [{"url": f"file://{tmp}/store"}],
                    },
                }
            )
        )
        cli = [str(BIN / "auth-service"), "--config", str(config), "backup"]
        seconds, rss, out = _timed([*cli, "run"])
        print(f"full backup: {seconds:.1f}s, peak RSS {rss / 1024:.0f} MiB :: {out.strip()}")
        seconds, rss, _ = _timed([*cli, "verify"])
        print(f"verify: {seconds:.1f}s, peak RSS {rss / 1024:.0f} MiB")
        seconds, rss, _ = _timed(
            [
                *cli,
                "restore",
                "--target",
                str(restored.data_dir),
                "--start-port",
                str(restored.port),
            ]
        )
        print(f"restore (to a running server): {seconds:.1f}s, peak RSS {rss / 1024:.0f} MiB")
        conn = await restored.connect("auth")
        print(f"restored users: {await conn.fetchval('SELECT count(*) FROM users')}")
        await conn.close()
    finally:
        await restored.destroy()
        await c.destroy()
        subprocess.run(["rm", "-rf", str(tmp)], check=False)


async def region_loss(users: int, port: int | None, prefix: str) -> None:
    """tests/support/region_drill.py at ``users`` (BENCH_USERS), the CI test's drill."""
    from tests.support.region_drill import run_drill

    work = Path(tempfile.mkdtemp(prefix=f"{prefix}work-"))
    try:
        ports = (port, port + 1) if port else None
        await run_drill(work, users, prefix=prefix, ports=ports)
    finally:
        subprocess.run(["rm", "-rf", str(work)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("pipeline")
    p.add_argument("--mb", type=int, default=256)
    f = sub.add_parser("full")
    f.add_argument("--users", type=int, default=1_000_000)
    r = sub.add_parser("region-loss")
    r.add_argument("--users", type=int, default=int(os.environ.get("BENCH_USERS", "1000000")))
    r.add_argument("--port", type=int, default=None, help="clusters on PORT and PORT+1")
    r.add_argument("--prefix", default="auth-bench-drill-", help="/tmp directory prefix")
    args = parser.parse_args()
    if args.what == "pipeline":
        asyncio.run(pipeline(args.mb))
    elif args.what == "full":
        asyncio.run(full(args.users))
    else:
        asyncio.run(region_loss(args.users, args.port, args.prefix))


if __name__ == "__main__":
    main()
