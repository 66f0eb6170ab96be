"""`auth-service users import` of a large NDJSON file: rate and peak memory
(bench/users_import/README.md).

    .venv/bin/python -m bench.users_import.run --users 1000000 --db sqlite
    .venv/bin/python -m bench.users_import.run --users 1000000 --db postgresql

Generates the file (bench.users_import.generate) unless it exists, migrates a fresh database
(SQLite in a scratch directory, or the PostgreSQL database ``auth_bench_import``, dropped and
created), runs the CLI as an operator would, samples the import process's RSS from /proc
every half second and takes its peak (``ru_maxrss`` from ``wait4``) when it exits. Prints
one JSON object: lines, seconds, accounts per second, peak RSS and the RSS samples at each
quarter of the run (flat = bounded memory), its CPU seconds, the load average at the end
(the machine may be shared), and the CLI's summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import asyncpg

from auth_service.security.aead import MasterKey
from bench.procstat import rss_mib
from bench.users_import.generate import generate

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / ".venv" / "bin" / "auth-service"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_NAME = "auth_bench_import"


async def _fresh_postgres() -> str:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{PG_NAME}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PG_NAME}"


def _measure(args: list[str], env: dict[str, str], scratch: str) -> dict[str, object]:
    out_path, err_path = Path(scratch) / "stdout", Path(scratch) / "stderr"
    started = time.perf_counter()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=err)
    samples: list[tuple[float, float]] = []
    while True:
        # wait4 reaps this one child and gives its own peak RSS (ru_maxrss, KiB on Linux).
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        rss = rss_mib(proc.pid)
        if rss:  # 0 once it exited (a zombie until reaped)
            samples.append((time.perf_counter() - started, rss))
        time.sleep(0.5)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"import failed: {err_path.read_text()[-2000:]}")
    quarters = []
    for q in (0.25, 0.5, 0.75, 1.0):
        before = [rss for t, rss in samples if t <= elapsed * q]
        quarters.append(round(before[-1], 1) if before else None)
    return {
        "seconds": round(elapsed, 1),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        # CPU time of the import process (SQLite runs inside it; PostgreSQL's share is not
        # counted): on a shared machine the stable figure, where wall time is not.
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "rss_mib_at_quarters": quarters,
        "summary": json.loads(out_path.read_text().strip().splitlines()[-1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--file", type=Path, help="default: /tmp/users-import-<N>.ndjson")
    args = parser.parse_args()

    source = args.file or Path(tempfile.gettempdir()) / f"users-import-{args.users}.ndjson"
    if not source.exists():
        generate(source, args.users, 1000)
    with tempfile.TemporaryDirectory(prefix="bench-import-") as scratch:
        if args.db == "sqlite":
            url = f"sqlite+aiosqlite:///{scratch}/auth.db"
        else:
            url = asyncio.run(_fresh_postgres())
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")}
        env.update(
            AUTH_DATA_DIR=scratch,
            AUTH_DATABASE__URL=url,
            AUTH_MASTER_KEY=MasterKey.generate_text(),
            AUTH_LOGGING__LEVEL="WARNING",
        )
        subprocess.run([str(CLI), "migrate"], env=env, check=True, capture_output=True)
        command = [str(CLI), "users", "import", str(source), "--format", "json"]
        command += ["--batch-size", str(args.batch_size), "--rejects", f"{scratch}/rejects"]
        result = _measure(command, env, scratch)
    summary = result["summary"]
    assert isinstance(summary, dict)
    seconds = float(result["seconds"])  # type: ignore[arg-type]
    print(
        json.dumps(
            {
                "database": args.db,
                "lines": args.users,
                "file_mb": round(source.stat().st_size / 1e6),
                "batch_size": args.batch_size,
                **result,
                "accounts_per_second": round(summary["imported"] / seconds),
                "accounts_per_cpu_second": round(
                    summary["imported"] / float(result["cpu_seconds"])  # type: ignore[arg-type]
                ),
                "load_average": os.getloadavg()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
