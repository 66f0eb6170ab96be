"""monitoring/alertmanager: config, routes and templates with the real amtool, and inhibition
with a real Alertmanager."""

from __future__ import annotations

import re
import shlex
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.monitoring.monitoring_support import ALERTMANAGER_DIR, alert_rules, load_yaml, run
from tests.support.prometheus import Tools

CONFIG = ALERTMANAGER_DIR / "alertmanager.yml"
TEMPLATES = ALERTMANAGER_DIR / "templates"
ROUTE_CASES = ALERTMANAGER_DIR / "tests" / "routes.txt"
SECRETS_DIR = "/etc/alertmanager/secrets/"
BY_SEVERITY = {
    "critical": "pagerduty,slack-critical",
    "warning": "slack-warning",
    "info": "email",
}


def _route_cases() -> list[tuple[str, list[str]]]:
    cases = []
    for line in ROUTE_CASES.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            expected, *labels = shlex.split(line)
            cases.append((expected, labels))
    return cases


@pytest.fixture(scope="module")
def testable_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed config with only its template glob pointed at the repository, so that
    amtool parses our templates (in production they are mounted at /etc/alertmanager/templates).
    The secret files need not exist: Alertmanager reads them when it sends."""
    doc = load_yaml(CONFIG)
    doc["templates"] = [str(TEMPLATES / "*.tmpl")]
    path = tmp_path_factory.mktemp("alertmanager") / "alertmanager.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_committed_config_passes_check_config(tools: Tools) -> None:
    assert "SUCCESS" in run([tools.amtool, "check-config", str(CONFIG)])


def test_config_with_templates_passes_check_config(tools: Tools, testable_config: Path) -> None:
    out = run([tools.amtool, "check-config", str(testable_config)])
    assert re.search(r"1 templates\s+SUCCESS", out), out


def test_secrets_come_from_files() -> None:
    text = CONFIG.read_text(encoding="utf-8")
    doc = load_yaml(CONFIG)
    for inline in ("api_url:", "routing_key:", "service_key:", "auth_password:", "url:"):
        assert not re.search(rf"^\s*(- )?(slack_|smtp_)?{inline}", text, re.M), inline
    files = re.findall(r"_file:\s*(\S+)", text)
    assert files
    assert all(f.startswith(SECRETS_DIR) for f in files), files
    assert doc["global"]["smtp_auth_password_file"] == SECRETS_DIR + "smtp_password"
    assert doc["global"]["slack_api_url_file"] == SECRETS_DIR + "slack_webhook_url"


def test_grouping_and_inhibition_shape() -> None:
    doc = load_yaml(CONFIG)
    assert doc["route"]["group_by"] == ["alertname", "severity"]
    rule = doc["inhibit_rules"][0]
    assert rule["source_matchers"] == ['severity="critical"']
    assert rule["target_matchers"] == ['severity="warning"']
    assert rule["equal"][0] == "alertname"


@pytest.mark.parametrize(("expected", "labels"), _route_cases(), ids=lambda v: str(v))
def test_route_cases(tools: Tools, expected: str, labels: list[str]) -> None:
    _assert_route(tools, expected, labels)


def _alerts_by_severity() -> list[tuple[str, str, str]]:
    seen = {(r["alert"], r["labels"]["severity"], r["labels"]["team"]) for r in alert_rules()}
    return sorted(seen)


@pytest.mark.parametrize(
    ("alertname", "severity", "team"), _alerts_by_severity(), ids=lambda v: str(v)
)
def test_every_rule_routes_by_its_severity(
    tools: Tools, alertname: str, severity: str, team: str
) -> None:
    labels = [f"alertname={alertname}", f"severity={severity}", f"team={team}", "job=auth-service"]
    _assert_route(tools, BY_SEVERITY[severity], labels)


def _assert_route(tools: Tools, expected: str, labels: list[str]) -> None:
    out = run(
        [
            tools.amtool,
            "config",
            "routes",
            "test",
            f"--config.file={CONFIG}",
            f"--verify.receivers={expected}",
            *labels,
        ]
    )
    assert out.strip() == expected


@pytest.mark.parametrize("name", ["auth.title", "auth.text", "auth.slack.color", "auth.email.html"])
def test_templates_render(tools: Tools, name: str) -> None:
    out = run(
        [
            tools.amtool,
            "template",
            "render",
            f"--template.glob={TEMPLATES / '*.tmpl'}",
            f'--template.text={{{{ template "{name}" . }}}}',
        ]
    )
    assert "<no value>" not in out


def test_receivers_use_the_defined_templates() -> None:
    defined = set(re.findall(r'define "([^"]+)"', (TEMPLATES / "auth.tmpl").read_text()))
    used = set(re.findall(r'template "([^"]+)"', CONFIG.read_text(encoding="utf-8")))
    assert used
    assert used <= defined


# --- a real Alertmanager: inhibition ----------------------------------------------------------


@pytest.mark.e2e
def test_critical_inhibits_warning_of_the_same_alert(alertmanager: str) -> None:
    base = {"job": "auth-service", "team": "platform"}
    alerts = [
        {"alertname": "AuthReplicationLag", "severity": "critical", "instance": "b:9000"},
        {"alertname": "AuthReplicationLag", "severity": "warning", "instance": "b:9000"},
        # same alert, other instance: not inhibited
        {"alertname": "AuthReplicationLag", "severity": "warning", "instance": "a:9000"},
        # other alert, same scope: not inhibited
        {
            "alertname": "AuthBackupStale",
            "severity": "warning",
            "instance": "b:9000",
            "kind": "database",
        },
    ]
    response = httpx.post(
        f"{alertmanager}/api/v2/alerts",
        json=[{"labels": {**base, **a}, "annotations": {"summary": "test"}} for a in alerts],
        timeout=5,
    )
    assert response.status_code == 200, response.text

    def states() -> dict[tuple[str, str, str], str]:
        got = httpx.get(f"{alertmanager}/api/v2/alerts", timeout=5).json()
        return {
            (a["labels"]["alertname"], a["labels"]["severity"], a["labels"]["instance"]): a[
                "status"
            ]["state"]
            for a in got
        }

    expected = {
        ("AuthReplicationLag", "critical", "b:9000"): "active",
        ("AuthReplicationLag", "warning", "b:9000"): "suppressed",
        ("AuthReplicationLag", "warning", "a:9000"): "active",
        ("AuthBackupStale", "warning", "b:9000"): "active",
    }
    deadline = time.monotonic() + 10
    while (current := states()) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert current == expected
