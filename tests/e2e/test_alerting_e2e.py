"""End to end: the service on PostgreSQL, scraped by a real Prometheus running the project's
rules, alerting through a real Alertmanager running the project's routing, delivered to a
loopback webhook standing in for PagerDuty and Slack. The database is taken away (a TCP proxy
in front of PostgreSQL is stopped) and brought back: the alert fires, then resolves.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import POSTGRES_URL
from tests.e2e.stack import (
    Daemon,
    TcpProxy,
    WebhookSink,
    free_port,
    rewrite_alertmanager,
    rewrite_prometheus,
)
from tests.integration.observability.server import (
    Server,
    base_env,
    ensure_prometheus_tools,
    migrate,
    postgres_database,
)

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

ALERT = "AuthDatabaseUnavailable"
PASSWORD = "Tr0ub4dor&3-horse"


def _query(prometheus: str, promql: str) -> list[dict[str, object]]:
    r = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=5)
    r.raise_for_status()
    result: list[dict[str, object]] = r.json()["data"]["result"]
    return result


def _wait_query(prometheus: str, promql: str, timeout: float) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = _query(prometheus, promql)
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"{promql} returned nothing for {timeout}s")


def test_database_outage_pages_and_resolves(tmp_path: Path) -> None:
    ensure_prometheus_tools()
    started = time.monotonic()
    upstream = urlsplit(POSTGRES_URL)
    sink = WebhookSink()
    daemons: list[Daemon] = []
    proxy = TcpProxy((upstream.hostname or "127.0.0.1", upstream.port or 5432)).start()
    try:
        with postgres_database() as dsn:
            name = dsn.rsplit("/", 1)[1]
            db_url = f"postgresql+asyncpg://postgres@127.0.0.1:{proxy.port}/{name}"
            env = base_env(
                tmp_path,
                db_url,
                AUTH_HEALTH__INTERVAL_SECONDS="1",
                AUTH_HEALTH__TIMEOUT_SECONDS="1",
                AUTH_DATABASE__POOL_TIMEOUT_SECONDS="2",
            )
            migrate(tmp_path, env)
            with Server(tmp_path, env) as server:
                prom_port, am_port = free_port(), free_port()
                prometheus = f"http://127.0.0.1:{prom_port}"
                alertmanager = f"http://127.0.0.1:{am_port}"
                am_dir = tmp_path / "alertmanager"
                am_dir.mkdir()
                am_config = rewrite_alertmanager(am_dir, webhook=sink.url)
                prom_dir = tmp_path / "prometheus"
                prom_dir.mkdir()
                prom_config = rewrite_prometheus(
                    prom_dir,
                    service=f"127.0.0.1:{server.management_port}",
                    alertmanager=f"127.0.0.1:{am_port}",
                    prometheus=f"127.0.0.1:{prom_port}",
                )
                daemons.append(
                    Daemon(
                        "alertmanager",
                        [
                            "prometheus-alertmanager",
                            f"--config.file={am_config}",
                            f"--storage.path={am_dir / 'data'}",
                            f"--web.listen-address=127.0.0.1:{am_port}",
                            "--cluster.listen-address=",
                        ],
                        tmp_path / "alertmanager.log",
                        f"{alertmanager}/-/ready",
                    ).start()
                )
                daemons.append(
                    Daemon(
                        "prometheus",
                        [
                            "prometheus",
                            f"--config.file={prom_config}",
                            f"--storage.tsdb.path={prom_dir / 'data'}",
                            f"--web.listen-address=127.0.0.1:{prom_port}",
                            "--rules.alert.resend-delay=1s",
                        ],
                        tmp_path / "prometheus.log",
                        f"{prometheus}/-/ready",
                    ).start()
                )

                # Traffic, failed logins included.
                with httpx.Client(base_url=server.url, timeout=30) as client:
                    email = f"e2e-{uuid.uuid4().hex[:8]}@example.com"
                    body = {"email": email, "password": PASSWORD}
                    assert client.post("/v1/auth/register", json=body).status_code == 202
                    assert client.post("/v1/auth/login", json=body).status_code == 200
                    for _ in range(5):
                        bad = {"email": email, "password": "not-the-password"}
                        assert client.post("/v1/auth/login", json=bad).status_code in (401, 429)

                # Prometheus scrapes the service and sees the failed logins.
                _wait_query(prometheus, 'up{job="auth-service"} == 1', 30)
                failures = _wait_query(
                    prometheus, 'auth_logins_total{result="bad_credentials"} >= 4', 30
                )
                assert failures
                duration = float(
                    _query(prometheus, 'scrape_duration_seconds{job="auth-service"}')[0]["value"][1]  # type: ignore[index]
                )
                samples = int(
                    float(
                        _query(prometheus, 'scrape_samples_scraped{job="auth-service"}')[0][
                            "value"
                        ][1]  # type: ignore[index]
                    )
                )
                series = int(
                    float(
                        _query(prometheus, 'count({job="auth-service"})')[0]["value"][1]  # type: ignore[index]
                    )
                )
                assert not _query(prometheus, f'ALERTS{{alertname="{ALERT}"}}')

                # Take the database away.
                outage = time.monotonic()
                proxy.stop()
                _wait_query(prometheus, f'ALERTS{{alertname="{ALERT}",alertstate="firing"}}', 60)
                page = sink.wait_for("/pagerduty", rf'"event_action": "trigger".*{ALERT}', 30)
                slack = sink.wait_for("/slack", rf"FIRING:\d+\] {ALERT} \(critical\)", 30)
                fired_after = time.monotonic() - outage
                assert "runbook" in json.dumps(slack).lower() or "#" in json.dumps(slack)

                # Bring it back: the alert resolves and the resolve is delivered.
                back = time.monotonic()
                proxy.start()
                sink.wait_for(
                    "/pagerduty",
                    rf'"event_action": "resolve".*"dedup_key": "{page["dedup_key"]}"'
                    rf'|"dedup_key": "{page["dedup_key"]}".*"event_action": "resolve"',
                    60,
                )
                sink.wait_for("/slack", rf"RESOLVED\] {ALERT} \(critical\)", 30)
                resolved_after = time.monotonic() - back
    finally:
        for daemon in reversed(daemons):
            daemon.stop()
        proxy.stop()
        sink.close()

    figures = {
        "scrape_duration_seconds": round(duration, 4),
        "samples_per_scrape": samples,
        "series": series,
        "alert_fired_after_outage_seconds": round(fired_after, 1),
        "resolve_delivered_after_recovery_seconds": round(resolved_after, 1),
        "test_seconds": round(time.monotonic() - started, 1),
    }
    print("e2e figures:", json.dumps(figures))
