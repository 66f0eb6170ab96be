"""The physical bound for password login: argon2id verifications per second.

Runs ``--processes`` processes (as many as the service has workers), each verifying one hash
with the benchmark's parameters in a loop for ``--duration`` seconds, and prints one JSON line.
No HTTP, no database: what the CPU can do for login when nothing else runs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time

from argon2 import PasswordHasher, Type


def _hasher(memory_kib: int, time_cost: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(
        time_cost=time_cost,
        memory_cost=memory_kib,
        parallelism=parallelism,
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )


def _worker(args: tuple[str, int, int, int, float, float]) -> tuple[int, float]:
    encoded, memory_kib, time_cost, parallelism, start_at, duration = args
    hasher = _hasher(memory_kib, time_cost, parallelism)
    while time.time() < start_at:  # every process starts together
        time.sleep(0.001)
    deadline = start_at + duration
    count = 0
    cpu = time.process_time()
    while time.time() < deadline:
        hasher.verify(encoded, "bench-password")
        count += 1
    return count, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--memory-kib", type=int, default=7168)
    parser.add_argument("--time-cost", type=int, default=5)
    parser.add_argument("--parallelism", type=int, default=1)
    a = parser.parse_args()
    encoded = _hasher(a.memory_kib, a.time_cost, a.parallelism).hash("bench-password")
    start_at = time.time() + 0.5
    job = (encoded, a.memory_kib, a.time_cost, a.parallelism, start_at, a.duration)
    with multiprocessing.Pool(a.processes) as pool:
        done = pool.map(_worker, [job] * a.processes)
    total = sum(n for n, _ in done)
    cpu = sum(c for _, c in done)
    print(
        json.dumps(
            {
                "processes": a.processes,
                "duration_s": a.duration,
                "verifies": total,
                "verifies_per_s": total / a.duration,
                "ms_per_verify_per_process": 1000 * a.duration * a.processes / max(total, 1),
                # CPU time is what a shared machine cannot steal: the stable efficiency figure.
                "cpu_s": cpu,
                "verifies_per_cpu_s": total / cpu if cpu else None,
            }
        )
    )


if __name__ == "__main__":
    main()
