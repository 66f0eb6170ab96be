"""Does argon2-cffi release the GIL while it hashes? (``python bench/argon2_gil.py``)

A Python thread counts in a loop while the main thread verifies argon2id hashes with the
bench's parameters. Were the GIL held through a hash, the counter would stall for about a
hash's duration at each one; it prints the hashes, their wall time, the counter's longest
stall and how many of its iterations stalled longer than half a hash (0: released).
"""

from __future__ import annotations

import threading
import time

from argon2 import PasswordHasher, Type

SECONDS = 3.0


def main() -> None:
    hasher = PasswordHasher(time_cost=5, memory_cost=7168, parallelism=1, type=Type.ID)
    encoded = hasher.hash("x")
    gaps: list[float] = []
    done = threading.Event()

    def count() -> None:
        last = time.perf_counter()
        while not done.is_set():
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    counter = threading.Thread(target=count)
    counter.start()
    began = time.perf_counter()
    hashes = 0
    while time.perf_counter() - began < SECONDS:
        hasher.verify(encoded, "x")
        hashes += 1
    done.set()
    counter.join()
    per_hash = SECONDS / hashes
    long_stalls = sum(g > per_hash / 2 for g in gaps)
    print(
        f"{hashes} hashes, {per_hash * 1000:.1f} ms each (wall); the counter's longest stall "
        f"{max(gaps) * 1000:.1f} ms; {long_stalls} of {len(gaps)} iterations stalled longer "
        "than half a hash"
    )


if __name__ == "__main__":
    main()
