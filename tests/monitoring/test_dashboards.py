"""monitoring/grafana: provisioning and dashboards name only what the service exposes."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

import pytest

from tests.monitoring.metric_names import CONTRACT, SYNTHETIC, series_names
from tests.monitoring.monitoring_support import (
    DASHBOARDS_DIR,
    GRAFANA_DIR,
    REPO,
    check_matchers,
    dashboards,
    load_yaml,
    panels,
    promql_queries,
    recording_rules,
)
from tests.monitoring.promql import metric_names

GENERATOR = REPO / "scripts" / "monitoring" / "build_dashboards.py"
EXPECTED_DASHBOARDS = {"overview.json", "security.json", "dependencies.json", "backups-dr.json"}
DATASOURCE_UIDS = {"prometheus": "prometheus", "loki": "loki"}


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_dashboards", GENERATOR)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ids(queries: list[tuple[str, str, str]]) -> list[str]:
    return [f"{d}:{t}:{i}" for i, (d, t, _) in enumerate(queries)]


def test_dashboards_are_generated_and_up_to_date() -> None:
    assert set(dashboards()) == EXPECTED_DASHBOARDS
    rendered = _generator().render()
    stale = [name for name, text in rendered.items() if (DASHBOARDS_DIR / name).read_text() != text]
    assert not stale, f"run scripts/monitoring/build_dashboards.py: {stale} out of date"


@pytest.mark.parametrize("name", sorted(EXPECTED_DASHBOARDS))
def test_dashboard_structure(name: str) -> None:
    dash = json.loads((DASHBOARDS_DIR / name).read_text())
    assert 36 <= dash["schemaVersion"] <= 41
    assert dash["uid"].startswith("auth-")
    assert dash["title"].startswith("auth-service / ")
    ids = [p["id"] for p in panels(dash)]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    for panel in panels(dash):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"{panel['title']}: no query"
        for ds in [panel["datasource"], *(t["datasource"] for t in panel["targets"])]:
            assert ds["uid"] == DATASOURCE_UIDS[ds["type"]], f"{panel['title']}: {ds}"


def test_dashboard_uids_are_unique() -> None:
    uids = [d["uid"] for d in dashboards().values()]
    assert len(uids) == len(set(uids))


@pytest.mark.parametrize(
    ("dashboard", "panel", "expr"), promql_queries(), ids=_ids(promql_queries())
)
def test_queries_name_only_exposed_metrics(dashboard: str, panel: str, expr: str) -> None:
    allowed = set(series_names()) | set(SYNTHETIC) | {r["record"] for r in recording_rules()}
    names = metric_names(expr)
    assert names, f"{dashboard} / {panel}: no metric found in {expr!r}"
    unknown = names - allowed
    assert not unknown, f"{dashboard} / {panel}: not exposed by the service: {sorted(unknown)}"


@pytest.mark.parametrize(
    ("dashboard", "panel", "expr"), promql_queries(), ids=_ids(promql_queries())
)
def test_query_label_matchers_match_the_contract(dashboard: str, panel: str, expr: str) -> None:
    check_matchers(f"{dashboard} / {panel}", expr)


def test_every_contract_metric_is_on_a_dashboard() -> None:
    used: set[str] = set()
    for _, _, expr in promql_queries():
        used |= metric_names(expr)
    for rule in recording_rules():
        if rule["record"] in used:
            used |= metric_names(rule["expr"])
    missing = [
        name
        for name, metric in CONTRACT.items()
        if not ({name} | {f"{name}{s}" for s in ("_bucket", "_sum", "_count")}) & used
        and metric.type in ("counter", "gauge", "histogram")
    ]
    assert not missing, f"metrics on no dashboard: {missing}"


def test_overview_is_red_per_route() -> None:
    exprs = [e for d, _, e in promql_queries() if d == "overview.json"]
    per_route = [e for e in exprs if "by (route" in e]
    assert any("auth_http_requests_total" in e and 'status_class="5xx"' in e for e in per_route)
    assert any("auth_http_request_duration_seconds_bucket" in e for e in per_route)
    assert any(re.search(r"rate\(auth_http_requests_total\{[^}]*\}\[", e) for e in per_route)


def test_provisioning() -> None:
    datasources = load_yaml(GRAFANA_DIR / "provisioning" / "datasources" / "datasources.yml")
    by_uid = {d["uid"]: d for d in datasources["datasources"]}
    assert by_uid["prometheus"]["type"] == "prometheus"
    assert by_uid["loki"]["type"] == "loki"
    for field in by_uid["loki"]["jsonData"].get("derivedFields", []):
        assert field["datasourceUid"] in by_uid
    providers = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yml")
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_generated_paths_are_inside_the_repo() -> None:
    assert Path(_generator().OUT).resolve() == DASHBOARDS_DIR.resolve()
