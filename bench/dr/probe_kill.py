"""Which exceptions a probe (`node_status`) raises when the primary is SIGKILLed under it.

    .venv/bin/python -m bench.dr.probe_kill --rounds 8

Each round starts a throwaway cluster, runs 30 probe loops against it (each `dr watch` probe's
statements, back to back), SIGKILLs the postmaster and counts what the probes saw: a status
with an error (unreachable), an exception the observer's probe catches, or one it does not
(before ADR 0326 such an exception ended the observer). bench/dr/README.md ("Open") has the
figures.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

from auth_service.backup import pgtools  # noqa: E402
from auth_service.dr.service import node_status  # noqa: E402

# What Watcher._node caught before ADR 0326.
CAUGHT_BEFORE = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def main(rounds: int) -> int:
    caught: collections.Counter[str] = collections.Counter()
    escaped: collections.Counter[str] = collections.Counter()
    for n in range(rounds):
        c = pgtools.Cluster(pgtools.Cluster.new_root("auth-drx-"), pgtools.free_port())
        await c.initdb()
        await c.start()
        info = pgtools.ConnInfo("127.0.0.1", c.port, "postgres", None, "postgres")
        until = time.monotonic() + 1.5

        async def probe_loop(info: pgtools.ConnInfo, until: float) -> None:
            while time.monotonic() < until:
                try:
                    status = await asyncio.wait_for(node_status("primary", info), 3.5)
                    caught["unreachable (status.error)" if status.error else "reachable"] += 1
                except CAUGHT_BEFORE as exc:
                    caught[type(exc).__name__] += 1
                except Exception as exc:
                    escaped[f"{type(exc).__name__}: {exc}"] += 1

        loops = [asyncio.create_task(probe_loop(info, until)) for _ in range(30)]
        await asyncio.sleep(0.3 + (n % 10) * 0.02)
        os.kill(int((c.data_dir / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)
        await asyncio.gather(*loops)
        await c.destroy()
    print(f"{rounds} kills; caught by the probe before ADR 0326: {dict(caught)}")
    print(f"escaped it: {dict(escaped) or 'none'}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    sys.exit(asyncio.run(main(parser.parse_args().rounds)))
