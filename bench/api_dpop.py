"""What DPoP adds to a ``/v1`` request: ``GET /v1/users/me`` with a DPoP-bound token (and a
fresh proof per request: signature check, ``ath``, one ``jti`` write) against the same call
with a plain bearer token, on a live server (PostgreSQL, Redis, one worker).

    AUTH_TEST_REDIS_DB=11 .venv/bin/python -m bench.api_dpop [N]

Sequential requests, so the server's CPU per request is measured without queueing: the
service process tree's CPU seconds (``/proc``) over N requests, and p50/p95 latency. The
proofs are signed before the timed loop (client cost excluded). Uses the test suite's
live-server helpers (a fresh database on the local PostgreSQL). ``make bench`` runs it after
the wrk scenarios (wrk's Lua cannot sign ES256 proofs per request) and keeps its figures in
``api-dpop.json`` beside the report (``BENCH_OUT``, default ``bench/results/<date>``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from tests.support.dpop import Holder
from tests.support.live_server import run_live_server
from tests.support.settings import PASSWORD

from bench.procstat import CpuMeter, descendants

ME = "/v1/users/me"


def _measure(
    http: httpx.Client, pids: list[int], headers: list[dict[str, str]]
) -> tuple[float, list[float]]:
    meter = CpuMeter.snapshot(pids)
    ms = []
    for h in headers:
        start = time.perf_counter()
        r = http.get(ME, headers=h)
        ms.append((time.perf_counter() - start) * 1000)
        assert r.status_code == 200, r.text
    return meter.spent(pids) / len(headers), ms


def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, run_live_server(Path(tmp)) as live:
        process = live.server.process
        assert process is not None
        pids = [process.pid, *descendants(process.pid)]
        plain = live.new_user()["access_token"]
        holder = Holder(live.url)
        with live.client() as http:
            email = f"dpop-bench-{os.getpid()}@example.com"
            body = {"email": email, "password": PASSWORD}
            assert http.post("/v1/auth/register", json=body).status_code == 202
            r = http.post(
                "/v1/auth/login", json=body, headers={"DPoP": holder.proof("/v1/auth/login")}
            )
            assert r.status_code == 200, r.text
            bound = r.json()["access_token"]
            results = {}
            for name, make in (
                ("bearer", lambda: {"Authorization": f"Bearer {plain}"}),
                ("dpop", lambda: holder.headers(ME, bound)),
            ):
                _measure(http, pids, [make() for _ in range(20)])  # warm-up
                results[name] = _measure(http, pids, [make() for _ in range(n)])
        for name, (cpu, ms) in results.items():
            p95 = statistics.quantiles(ms, n=20)[18]
            print(
                f"GET /v1/users/me {name:6s}  server CPU {cpu * 1000:6.3f} ms/request  "
                f"p50 {statistics.median(ms):6.2f} ms  p95 {p95:6.2f} ms  n={n}"
            )
        ratio = results["dpop"][0] / results["bearer"][0]
        print(f"DPoP / bearer server CPU per request: {ratio:.2f}")
        _keep(results, ratio, n)


def _keep(results: dict[str, tuple[float, list[float]]], ratio: float, n: int) -> None:
    """The figures as JSON beside ``make bench``'s report."""
    out = Path(
        os.environ.get("BENCH_OUT")
        or Path(__file__).parent / "results" / dt.datetime.now(dt.UTC).date().isoformat()
    )
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        name: {
            "server_cpu_ms_per_request": round(cpu * 1000, 3),
            "p50_ms": round(statistics.median(ms), 2),
            "p95_ms": round(statistics.quantiles(ms, n=20)[18], 2),
        }
        for name, (cpu, ms) in results.items()
    }
    doc = {"requests": n, "dpop_over_bearer_cpu": round(ratio, 2), **figures}
    (out / "api-dpop.json").write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
