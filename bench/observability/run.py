"""Cost of metrics + logging + tracing on a cheap endpoint: CPU per request and throughput.

    .venv/bin/python bench/observability/run.py            # 3 rounds x 10 s per variant

"on" is the production path: Prometheus metrics, one JSON access line per request (written
to a file), tracing sampled at 10% (parentbased_traceidratio, 0.1) exported over OTLP/HTTP to
a loopback sink. "off": no metrics (no-op objects), access log off, level WARNING, no
OTEL endpoint. Variants alternate so background load hits both alike; medians are reported.

The headline figure is server CPU time per request (from /proc, all threads, exporter
included): on a shared machine throughput swings with the neighbours' load, CPU per request
much less. Throughput (wrk Requests/sec) is reported beside it.
Knobs: BENCH_ROUNDS (3), BENCH_DURATION (10), BENCH_CONNECTIONS (32), BENCH_PATH.
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
        f"bench.observability.factory:observability_{'off' if variant == 'off' else 'on'}",
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
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{PATH}", timeout=1) as r:
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


def wrk(port: int) -> tuple[float, int]:
    """Requests/sec and the number of requests completed."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{DURATION}s", f"http://127.0.0.1:{port}{PATH}"],
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
        }
    )
    subprocess.run([str(BIN / "auth-service"), "migrate"], env=common, check=True, cwd=tmp)
    tracing = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.server_address[1]}",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    }
    envs = {
        "off": {**common, "AUTH_LOGGING__ACCESS_LOG": "false", "AUTH_LOGGING__LEVEL": "WARNING"},
        "on": {
            **common,
            "AUTH_LOGGING__ACCESS_LOG": "true",
            "AUTH_LOGGING__LEVEL": "INFO",
            **tracing,
        },
        # Everything but the access log: shows what one JSON line per request costs.
        "on_without_access_log": {
            **common,
            "AUTH_LOGGING__ACCESS_LOG": "false",
            "AUTH_LOGGING__LEVEL": "INFO",
            **tracing,
        },
    }
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
        1 for line in (tmp / "on.log").read_text().splitlines() if '"log_type": "access"' in line
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
