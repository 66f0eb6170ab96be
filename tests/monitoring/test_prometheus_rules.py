"""monitoring/prometheus: configs, recording and alerting rules, checked with the real promtool."""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from tests.monitoring.metric_names import CONTRACT, SYNTHETIC, series_names
from tests.monitoring.monitoring_support import (
    PROMETHEUS_DIR,
    RULE_TESTS_DIR,
    RULES_DIR,
    RUNBOOK,
    alert_rules,
    check_matchers,
    family,
    load_yaml,
    recording_rules,
    run,
)
from tests.monitoring.promql import grouping_labels, metric_names
from tests.support.prometheus import Tools

RUNBOOK_BASE = (
    "https://github.com/auth-service/auth-service/blob/main/docs/operations/observability.md"
)
SEVERITIES = {"critical", "warning", "info"}
TEAMS = {"auth", "security", "platform"}
ALERT_NAMES = sorted({rule["alert"] for rule in alert_rules()})


def _rule_test_docs() -> list[tuple[Path, dict]]:
    return [(path, load_yaml(path)) for path in sorted(RULE_TESTS_DIR.glob("*.yml"))]


def _allowed_series() -> set[str]:
    return set(series_names()) | set(SYNTHETIC) | {r["record"] for r in recording_rules()}


# --- promtool ----------------------------------------------------------------------------------


def test_compose_config_passes_promtool(tools: Tools) -> None:
    out = run([tools.promtool, "check", "config", str(PROMETHEUS_DIR / "prometheus.yml")])
    assert "SUCCESS" in out


def test_kubernetes_config_passes_promtool(tools: Tools, tmp_path: Path) -> None:
    """Debian builds Prometheus without Kubernetes discovery; there the SD blocks are swapped
    for static targets so that everything else (relabelling, rules) is still checked."""
    config = PROMETHEUS_DIR / "prometheus-kubernetes.yml"
    proc_out = _try_check(tools, config)
    if proc_out is not None:
        return
    doc = load_yaml(config)
    for am in doc["alerting"]["alertmanagers"]:
        am.pop("kubernetes_sd_configs")
        am["static_configs"] = [{"targets": ["alertmanager:9093"]}]
    for job in doc["scrape_configs"]:
        job.pop("kubernetes_sd_configs")
        job["static_configs"] = [{"targets": ["auth-service:9000"]}]
    shutil.copytree(RULES_DIR, tmp_path / "rules")
    copy = tmp_path / "prometheus-kubernetes.yml"
    copy.write_text(yaml.safe_dump(doc))
    assert "SUCCESS" in run([tools.promtool, "check", "config", str(copy)])


