"""Probe latency at a fixed rate: `python bench/health/run.py` (README.md beside this file).

Starts ``auth-service serve`` (embedded SQLite, one worker) in a temporary directory, then
drives each probe path with wrk at BENCH_RATE requests/s (default 1000) for BENCH_DURATION
seconds (default 20) and prints p50/p90/p99/p99.9 latency. The rate is held by wrk's
``delay()`` hook (bench/lua/get.lua): each of BENCH_CONNECTIONS connections waits
connections/rate seconds between requests, so the offered load is at most the target rate.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.run import wait_http  # noqa: E402

LUA = ROOT / "bench" / "lua"
CLI = str(Path(sys.executable).with_name("auth-service"))
PATHS = ("/health/live", "/health/ready", "/health/started", "/health")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wrk(url: str, rate: int, connections: int, duration: int) -> dict[str, Any]:
    # delay() is whole milliseconds and the response time adds to it: one less keeps the
    # achieved rate at or just above the target for sub-millisecond responses.
    delay_ms = int(os.environ.get("BENCH_DELAY_MS", max(1, connections * 1000 // rate - 1)))
    env = {**os.environ, "BENCH_LUA": str(LUA), "BENCH_DELAY_MS": str(delay_ms)}
    env["BENCH_PATH"] = "/" + url.split("/", 3)[3]
    argv = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "5s",
        "-s",
        str(LUA / "get.lua"),
        url,
    ]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH_JSON "))
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
    result["rate_per_s"] = round(result["requests"] / result["duration_s"], 1)
    return result


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (or make bench-tools)")
    rate = int(os.environ.get("BENCH_RATE", "1000"))
    duration = int(os.environ.get("BENCH_DURATION", "20"))
    connections = int(os.environ.get("BENCH_CONNECTIONS", "10"))
    work = Path(tempfile.mkdtemp(prefix="bench-health-"))
    port, mport = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")}
    env.update(
        AUTH_DATA_DIR=str(work / "data"),
        AUTH_SERVER__PORT=str(port),
        AUTH_SERVER__MANAGEMENT_PORT=str(mport),
        AUTH_LOGGING__LEVEL="WARNING",
        AUTH_LOGGING__FORMAT="json",
    )
    subprocess.run([CLI, "migrate"], cwd=work, env=env, check=True, capture_output=True)
    with (work / "server.log").open("ab") as log:
        server = subprocess.Popen(
            [CLI, "serve", "--workers", "1"],
            cwd=work,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{mport}"
        wait_http(base + "/health/ready")
        results = {}
        for path in PATHS:
            r = wrk(base + path, rate, connections, duration)
            pct = r["latency_ms"]["percentiles"]
            results[path] = r
            print(
                f"{path:16} {r['rate_per_s']:7.1f}/s  p50 {pct['50']:.3f} ms  "
                f"p90 {pct['90']:.3f} ms  p99 {pct['99']:.3f} ms  p99.9 {pct['99.9']:.3f} ms  "
                f"max {r['latency_ms']['max']:.3f} ms  status {r['status']}  "
                f"errors {r['errors']}",
                flush=True,
            )
        out = Path(os.environ.get("BENCH_OUT", work / "results.json"))
        out.write_text(json.dumps(results, indent=2))
        print(f"results: {out}")
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        if "BENCH_OUT" in os.environ:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
