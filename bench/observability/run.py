"""Cost of metrics + logging + tracing on a cheap endpoint: CPU per request and throughput.

    .venv/bin/python bench/observability/run.py            # 3 rounds x 10 s per variant

"on" is the production path: Prometheus metrics, one JSON access line per request (written
to a file), tracing sampled at 10% (parentbased_traceidratio, 0.1) exported over OTLP/HTTP to
a loopback sink. "off": no metrics (no-op objects), access log off, level WARNING, no
OTEL endpoint. "metrics", "access_log" and "tracing" switch on one signal each. Variants
alternate so background load hits them alike; medians are reported.

The headline figure is server CPU time per request (from /proc, all threads, exporter
included): on a shared machine throughput swings with the neighbours' load, CPU per request
much less. Throughput (wrk Requests/sec) is reported beside it.
Knobs: BENCH_ROUNDS (3), BENCH_DURATION (10), BENCH_CONNECTIONS (32), BENCH_PATH
(/v1/users/me: an endpoint doing real work, one database read per request, bearer token),
BENCH_VARIANTS (comma-separated subset; "off" always runs).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench import procstat  # noqa: E402

BIN = Path(sys.executable).parent
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
DURATION = int(os.environ.get("BENCH_DURATION", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
PATH = os.environ.get("BENCH_PATH", "/.well-known/jwks.json")
# Variants served by the real metric objects; the others get the no-op ones.
WITH_METRICS = ("metrics", "on")
# Paths that need a bearer token: the benchmark registers a user and logs in first.
AUTHENTICATED = ("/v1/users/me", "/v1/sessions")


class Sink(BaseHTTPRequestHandler):
    spans_bytes = 0

    def do_POST(self) -> None:
        Sink.spans_bytes += len(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        return


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(variant: str, env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cmd = [
        str(BIN / "python"),
        "-m",
        "uvicorn",
        f"bench.observability.factory:observability_{'on' if variant in WITH_METRICS else 'off'}",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
    ]
    out = log.open("ab")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=out, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=1) as r:
                if r.status == 200:
                    return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"{variant} did not start; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:  # a stuck graceful shutdown must not stop the benchmark
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


def bearer_token(port: int) -> str:
    """Register and log in a user; its access token authenticates PATH (e.g. /v1/users/me)."""

    def post(path: str, body: dict[str, str]) -> dict[str, str]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            raw = r.read()
        return dict(json.loads(raw)) if raw else {}  # registration answers 202, no body

    credentials = {"email": "observer@example.com", "password": "Tr0ub4dor&3-horse-staple"}
    post("/v1/auth/register", credentials)
    return post("/v1/auth/login", credentials)["access_token"]


HEADERS: list[str] = []


def wrk(port: int) -> tuple[float, int]:
    """Requests/sec and the number of requests completed."""
    url = f"http://127.0.0.1:{port}{PATH}"
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}s", *HEADERS, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    done = re.search(r"(\d+) requests in", out)
    if rps is None or done is None:
        raise SystemExit(f"cannot read wrk output:\n{out}")
    return float(rps.group(1)), int(done.group(1))


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-observability-"))
    sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    common = {k: v for k, v in os.environ.items() if not k.startswith(("AUTH_", "OTEL_"))}
    common.update(
        {
            "PYTHONPATH": str(ROOT),
            "AUTH_DATA_DIR": str(tmp / "data"),
            "AUTH_DATABASE__URL": f"sqlite+aiosqlite:///{tmp / 'auth.db'}",
            "AUTH_SERVER__MANAGEMENT_PORT": "0",
            "AUTH_LOGGING__FORMAT": "json",
            # BENCH_PATH=/v1/users/me: one token serves every round.
            "AUTH_TOKENS__ACCESS_TOKEN_TTL_SECONDS": "7200",
        }
    )
    subprocess.run([str(BIN / "auth-service"), "migrate"], env=common, check=True, cwd=tmp)
    tracing = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.server_address[1]}",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    }
    quiet = {"AUTH_LOGGING__ACCESS_LOG": "false", "AUTH_LOGGING__LEVEL": "WARNING"}
    logged = {"AUTH_LOGGING__ACCESS_LOG": "true", "AUTH_LOGGING__LEVEL": "INFO"}
    envs = {
        "off": {**common, **quiet},
        # One signal at a time (metrics: the "on" factory; the others: the no-op one).
        "metrics": {**common, **quiet},
        "access_log": {**common, **logged},
        "tracing": {**common, **quiet, **tracing},
        "on": {**common, **logged, **tracing},
    }
    if chosen := os.environ.get("BENCH_VARIANTS"):
        envs = {v: envs[v] for v in ["off", *chosen.split(",")] if v in envs}
    if PATH.startswith(AUTHENTICATED):
        proc, port = start("off", envs["off"], tmp / "setup.log")
        try:
            HEADERS.extend(["-H", f"Authorization: Bearer {bearer_token(port)}"])
        finally:
            stop(proc)
    results: dict[str, list[float]] = {v: [] for v in envs}
    cpu_us: dict[str, list[float]] = {v: [] for v in envs}
    for _ in range(ROUNDS):
        for variant in envs:
            proc, port = start(variant, envs[variant], tmp / f"{variant}.log")
            try:
                wrk(port)  # warm-up, discarded
                before = procstat.cpu_seconds(proc.pid) or 0.0
                rps, done = wrk(port)
                after = procstat.cpu_seconds(proc.pid) or 0.0
                results[variant].append(rps)
                cpu_us[variant].append(round((after - before) / done * 1e6, 1))
            finally:
                stop(proc)
    rps = {v: statistics.median(r) for v, r in results.items()}
    cpu = {v: statistics.median(c) for v, c in cpu_us.items()}
    access_lines = sum(
        1
        for log in tmp.glob("*.log")
        for line in log.read_text().splitlines()
        if '"log_type": "access"' in line
    )
    summary = {
        "path": PATH,
        "connections": CONNECTIONS,
        "duration_s": DURATION,
        "rounds": ROUNDS,
        "cpus": os.cpu_count(),
        "rps": results,
        "cpu_us_per_request": cpu_us,
        "median_rps": rps,
        "median_cpu_us_per_request": cpu,
        # The least-disturbed round of each variant: on a shared machine, noise only adds.
        "min_cpu_us_per_request": {v: min(c) for v, c in cpu_us.items()},
        "cpu_cost_percent_of_min": {
            v: round((min(cpu_us[v]) - min(cpu_us["off"])) / min(cpu_us["off"]) * 100, 1)
            for v in envs
            if v != "off"
        },
        "cpu_cost_percent": {
            v: round((cpu[v] - cpu["off"]) / cpu["off"] * 100, 1) for v in envs if v != "off"
        },
        "throughput_cost_percent": {
            v: round((rps["off"] - rps[v]) / rps["off"] * 100, 1) for v in envs if v != "off"
        },
        "access_lines_written": access_lines,
        "otlp_bytes_received": Sink.spans_bytes,
    }
    print(json.dumps(summary, indent=2))
    sink.shutdown()


if __name__ == "__main__":
    main()