def _try_check(tools: Tools, config: Path) -> str | None:
    import subprocess

    proc = subprocess.run(
        [tools.promtool, "check", "config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode == 0:
        return proc.stdout
    output = proc.stdout + proc.stderr
    if "kubernetes_sd_configs not found" not in output:
        pytest.fail(f"promtool check config {config.name}:\n{output}")
    return None


def test_rules_pass_promtool_check(tools: Tools) -> None:
    files = [str(p) for p in sorted(RULES_DIR.glob("*.yml"))]
    assert files
    out = run([tools.promtool, "check", "rules", *files])
    assert out.count("SUCCESS") == len(files)


def test_rule_unit_tests_pass(tools: Tools) -> None:
    files = [str(p) for p in sorted(RULE_TESTS_DIR.glob("*.yml"))]
    assert files
    out = run([tools.promtool, "test", "rules", *files], timeout=120)
    assert "SUCCESS" in out


# --- scrape configuration ----------------------------------------------------------------------


def test_compose_config_scrapes_every_replica_on_the_management_port() -> None:
    doc = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    job = next(j for j in doc["scrape_configs"] if j["job_name"] == "auth-service")
    assert job.get("metrics_path", "/metrics") == "/metrics"
    (sd,) = job["dns_sd_configs"]
    assert (sd["names"], sd["type"], sd["port"]) == (["auth-service"], "A", 9000)
    ams = doc["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert ams == ["alertmanager:9093"]
    assert doc["rule_files"] == ["rules/*.yml"]


def test_kubernetes_config_keeps_only_auth_service_management_port() -> None:
    doc = load_yaml(PROMETHEUS_DIR / "prometheus-kubernetes.yml")
    job = next(j for j in doc["scrape_configs"] if j["job_name"] == "auth-service")
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    keeps = {
        tuple(r["source_labels"]): r["regex"]
        for r in job["relabel_configs"]
        if r.get("action") == "keep"
    }
    assert keeps[("__meta_kubernetes_pod_label_app_kubernetes_io_name",)] == "auth-service"
    assert keeps[("__meta_kubernetes_pod_container_port_name",)] == "management"


# --- alert rules: labels, annotations, runbooks ------------------------------------------------


@pytest.mark.parametrize(
    "rule", alert_rules(), ids=lambda r: f"{r['alert']}-{r['labels'].get('severity')}"
)
def test_alert_has_severity_team_and_annotations(rule: dict) -> None:
    labels, annotations = rule["labels"], rule.get("annotations", {})
    assert labels.get("severity") in SEVERITIES
    assert labels.get("team") in TEAMS
    for key in ("summary", "description"):
        assert annotations.get(key, "").strip(), f"{rule['alert']}: no {key}"
    assert annotations.get("runbook_url") == f"{RUNBOOK_BASE}#{rule['alert'].lower()}"


def test_alert_names_are_unique_per_severity() -> None:
    seen = [(r["alert"], r["labels"]["severity"]) for r in alert_rules()]
    assert len(seen) == len(set(seen))


def _github_anchor(heading: str) -> str:
    """GitHub's heading slug: lower-case, punctuation dropped, spaces to hyphens."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def test_every_alert_has_a_runbook_section() -> None:
    text = re.sub(r"^```.*?^```", "", RUNBOOK.read_text(encoding="utf-8"), flags=re.M | re.S)
    assert re.search(r"^# Alerts\s*$", text, re.M), "docs: no top-level '# Alerts' heading"
    alerts_part = re.split(r"^# Alerts\s*$", text, flags=re.M)[1]
    alerts_part = re.split(r"^# (?!#)", alerts_part, flags=re.M)[0]
    anchors = {_github_anchor(h) for h in re.findall(r"^## (.+)$", alerts_part, re.M)}
    missing = [name for name in ALERT_NAMES if name.lower() not in anchors]
    assert not missing, f"no '## <AlertName>' runbook section under '# Alerts' for {missing}"


# --- alert rules: unit-test coverage -----------------------------------------------------------


def test_every_alert_fires_and_stays_silent_in_a_unit_test() -> None:
    fires: dict[str, set[str]] = defaultdict(set)
    silent: set[str] = set()
    for _, doc in _rule_test_docs():
        for group in doc["tests"]:
            for case in group.get("alert_rule_test", []):
                expected = case.get("exp_alerts") or []
                if not expected:
                    silent.add(case["alertname"])
                for alert in expected:
                    fires[case["alertname"]].add(alert["exp_labels"]["severity"])
    severities: dict[str, set[str]] = defaultdict(set)
    for rule in alert_rules():
        severities[rule["alert"]].add(rule["labels"]["severity"])
    problems = []
    for name in ALERT_NAMES:
        if name not in silent:
            problems.append(f"{name}: no case where it stays silent")
        if not severities[name] <= fires[name]:
            problems.append(f"{name}: never fires with {sorted(severities[name] - fires[name])}")
    assert not problems, "\n".join(problems)


def test_rule_tests_cover_only_existing_alerts() -> None:
    for path, doc in _rule_test_docs():
        for group in doc["tests"]:
            for case in group.get("alert_rule_test", []):
                assert case["alertname"] in ALERT_NAMES, f"{path.name}: {case['alertname']}"


# --- rules name only what the service exposes --------------------------------------------------


def _rule_exprs() -> list[tuple[str, str]]:
    return [(r.get("alert") or r["record"], r["expr"]) for r in alert_rules() + recording_rules()]


@pytest.mark.parametrize(("name", "expr"), _rule_exprs(), ids=[n for n, _ in _rule_exprs()])
def test_rule_names_only_contract_metrics(name: str, expr: str) -> None:
    unknown = metric_names(expr) - _allowed_series()
    assert not unknown, f"{name} uses metrics the service does not expose: {sorted(unknown)}"


@pytest.mark.parametrize(("name", "expr"), _rule_exprs(), ids=[n for n, _ in _rule_exprs()])
def test_rule_label_matchers_match_the_contract(name: str, expr: str) -> None:
    check_matchers(name, expr)


def test_recording_rules_group_by_existing_labels() -> None:
    for rule in recording_rules():
        used = grouping_labels(rule["expr"]) - {"job", "instance", "le"}
        families = [family(n) for n in metric_names(rule["expr"])]
        available = {lab for f in families if f for lab in CONTRACT[f].labels}
        assert used <= available, f"{rule['record']}: groups by {used - available}"
