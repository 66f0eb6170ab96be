"""Event-loop lag while the password hasher is saturated: threads against processes.

``python bench/hash_loop_lag.py [--seconds 15] [--rounds 3]`` runs, in one process and
alternating the two kinds of ``passwords.hash_pool``, a flood that keeps twice the pool's
operations in flight (``PasswordHasher.verify`` at the bench's argon2id parameters, 2
hashing threads or processes like one worker of a 2-core machine with one worker), and a
probe on the same event loop that sleeps 5 ms and records how late it wakes (the delay every
request of the worker would see). Printed per round and as medians: verifies/s, CPU per
verify (this process and its hashing children), and the probe's p50/p99/max lateness.

The machine's other load delays the loop in both modes alike; what differs between the
modes is the wait for the GIL that a hashing thread (at nice +10) holds when the scheduler
leaves it off the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from auth_service.config.settings import PasswordSettings
from auth_service.security.passwords import HashingOverloaded, PasswordHasher
from bench import procstat
from bench.run import ARGON2

PROBE_SECONDS = 0.005


async def measure(pool: str, seconds: float) -> dict[str, Any]:
    settings = PasswordSettings(
        argon2_memory_cost_kib=ARGON2["memory_kib"],
        argon2_time_cost=ARGON2["time_cost"],
        argon2_parallelism=ARGON2["parallelism"],
        hash_concurrency=2,
        hash_pool=pool,  # type: ignore[arg-type]
        hash_max_wait_seconds=0,
    )
    hasher = PasswordHasher(settings)
    try:
        await hasher.warm_up()
        encoded = await hasher.hash("bench-Password-1234")
        me = os.getpid()
        cpu = procstat.CpuMeter.snapshot([me, *procstat.descendants(me)])
        end = time.monotonic() + seconds
        done = 0

        async def flood() -> None:
            nonlocal done
            while time.monotonic() < end:
                try:
                    await hasher.verify(encoded, "bench-Password-1234")
                    done += 1
                except HashingOverloaded:
                    await asyncio.sleep(0.01)

        lateness: list[float] = []

        async def probe() -> None:
            while time.monotonic() < end:
                began = time.perf_counter()
                await asyncio.sleep(PROBE_SECONDS)
                lateness.append((time.perf_counter() - began - PROBE_SECONDS) * 1000)

        started = time.monotonic()
        await asyncio.gather(probe(), *(flood() for _ in range(4)))
        wall = time.monotonic() - started
        spent = cpu.spent([me, *procstat.descendants(me)])
    finally:
        hasher.close()
    lateness.sort()
    return {
        "pool": pool,
        "verifies_per_s": round(done / wall, 2),
        "cpu_ms_per_verify": round(spent * 1000 / done, 1) if done else None,
        "lag_p50_ms": round(lateness[len(lateness) // 2], 2),
        "lag_p99_ms": round(lateness[int(len(lateness) * 0.99)], 2),
        "lag_max_ms": round(lateness[-1], 2),
        "probes": len(lateness),
        "loadavg": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    for _ in range(args.rounds):
        for pool in ("threads", "processes"):
            result = asyncio.run(measure(pool, args.seconds))
            print(json.dumps(result), flush=True)
            results.append(result)
    for pool in ("threads", "processes"):
        mine = [r for r in results if r["pool"] == pool]
        medians = {
            key: statistics.median(r[key] for r in mine)
            for key in ("verifies_per_s", "cpu_ms_per_verify", "lag_p50_ms", "lag_p99_ms")
        }
        print(json.dumps({"pool": pool, "medians": medians}))


if __name__ == "__main__":
    main()
