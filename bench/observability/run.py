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

BENCH_PATH=/v1/auth/refresh: refresh with rotation, as ``make bench``'s ``refresh`` scenario
(bench/lua/refresh.lua): one wrk thread per connection, each chaining its own rotated token.
Every wrk run (the warm-up too) starts from fresh sessions: BENCH_CONNECTIONS logins of one
registered user before it, outside the measured interval (a reused token would be a replay).
The rate limiters are raised to 1,000,000/minute (still evaluated), as ``make bench`` does.
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
REFRESH = PATH == "/v1/auth/refresh"
LUA = ROOT / "bench" / "lua"
CREDENTIALS = {"email": "observer@example.com", "password": "Tr0ub4dor&3-horse-staple"}


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


def post(port: int, path: str, body: dict[str, str]) -> dict[str, str]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as r:
        raw = r.read()
    return dict(json.loads(raw)) if raw else {}  # registration answers 202, no body


def bearer_token(port: int) -> str:
    """Register and log in a user; its access token authenticates PATH (e.g. /v1/users/me)."""
    post(port, "/v1/auth/register", CREDENTIALS)
    return post(port, "/v1/auth/login", CREDENTIALS)["access_token"]


HEADERS: list[str] = []


def refresh_tokens(port: int, directory: Path) -> Path:
    """One fresh session per connection (the user registered at setup); the file refresh.lua
    reads its chains' first tokens from."""
    tokens = [
        post(port, "/v1/auth/login", CREDENTIALS)["refresh_token"] for _ in range(CONNECTIONS)
    ]
    path = directory / "refresh-tokens.txt"
    path.write_text("".join(t + "\n" for t in tokens))
    return path


def wrk(port: int, tokens: Path | None = None) -> tuple[float, int]:
    """Requests/sec and the number of requests completed (``tokens``: refresh's chains)."""
    url = f"http://127.0.0.1:{port}{PATH}"
    if tokens is not None:
        env = {**os.environ, "BENCH_LUA": str(LUA), "BENCH_REFRESH_TOKENS": str(tokens)}
        args = [f"-t{CONNECTIONS}", "-s", str(LUA / "refresh.lua")]
    else:
        env, args = dict(os.environ), ["-t2", *HEADERS]
    out = subprocess.run(
        ["wrk", *args, f"-c{CONNECTIONS}", f"-d{DURATION}s", url],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    done = re.search(r"(\d+) requests in", out)
    if rps is None or done is None:
        raise SystemExit(f"cannot read wrk output:\n{out}")
    if tokens is not None:  # a broken chain would measure 401s, not refreshes
        summary = json.loads(out.split("BENCH_JSON ", 1)[1].splitlines()[0])
        failed = {k: v for k, v in summary["status"].items() if k != "200"}
        if failed or summary["errors"].get("status"):
            raise SystemExit(f"refresh answered other than 200: {failed} {summary['errors']}")
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
    if REFRESH:
        for env in envs.values():
            for limiter in ("LOGIN_PER_IP", "LOGIN_PER_ACCOUNT", "REFRESH_PER_IP"):
                env[f"AUTH_RATE_LIMITS__{limiter}"] = "1000000/minute"
    if PATH.startswith(AUTHENTICATED) or REFRESH:
        proc, port = start("off", envs["off"], tmp / "setup.log")
        try:
            token = bearer_token(port)
            if not REFRESH:
                HEADERS.extend(["-H", f"Authorization: Bearer {token}"])
        finally:
            stop(proc)
    results: dict[str, list[float]] = {v: [] for v in envs}
    cpu_us: dict[str, list[float]] = {v: [] for v in envs}
    for _ in range(ROUNDS):
        for variant in envs:
            proc, port = start(variant, envs[variant], tmp / f"{variant}.log")
            try:
                # Refresh: the logins' hashing stays out of the measured interval.
                wrk(port, refresh_tokens(port, tmp) if REFRESH else None)  # warm-up, discarded
                tokens = refresh_tokens(port, tmp) if REFRESH else None
                before = procstat.cpu_seconds(proc.pid) or 0.0
                rps, done = wrk(port, tokens)
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
