"""Invalidation propagation (ADR 0430, 0431): publish -> every worker process has applied it.

W subscriber processes (standing for the workers of every replica) each run the service's
``RedisBus`` with a callback that records, on CLOCK_MONOTONIC (one clock for every process
on Linux), when it applied a key. One publisher process publishes N keys one after another
(each after every subscriber has applied the previous one); per key it records when
``publish`` started and returned. Propagation of a key = the last subscriber's apply time
minus the publish start. Reported: median, p90, p99 and max over N keys, and the time
``publish`` itself takes (the revoking request waits for it).

    BENCH_REDIS=redis://127.0.0.1:6379 BENCH_REDIS_DB=3 .venv/bin/python bench/propagation.py

Knobs: BENCH_PROPAGATION_N (1000 keys), BENCH_PROPAGATION_WORKERS (4), BENCH_OUT (a file for
the JSON result). Prints the machine load (uptime) beside the figures.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

from redis.asyncio import Redis

from auth_service.security.invalidation import RedisBus

TOPIC = "session"


def _url() -> tuple[str, int]:
    base = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379").rstrip("/")
    db = int(os.environ.get("BENCH_REDIS_DB", "13"))
    return f"{base}/{db}", db


def _subscriber(ready: Connection, applied: Connection) -> None:
    async def run() -> None:
        url, db = _url()
        client = Redis.from_url(url)
        bus = RedisBus(client, db)
        stop = asyncio.Event()

        def on_key(key: str) -> None:
            if key == "stop":
                stop.set()
                return
            applied.send((key, time.monotonic_ns()))

        bus.subscribe(TOPIC, on_key)
        await bus.start()
        assert await bus.wait_healthy(10), "no subscription"
        ready.send("up")
        await stop.wait()
        await bus.stop()
        await client.aclose()

    asyncio.run(run())


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _publish(n: int, acks: list[Connection]) -> dict[str, object]:
    url, db = _url()
    client = Redis.from_url(url)
    bus = RedisBus(client, db)  # publishes only, like a revoking worker without a cache
    propagation_ms: list[float] = []
    publish_ms: list[float] = []
    loop = asyncio.get_running_loop()
    for i in range(n + 20):
        key = f"k{i}"
        start = time.monotonic_ns()
        await bus.publish(TOPIC, key)
        returned = time.monotonic_ns()
        last = 0
        for ack in acks:
            got, at = await loop.run_in_executor(None, ack.recv)
            assert got == key, (got, key)
            last = max(last, at)
        if i >= 20:  # the first 20 warm the connections up
            propagation_ms.append((last - start) / 1e6)
            publish_ms.append((returned - start) / 1e6)
    await bus.publish(TOPIC, "stop")
    await client.aclose()

    def summary(values: list[float]) -> dict[str, float]:
        return {
            "median": round(statistics.median(values), 3),
            "p90": round(_percentile(values, 0.90), 3),
            "p99": round(_percentile(values, 0.99), 3),
            "max": round(max(values), 3),
        }

    return {"propagation_ms": summary(propagation_ms), "publish_ms": summary(publish_ms)}


def main() -> int:
    n = int(os.environ.get("BENCH_PROPAGATION_N", "1000"))
    workers = int(os.environ.get("BENCH_PROPAGATION_WORKERS", "4"))
    ctx = mp.get_context("spawn")
    procs, acks, readies = [], [], []
    for _ in range(workers):
        ready_r, ready_w = ctx.Pipe(duplex=False)
        ack_r, ack_w = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_subscriber, args=(ready_w, ack_w), daemon=True)
        p.start()
        procs.append(p)
        acks.append(ack_r)
        readies.append(ready_r)
    for ready in readies:
        if not ready.poll(60):
            print("a subscriber did not come up", file=sys.stderr)
            return 1
        ready.recv()
    load_before = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    result = asyncio.run(_publish(n, acks))
    load_after = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    for p in procs:
        p.join(10)
    result.update(
        {"keys": n, "workers": workers, "load_before": load_before, "load_after": load_after}
    )
    text = json.dumps(result, indent=2)
    print(text)
    out = os.environ.get("BENCH_OUT")
    if out:
        Path(out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
