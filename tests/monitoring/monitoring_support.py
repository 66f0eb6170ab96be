"""Paths and helpers shared by the monitoring tests."""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.monitoring.metric_names import CONTRACT, HTTP_DURATION_BUCKETS, LABEL_VALUES
from tests.monitoring.promql import matchers

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "monitoring"
PROMETHEUS_DIR = MONITORING / "prometheus"
RULES_DIR = PROMETHEUS_DIR / "rules"
RULE_TESTS_DIR = PROMETHEUS_DIR / "tests"
ALERTMANAGER_DIR = MONITORING / "alertmanager"
GRAFANA_DIR = MONITORING / "grafana"
DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
LOKI_DIR = MONITORING / "loki"
RUNBOOK = REPO / "docs" / "operations" / "observability.md"
# Labels Prometheus adds to every series of a target, on top of each metric's own labels.
TARGET_LABELS = frozenset({"job", "instance"})


def run(cmd: list[str], *, cwd: Path | None = None, timeout: float = 60) -> str:
    """Run a tool, fail the test with its output when it exits non-zero, return stdout."""
    proc = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout\n{proc.stdout}"
            f"\n--- stderr\n{proc.stderr}"
        )
    return proc.stdout


def load_yaml(path: Path) -> dict:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@cache
def alert_rules() -> list[dict]:
    """Every alerting rule of monitoring/prometheus/rules (one entry per rule, not per name)."""
    rules = []
    for path in sorted(RULES_DIR.glob("*.yml")):
        for group in load_yaml(path).get("groups", []):
            rules.extend(rule for rule in group["rules"] if "alert" in rule)
    return rules


@cache
def recording_rules() -> list[dict]:
    rules = []
    for path in sorted(RULES_DIR.glob("*.yml")):
        for group in load_yaml(path).get("groups", []):
            rules.extend(rule for rule in group["rules"] if "record" in rule)
    return rules


def check_matchers(name: str, expr: str) -> None:
    """Label names exist on the metric; exact/alternation values are ones the service emits."""
    for m in matchers(expr):
        base = family(m.metric) if m.metric else None
        if base is None:
            continue
        metric = CONTRACT[base]
        allowed_labels = set(metric.labels) | TARGET_LABELS
        if metric.type == "histogram" and m.metric and m.metric.endswith("_bucket"):
            allowed_labels.add("le")
        assert m.label in allowed_labels, f"{name}: {m.metric} has no label {m.label!r}"
        known = LABEL_VALUES.get((base, m.label))
        if known and m.op in ("=", "=~") and "$" not in m.value:
            values = m.value.split("|") if m.op == "=~" else [m.value]
            unknown = [v for v in values if v not in known]
            assert not unknown, f"{name}: {base}{{{m.label}}} never has value(s) {unknown}"
        if m.label == "le" and base == "auth_http_request_duration_seconds":
            for value in m.value.split("|"):
                assert float(value) in HTTP_DURATION_BUCKETS, f"{name}: no bucket le={value}"


def family(series: str) -> str | None:
    if series in CONTRACT:
        return series
    for suffix in ("_bucket", "_sum", "_count"):
        base = series.removesuffix(suffix)
        if base != series and CONTRACT.get(base, None) and CONTRACT[base].type == "histogram":
            return base
    return None


# ---- dashboards ------------------------------------------------------------------------------


def dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS_DIR.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def promql_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expression) of every Prometheus query, variables too."""
    queries = []
    for name, dash in dashboards().items():
        for panel in panels(dash):
            for target in panel.get("targets", []):
                ds = target.get("datasource") or panel.get("datasource") or {}
                if ds.get("type") == "prometheus":
                    queries.append((name, panel["title"], target["expr"]))
        for var in dash.get("templating", {}).get("list", []):
            if var.get("type") == "query" and var["datasource"]["type"] == "prometheus":
                query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
                match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query)
                assert match, f"{name}: variable {var['name']}: unexpected query {query}"
                queries.append((name, f"variable {var['name']}", match.group(1)))
    return queries
