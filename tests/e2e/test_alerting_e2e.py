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
import yaml

from tests.e2e.stack import (
    MONITORING,
    TcpProxy,
    WebhookSink,
    rewrite_alertmanager,
    rewrite_prometheus,
)
from tests.support.daemon import Daemon
from tests.support.net import free_port
from tests.support.prometheus import Tools
from tests.support.server import Server, base_env, migrate, postgres_database
from tests.support.services import POSTGRES_URL
from tests.support.wait import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

ALERT = "AuthDatabaseUnavailable"
RULES = MONITORING / "prometheus" / "rules"
PASSWORD = "Tr0ub4dor&3-horse"


def _runbook(alert: str) -> str:
    """The runbook_url annotation of ``alert`` in monitoring/prometheus/rules."""
    urls = {
        rule["annotations"]["runbook_url"]
        for path in RULES.glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if rule.get("alert") == alert
    }
    assert len(urls) == 1, urls
    return urls.pop()


def _query(prometheus: str, promql: str) -> list[dict[str, object]]:
    r = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=5)
    r.raise_for_status()
    result: list[dict[str, object]] = r.json()["data"]["result"]
    return result


def _wait_query(prometheus: str, promql: str, timeout: float) -> list[dict[str, object]]:
    return wait_for(lambda: _query(prometheus, promql), timeout, promql, interval=0.5)


def test_database_outage_pages_and_resolves(tmp_path: Path, tools: Tools) -> None:
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
                            tools.alertmanager,
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
                            tools.prometheus,
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
                # Both links lead to the rule's own runbook section.
                runbook = _runbook(ALERT)
                assert [a["title_link"] for a in slack["attachments"]] == [runbook]
                assert [link["href"] for link in page["links"]] == [runbook]

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
