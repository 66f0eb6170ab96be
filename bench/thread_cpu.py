"""CPU per thread of the service's processes, to tell the event loop's work from other threads'.

``python bench/thread_cpu.py sample OUT.jsonl SECONDS`` samples utime+stime of every thread
of the processes whose command line names auth-service or multiprocessing (the serving
workers, the hashing processes) every second; run it beside ``bench/run.py``.
``python bench/thread_cpu.py report OUT.jsonl T0 T1`` prints, for each process busy between
the two UNIX times (the scenario's start and end in the bench log), its CPU, its main
thread's (a serving worker's event loop) and its other threads' (e.g. OpenTelemetry's batch
span processor).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


def _snapshot() -> dict[str, Any]:
    tick = os.sysconf("SC_CLK_TCK")
    procs: dict[str, Any] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            if "auth-service" not in cmd and "multiprocessing" not in cmd:
                continue
            threads = {}
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                threads[tid] = (int(fields[11]) + int(fields[12])) / tick
        except OSError:  # the process or thread ended meanwhile
            continue
        procs[pid] = {"cmd": cmd[:120], "threads": threads}
    return {"t": time.time(), "procs": procs}


def sample(path: str, seconds: float) -> None:
    end = time.time() + seconds
    with open(path, "w") as out:
        while time.time() < end:
            out.write(json.dumps(_snapshot()) + "\n")
            out.flush()
            time.sleep(1)


def report(path: str, t0: float, t1: float) -> None:
    with open(path) as f:
        snaps = [json.loads(line) for line in f]
    a = min(snaps, key=lambda s: abs(s["t"] - t0))
    b = min(snaps, key=lambda s: abs(s["t"] - t1))
    print(f"{b['t'] - a['t']:.1f} s between the samples")
    for pid, proc in b["procs"].items():
        before = a["procs"].get(pid)
        if before is None:
            continue
        spent = {t: c - before["threads"].get(t, 0.0) for t, c in proc["threads"].items()}
        total = sum(spent.values())
        if total >= 0.1:
            others = sorted((round(v, 2) for t, v in spent.items() if t != pid and v > 0.005))
            print(
                f"  {pid}: {total:.2f} s CPU, main thread {spent.get(pid, 0.0):.2f} s, "
                f"other threads {others[::-1]}"
            )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "sample":
        sample(sys.argv[2], float(sys.argv[3]))
    elif len(sys.argv) == 5 and sys.argv[1] == "report":
        report(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
    else:
        raise SystemExit(__doc__)
