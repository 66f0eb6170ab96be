"""k8s/: the namespace guard rails, the rendered manifests (no drift from the chart), and the
chart's copies of the monitoring/ rules and dashboards (one source of truth)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deploy.deploy_support import (
    CHART,
    OVERLAYS,
    ROOT,
    Obj,
    component,
    find,
    load_yaml,
    pod_templates,
    render,
)

K8S = ROOT / "k8s"
MONITORING = ROOT / "monitoring"

UNITS = {
    "m": 1e-3,
    "": 1,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity(value: str | int | float) -> float:
    text = str(value)
    for suffix in sorted(UNITS, key=len, reverse=True):
        if suffix and text.endswith(suffix):
            return float(text[: -len(suffix)]) * UNITS[suffix]
    return float(text)


def namespace_objects() -> list[Obj]:
    return [o for o in yaml.safe_load_all((K8S / "namespace.yaml").read_text()) if o]


def test_namespace_enforces_pod_security_restricted() -> None:
    (ns,) = [o for o in namespace_objects() if o["kind"] == "Namespace"]
    labels = ns["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


def test_kustomization_lists_existing_files() -> None:
    for kustomization in (K8S / "kustomization.yaml", K8S / "monitoring" / "kustomization.yaml"):
        for resource in load_yaml(kustomization)["resources"]:
            assert (kustomization.parent / resource).is_file(), resource


def test_rendered_manifests_match_the_chart(helm: str) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "deploy" / "render_k8s.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, (
        "k8s/ drifted from the chart, run `make k8s`:\n" + proc.stderr[-3000:]
    )


def test_quota_fits_the_production_release_at_full_scale(helm: str) -> None:
    """Server pods at HPA max + 1 surge, plus the migration, backup and WAL-stream pods, must
    fit in the ResourceQuota, and each container under the LimitRange maximum."""
    objs = render(helm, ("values-production.yaml",))
    (hpa,) = find(objs, "HorizontalPodAutoscaler")
    totals = {
        "pods": 0.0,
        "requests.cpu": 0.0,
        "requests.memory": 0.0,
        "limits.cpu": 0.0,
        "limits.memory": 0.0,
    }
    (limit_range,) = [o for o in namespace_objects() if o["kind"] == "LimitRange"]
    (container_limits,) = [
        lim for lim in limit_range["spec"]["limits"] if lim["type"] == "Container"
    ]
    for owner, pod in pod_templates(objs):
        count = hpa["spec"]["maxReplicas"] + 1 if component(owner) == "server" else 1
        totals["pods"] += count
        for c in pod["spec"]["containers"]:
            for section in ("requests", "limits"):
                for res in ("cpu", "memory"):
                    totals[f"{section}.{res}"] += count * quantity(c["resources"][section][res])
            for res in ("cpu", "memory"):
                assert quantity(c["resources"]["limits"][res]) <= quantity(
                    container_limits["max"][res]
                )
    (quota,) = [o for o in namespace_objects() if o["kind"] == "ResourceQuota"]
    hard = quota["spec"]["hard"]
    for key, used in totals.items():
        assert used <= quantity(hard[key]), (
            f"{key}: {used} needed at full scale > quota {hard[key]}"
        )


def test_chart_copies_of_monitoring_files_are_current() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "deploy" / "helm_sync.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_prometheus_rule_is_built_from_monitoring_rules(helm: str) -> None:
    sources = sorted((MONITORING / "prometheus" / "rules").glob("*.yml"))
    assert sources, "monitoring/prometheus/rules/*.yml must exist"
    expected = [g for path in sources for g in (load_yaml(path) or {}).get("groups", [])]
    objs = render(helm, ("values-production.yaml",))
    (rule,) = find(objs, "PrometheusRule")
    assert rule["spec"]["groups"] == expected
    for group in rule["spec"]["groups"]:
        for r in group["rules"]:
            assert r.get("expr")
            assert ("alert" in r) != ("record" in r)


def test_dashboards_are_built_from_monitoring_dashboards(helm: str) -> None:
    sources = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))
    assert sources, "monitoring/grafana/dashboards/*.json must exist"
    objs = render(helm, ("values-production.yaml",))
    maps = {
        name: cm
        for cm in find(objs, "ConfigMap")
        for name in cm.get("data", {})
        if name.endswith(".json")
    }
    assert sorted(maps) == [p.name for p in sources]
    for path in sources:
        cm = maps[path.name]
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(cm["data"][path.name]) == json.loads(path.read_text())


def test_service_monitor_scrapes_the_management_port_as_job_auth_service(helm: str) -> None:
    objs = render(helm, ("values-production.yaml",))
    (sm,) = find(objs, "ServiceMonitor")
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] == "management"
    assert endpoint["path"] == "/metrics"
    services = [
        s
        for s in find(objs, "Service")
        if sm["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
    ]
    assert [s["metadata"]["name"] for s in services] == ["auth-service-management"]
    # The alert rules select job="auth-service": the job label comes from this Service label.
    assert services[0]["metadata"]["labels"][sm["spec"]["jobLabel"]] == "auth-service"


@pytest.mark.parametrize(
    "path", sorted(p.relative_to(ROOT) for p in (CHART / "files").rglob("*") if p.is_file())
)
def test_chart_files_have_a_source_in_monitoring(path: Path) -> None:
    rel = path.relative_to(Path("helm/auth-service/files"))
    assert (MONITORING / rel).is_file(), f"{path} has no source in monitoring/"


def test_overlays_rendered_by_make_are_the_ones_tested() -> None:
    """mk/deploy.mk's CHART_OVERLAYS (linted, rendered, validated by deploy-check) and the
    overlays the policy tests render are the same list, and each file exists."""
    makefile = (ROOT / "mk" / "deploy.mk").read_text(encoding="utf-8")
    (line,) = [ln for ln in makefile.splitlines() if ln.startswith("CHART_OVERLAYS")]
    assert tuple(line.split(":=", 1)[1].split()) == OVERLAYS
    for overlay in OVERLAYS:
        assert (CHART / overlay).is_file(), overlay
