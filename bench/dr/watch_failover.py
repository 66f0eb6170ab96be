"""`dr watch` end to end: kill -9 the primary, time until the new primary acknowledges writes.

    .venv/bin/python -m bench.dr.watch_failover --trials 3 --window 5 --probe 1

Each trial (tests/support/dr_watch.py) builds a fresh primary and synchronous standby, starts
two real `auth-service dr watch` observers (quorum 2) and four writers that record every
acknowledged write, SIGKILLs the primary's postmaster, and reports t_detect (kill to the lock
taken), the failover's steps, the URL file's rewrite, the first write acknowledged by the new
primary (end to end) and the acknowledged writes the new primary lacks. README.md beside this
file has the figures and the model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.dr_watch import port_picker, run_trial  # noqa: E402


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def main(args: argparse.Namespace) -> int:
    pick = port_picker(args.ports)
    rows: list[dict[str, Any]] = []
    for n in range(1, args.trials + 1):
        before = _load()
        with tempfile.TemporaryDirectory(prefix=args.prefix) as tmp:
            trial = await run_trial(
                Path(tmp),
                window=args.window,
                probe=args.probe,
                ttl=args.ttl,
                pick_port=pick,
                prefix=args.prefix,
                fault=args.fault,
                kill_delay=args.kill_delay,
            )
        row = {"trial": n, **trial.figures(), "load_before": before, "load_after": _load()}
        rows.append(row)
        print(json.dumps(row), flush=True)
        if trial.lost or trial.last_ack_old >= trial.t_detect:
            print("FAILED: acknowledged writes lost, or acknowledged by the old primary after the")
            print("promotion decision")
            for name, out in trial.outputs.items():
                print(f"--- {name}\n{out}")
            return 1
    e2e = [r["end_to_end_s"] for r in rows]
    over = [r["end_to_end_minus_window_s"] for r in rows]
    print(
        f"SUMMARY {args.fault}, window {args.window:g}s probe {args.probe:g}s, "
        f"{len(rows)} trials: "
        f"end to end median {statistics.median(e2e):.2f}s "
        f"(min {min(e2e):.2f}, max {max(e2e):.2f}); "
        f"minus window median {statistics.median(over):.2f}s, max {max(over):.2f}s "
        f"(target <= 10 s); acknowledged writes lost {sum(r['lost'] for r in rows)}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--trials", type=int, default=3)
    p.add_argument("--window", type=float, default=5.0, help="dr.auto.unreachable_seconds")
    p.add_argument("--probe", type=float, default=1.0, help="dr.auto.probe_interval_seconds")
    p.add_argument(
        "--ttl", type=float, default=None, help="observation_ttl_seconds (default: window)"
    )
    p.add_argument(
        "--ports",
        default=os.environ.get("BENCH_DR_PORTS"),
        help="port range for the clusters, e.g. 55430-55449 (default: any free port)",
    )
    p.add_argument(
        "--fault",
        choices=("kill", "freeze"),
        default="kill",
        help="kill: SIGKILL the postmaster (refused at once); freeze: SIGSTOP every process of "
        "the primary (a hung host: probes wait for their timeout)",
    )
    p.add_argument(
        "--kill-delay",
        type=float,
        default=None,
        help="seconds from the warm-up writes to the fault (default: random within one probe)",
    )
    p.add_argument("--prefix", default="auth-drbench-", help="temporary directories' prefix")
    p.add_argument("--json", help="also write the rows to this file")
    sys.exit(asyncio.run(main(p.parse_args())))
