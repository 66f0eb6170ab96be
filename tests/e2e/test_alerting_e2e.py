"""End to end: the service on PostgreSQL, scraped by a real Prometheus running the project's
rules, alerting through a real Alertmanager running the project's routing, delivered to a
loopback webhook standing in for PagerDuty and Slack, and by email to a real SMTP server
(aiosmtpd). The database is taken away (a TCP proxy
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
from aiosmtpd.smtp import AuthResult, LoginPassword

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
from tests.support.smtp import smtp_server
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


def _alertmanager(tools: Tools, config: Path, state: Path, port: int) -> Daemon:
    """A real Alertmanager with ``config`` on loopback ``port`` (data and log under ``state``),
    started and ready."""
    return Daemon(
        "alertmanager",
        [
            tools.alertmanager,
            f"--config.file={config}",
            f"--storage.path={state / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        state / "alertmanager.log",
        f"http://127.0.0.1:{port}/-/ready",
    ).start()


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
                daemons.append(_alertmanager(tools, am_config, am_dir, am_port))
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


class _Recorder:
    """aiosmtpd authenticator: accepts, and keeps the credentials it was given."""

    def __init__(self) -> None:
        self.credentials: list[tuple[str, str, str]] = []

    def __call__(
        self, server: object, session: object, envelope: object, mechanism: str, auth_data: object
    ) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        self.credentials.append((mechanism, auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=True)


def test_info_alert_is_mailed(tmp_path: Path, tools: Tools) -> None:
    """The info route: a real Alertmanager with the project's routing, templates and SMTP
    settings (password from its secret file) delivers to a real SMTP server (aiosmtpd); the
    resolve is not mailed (send_resolved: false). The alert is posted to Alertmanager's API
    with the labels and annotations of the info rule AuthVersionSkew (its expression needs two
    versions of the service running)."""
    alert = "AuthVersionSkew"
    rule = next(
        r
        for path in RULES.glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for r in group["rules"]
        if r.get("alert") == alert
    )
    assert rule["labels"]["severity"] == "info"
    recorder = _Recorder()
    sink = WebhookSink()
    daemon = None
    # PLAIN only: aiosmtpd's LOGIN challenge ("User Name") is not the "Username:" Alertmanager's
    # LOGIN client expects, and it aborts. Go's PLAIN goes over plaintext to loopback only.
    with smtp_server(
        authenticator=recorder, auth_require_tls=False, auth_exclude_mechanism=["LOGIN"]
    ) as (inbox, smtp_port):
        try:
            am_port = free_port()
            alertmanager = f"http://127.0.0.1:{am_port}"
            am_dir = tmp_path / "alertmanager"
            am_dir.mkdir()
            config = rewrite_alertmanager(am_dir, webhook=sink.url, smtp=f"127.0.0.1:{smtp_port}")
            daemon = _alertmanager(tools, config, am_dir, am_port)
            labels = {"alertname": alert, "job": "auth-service", **rule["labels"]}
            annotations = {
                "summary": "auth-service runs 2 different versions",
                "description": "Instances of auth-service report different versions.",
                "runbook_url": rule["annotations"]["runbook_url"],
            }
            posted = time.monotonic()
            r = httpx.post(
                f"{alertmanager}/api/v2/alerts",
                json=[{"labels": labels, "annotations": annotations}],
                timeout=5,
            )
            assert r.status_code == 200, r.text
            wait_for(lambda: inbox.messages, 30, "the info alert's email")
            delivered_after = time.monotonic() - posted
            (message,) = inbox.messages
            assert message["To"] == "auth-team@example.com"
            assert message["From"] == "alertmanager@example.com"
            assert message["Subject"] == f"[FIRING:1] {alert} (info)"
            html = message.get_body(("html",))
            text = message.get_body(("plain",))
            assert html is not None
            assert text is not None
            assert f'<a href="{annotations["runbook_url"]}">Runbook</a>' in html.get_content()
            assert f"Runbook: {annotations['runbook_url']}" in text.get_content()
            assert "auth-service runs 2 different versions" in text.get_content()
            # Authenticated as configured, with the password from the secret file.
            assert set(recorder.credentials) == {
                ("PLAIN", "alertmanager@example.com", "e2e-smtp-password")
            }

            # Resolved: info mail is not resent on resolve.
            r = httpx.post(
                f"{alertmanager}/api/v2/alerts",
                json=[
                    {
                        "labels": labels,
                        "annotations": annotations,
                        "endsAt": "2000-01-01T00:00:00Z",
                    }
                ],
                timeout=5,
            )
            assert r.status_code == 200, r.text
            wait_for(
                lambda: (
                    not httpx.get(
                        f"{alertmanager}/api/v2/alerts", params={"active": "true"}, timeout=5
                    ).json()
                ),
                30,
                "the alert resolved",
            )
            time.sleep(3)  # several group intervals (1 s): a resolve mail would have gone
            assert len(inbox.messages) == 1
        finally:
            if daemon is not None:
                daemon.stop()
            sink.close()
    print("e2e figures:", json.dumps({"email_delivered_after_seconds": round(delivered_after, 2)}))
