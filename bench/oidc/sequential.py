"""One client, one request at a time: auth-service's CPU per client_credentials token, and
where it goes (py-spy, GIL-holding samples only, so idle waits do not count).

    .venv/bin/python bench/oidc/sequential.py                # 500 tokens, 1 worker
    BENCH_SPY=1 .venv/bin/python bench/oidc/sequential.py    # + a 12 s profile of one worker
    BENCH_SPY=svg .venv/bin/python bench/oidc/sequential.py  # + its flame graph (SVG)

Same service set-up as bench/oidc/run.py (production mode, PostgreSQL ``auth_bench_oidc``
recreated, Redis index 12). Without concurrency the figure does not depend on how the load
generator and the server share the cores, so it is the steadier one on a busy machine.
Prints one JSON line; with BENCH_SPY the profile summary goes to
bench/results/oidc-<date>/profile-sequential.txt (share of samples per function, inclusive,
and leaves).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("BENCH_DB", "auth_bench_oidc")
os.environ.setdefault("BENCH_REDIS_DB", "12")
# One keep-alive connection reaches one worker: one is enough, and it is the one profiled.
os.environ.setdefault("BENCH_WORKERS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as oidc  # bench/oidc/run.py
from bench import procstat
from bench import run as bench

PORT = int(os.environ.get("BENCH_SEQ_PORT") or 18380)
MANAGEMENT_PORT = int(os.environ.get("BENCH_SEQ_MANAGEMENT_PORT") or 19390)
TOKENS = int(os.environ.get("BENCH_TOKENS") or 500)


def summarise(raw: Path, out: Path) -> None:
    total, inclusive, leaves = 0, Counter[str](), Counter[str]()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [f for f in stack.split(";") if f]
        if not count.isdigit() or not frames:
            continue
        n = int(count)
        total += n
        for name in {f.rsplit(":", 1)[0] + ")" for f in frames}:
            inclusive[name] += n
        leaves[frames[-1]] += n
    lines = [f"{total} samples holding the GIL", "", "inclusive:"]
    lines += [f"{100 * v / total:5.1f} % {k}" for k, v in inclusive.most_common(120)]
    lines += ["", "leaves:"] + [f"{100 * v / total:5.1f} % {k}" for k, v in leaves.most_common(40)]
    out.write_text("\n".join(lines) + "\n")


def main() -> None:
    import httpx

    workers = str(bench.CONFIG.workers)
    work = Path(tempfile.mkdtemp(prefix="auth-bench-oidc-seq-"))
    bench.fresh_database()
    bench.flush_redis()
    env = bench.service_env(work)
    env["AUTH_OAUTH__SCOPES"] = json.dumps({oidc.SCOPE: "Read the benchmark API"})
    subprocess.run(
        [str(bench.BIN / "auth-service"), "migrate"], env=env, check=True, cwd=bench.ROOT
    )
    client = oidc.create_client(
        env,
        *("--name", "bench sequential", "--type", "confidential"),
        *("--grant-type", "client_credentials", "--scope", oidc.SCOPE),
        *("--resource", oidc.AUDIENCE),
    )
    argv = [str(bench.BIN / "auth-service"), "serve", "--workers", workers]
    argv += ["--port", str(PORT), "--management-port", str(MANAGEMENT_PORT)]
    server = bench.Server("auth-service", argv, env, work / "service.log")
    form = {"grant_type": "client_credentials", "scope": oidc.SCOPE, "resource": oidc.AUDIENCE}
    try:
        bench.wait_http(f"http://127.0.0.1:{MANAGEMENT_PORT}/health/ready")
        time.sleep(3)
        auth = (client["client_id"], client["client_secret"])
        with httpx.Client(base_url=f"http://127.0.0.1:{PORT}", auth=auth) as http:
            for _ in range(50):  # warm-up: connections, statement caches
                http.post("/oauth2/token", data=form)
            meter = procstat.CpuMeter.snapshot(server.pids())
            latencies = []
            start = time.perf_counter()
            for _ in range(TOKENS):
                t = time.perf_counter()
                response = http.post("/oauth2/token", data=form)
                latencies.append((time.perf_counter() - t) * 1000)
                assert response.status_code == 200, response.text
            elapsed = time.perf_counter() - start
            cpu = meter.spent(server.pids())
            latencies.sort()
            result = {
                "tokens": TOKENS,
                "rate_per_s": round(TOKENS / elapsed, 1),
                "server_cpu_ms_per_token": round(cpu * 1000 / TOKENS, 2),
                "p50_ms": round(latencies[TOKENS // 2], 2),
                "p99_ms": round(latencies[int(TOKENS * 0.99)], 2),
                "loadavg": os.getloadavg(),
            }
            if os.environ.get("BENCH_SPY"):
                # BENCH_SPY=svg: a flame graph of the same samples instead of the summary.
                svg = os.environ["BENCH_SPY"] == "svg"
                raw = work / ("profile.svg" if svg else "profile.txt")
                # One worker: uvicorn serves it in the process it started (no spawned child).
                worker = (server.workers() or [server.proc.pid])[0]
                spy = [str(bench.BIN / "py-spy"), "record", "--pid", str(worker), "--gil"]
                spy += ["--duration", "12", "--rate", "200", "--nonblocking"]
                spy += ["--format", "flamegraph" if svg else "raw"]
                profiler = subprocess.Popen(
                    [*spy, "--output", str(raw)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                end = time.monotonic() + 12
                while time.monotonic() < end:
                    http.post("/oauth2/token", data=form)
                profiler.wait(timeout=60)
                out = bench.BENCH / "results" / f"oidc-{time.strftime('%Y-%m-%d')}"
                out.mkdir(parents=True, exist_ok=True)
                if svg:
                    shutil.copyfile(raw, out / "flame-token-sequential.svg")
                else:
                    summarise(raw, out / "profile-sequential.txt")
        print(json.dumps(result))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
