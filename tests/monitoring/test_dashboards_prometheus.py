"""Every dashboard query evaluates on a real Prometheus that scrapes a sample exposition of
every contract metric and loads our recording and alerting rules.

The exposition is built from metric_names.py, not scraped from the service: a plain server
process has no backup, DR-observer or TLS-expiry series, so most panels would be empty.
test_service_metrics.py holds that contract to the service itself (families, types, labels
and the label values on its /metrics), so a query that has data here has data in production.
"""

from __future__ import annotations

import itertools
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from tests.monitoring.metric_names import CONTRACT, HTTP_DURATION_BUCKETS, LABEL_VALUES
from tests.monitoring.monitoring_support import RULES_DIR, promql_queries
from tests.monitoring.promql import expand_grafana
from tests.support.net import free_port
from tests.support.prometheus import Tools

pytestmark = pytest.mark.e2e

DEFAULT_LABEL_VALUES = {
    "method": ("GET", "POST"),
    "route": ("/v1/auth/login", "/v1/me"),
    "limiter": ("ip.login", "account.login"),
    "check": ("database", "redis", "smtp"),
    "host": ("auth.example.com",),
    "kind": ("database", "wal"),
    "channel": ("slack",),
    "result": ("success", "failure"),
    "version": ("1.0.0",),
    "commit": ("abcdef0",),
    "python": ("3.12.4",),
    "hash": ("0123abcd",),
    "observer": ("observer-1", "observer-2"),
    "table": ("sessions", "audit_events"),
}
OTHER_BUCKETS = (0.01, 0.1, 1.0, 10.0)
GRAFANA_VALUES = {"job": "auth-service", "instance": ".*", "route": ".*"}


def _label_sets(metric: str) -> list[dict[str, str]]:
    labels = CONTRACT[metric].labels
    choices = [
        sorted(LABEL_VALUES.get((metric, label)) or DEFAULT_LABEL_VALUES[label]) for label in labels
    ]
    return [dict(zip(labels, combo, strict=True)) for combo in itertools.product(*choices)]


def _fmt(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def exposition(scrape: int) -> str:
    """Text format 0.0.4 with every contract metric; counters grow with each scrape."""
    lines = []
    now = time.time()
    for metric, spec in CONTRACT.items():
        lines.append(f"# HELP {metric} sample")
        lines.append(f"# TYPE {metric} {spec.type}")
        for i, labels in enumerate(_label_sets(metric), start=1):
            if spec.type == "counter":
                lines.append(f"{metric}{_fmt(labels)} {scrape * i}")
            elif spec.type == "gauge":
                value = now - 3600 if metric.endswith("timestamp_seconds") else 1
                lines.append(f"{metric}{_fmt(labels)} {value}")
            else:
                buckets = (
                    HTTP_DURATION_BUCKETS
                    if metric == "auth_http_request_duration_seconds"
                    else OTHER_BUCKETS
                )
                total = scrape * 10 * i
                for j, le in enumerate(buckets, start=1):
                    count = total * j // len(buckets)
                    lines.append(f"{metric}_bucket{_fmt({**labels, 'le': str(le)})} {count}")
                lines.append(f"{metric}_bucket{_fmt({**labels, 'le': '+Inf'})} {total}")
                lines.append(f"{metric}_sum{_fmt(labels)} {total * 0.05}")
                lines.append(f"{metric}_count{_fmt(labels)} {total}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def metrics_target() -> Iterator[str]:
    scrapes = itertools.count(1)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = exposition(next(scrapes)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def prometheus(
    tools: Tools, metrics_target: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("prometheus")
    config = workdir / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "500ms", "evaluation_interval": "500ms"},
                "rule_files": [str(RULES_DIR / "*.yml")],
                "scrape_configs": [
                    {"job_name": "auth-service", "static_configs": [{"targets": [metrics_target]}]},
                ],
            }
        )
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = workdir / "prometheus.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                tools.prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait(proc, log_path, url)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _query(url: str, expr: str) -> dict:
    response = httpx.get(f"{url}/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert response.status_code == 200, body
    return body


def _wait(proc: subprocess.Popen[bytes], log_path: Path, url: str) -> None:
    """Until Prometheus is ready, has scraped a few times and evaluated the recording rules."""
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"prometheus exited {proc.returncode}: {log_path.read_text()}")
        try:
            if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                scrapes = _query(url, 'count_over_time(up{job="auth-service"}[1m])')
                rules = _query(url, "job:auth_http_requests:rate5m")
                if (
                    scrapes["data"]["result"]
                    and float(scrapes["data"]["result"][0]["value"][1]) >= 3
                    and rules["data"]["result"]
                ):
                    return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    targets = httpx.get(f"{url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    errors = [t.get("lastError") for t in targets]
    pytest.fail(
        f"prometheus has no data after 40 s; scrape errors {errors}; log:\n{log_path.read_text()}"
    )


def test_prometheus_loaded_our_rules(prometheus: str) -> None:
    groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    names = {rule["name"] for group in groups for rule in group["rules"]}
    assert "AuthServiceDown" in names
    assert "job:auth_http_request_slow:ratio_rate5m" in names
    unhealthy = [
        (rule["name"], rule.get("lastError"))
        for group in groups
        for rule in group["rules"]
        if rule.get("health") == "err"
    ]
    assert not unhealthy


def test_every_panel_query_evaluates_with_data(prometheus: str) -> None:
    failures, empty = [], []
    with httpx.Client(base_url=prometheus, timeout=10) as client:
        results = []
        for dashboard, panel, expr in promql_queries():
            query = expand_grafana(expr, GRAFANA_VALUES)
            if panel.startswith("variable "):
                query = f"group by (__name__) ({query})"
            response = client.get("/api/v1/query", params={"query": query})
            results.append((dashboard, panel, query, response))
    for dashboard, panel, query, response in results:
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            failures.append(f"{dashboard} / {panel}: {query}: {body.get('error')}")
        elif body.get("warnings"):
            failures.append(f"{dashboard} / {panel}: {query}: warnings {body['warnings']}")
        elif not body["data"]["result"]:
            empty.append(f"{dashboard} / {panel}: {query}")
    assert not failures, "\n".join(failures)
    # The sample exposition has every metric, so an empty result means a query selects labels
    # or values the service never produces.
    assert not empty, "queries without data:\n" + "\n".join(empty)
