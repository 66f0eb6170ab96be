"""monitoring/loki: Loki and Promtail configuration. No loki/promtail binary is packaged for
Debian (its `loki` package is unrelated), so this checks structure, not the running tools."""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from tests.monitoring.monitoring_support import DASHBOARDS_DIR, LOKI_DIR, load_yaml

# Labels a log stream may carry: bounded value sets only.
ALLOWED_LABELS = {"level", "log_type", "route", "status_class", "service", "container", "stream"}
# Fields that must never become labels (unbounded: one stream per request/user/...).
FORBIDDEN_LABELS = {
    "request_id",
    "trace_id",
    "span_id",
    "user_id",
    "user",
    "email",
    "session_id",
    "tenant",
    "tenant_id",
    "ip",
    "client_ip",
    "remote_addr",
    "path",
    "url",
    "status",
    "duration",
    "duration_ms",
    "event",
    "timestamp",
    "message",
    "msg",
}


def _stages(job: dict[str, Any]) -> list[tuple[str, Any]]:
    return [next(iter(stage.items())) for stage in job["pipeline_stages"]]


def _promtail_job() -> dict[str, Any]:
    (job,) = load_yaml(LOKI_DIR / "promtail.yaml")["scrape_configs"]
    return job


def stream_labels() -> set[str]:
    job = _promtail_job()
    labels = {r["target_label"] for r in job.get("relabel_configs", []) if "target_label" in r}
    for kind, body in _stages(job):
        if kind == "labels":
            labels |= set(body)
        if kind == "static_labels":
            labels |= set(body)
    return labels


def test_promtail_labels_are_low_cardinality_only() -> None:
    labels = stream_labels()
    assert {"level", "log_type", "route", "status_class"} <= labels
    assert not labels & FORBIDDEN_LABELS, labels & FORBIDDEN_LABELS
    assert labels <= ALLOWED_LABELS, labels - ALLOWED_LABELS


def test_promtail_parses_json_and_keeps_ids_as_structured_metadata() -> None:
    stages = dict(_stages(_promtail_job()))
    expressions = stages["json"]["expressions"]
    for field in ("level", "route", "status", "event", "log_type", "request_id", "trace_id"):
        assert field in expressions
    assert {"request_id", "trace_id", "span_id"} <= set(stages["structured_metadata"])
    assert stages["timestamp"]["source"] == "timestamp"


def test_status_class_is_derived_from_the_status_code() -> None:
    stages = _stages(_promtail_job())
    regex = next(body for kind, body in stages if kind == "regex" and body["source"] == "status")
    pattern = re.compile(regex["expression"])
    assert pattern.fullmatch("503").group("status_digit") == "5"
    assert pattern.fullmatch("50") is None
    template = next(
        body for kind, body in stages if kind == "template" and body["source"] == "status_class"
    )
    assert "status_digit" in template["template"]
    assert template["template"].strip().endswith("xx{{ end }}")


def test_promtail_ships_to_loki_and_discovers_the_service() -> None:
    doc = load_yaml(LOKI_DIR / "promtail.yaml")
    assert doc["clients"][0]["url"] == "http://loki:3100/loki/api/v1/push"
    job = _promtail_job()
    (sd,) = job["docker_sd_configs"]
    assert sd["host"] == "unix:///var/run/docker.sock"
    keep = next(r for r in job["relabel_configs"] if r.get("action") == "keep")
    assert keep["source_labels"] == ["__meta_docker_container_label_com_docker_compose_service"]
    assert re.fullmatch(keep["regex"], "auth-service")
    assert not re.fullmatch(keep["regex"], "postgres")


def test_loki_config() -> None:
    doc = load_yaml(LOKI_DIR / "loki.yaml")
    assert doc["server"]["http_listen_port"] == 3100
    assert doc["auth_enabled"] is False
    (schema,) = doc["schema_config"]["configs"]
    assert schema["store"] == "tsdb"
    assert schema["schema"] == "v13"
    limits = doc["limits_config"]
    assert limits["allow_structured_metadata"] is True
    assert limits["max_label_names_per_series"] <= 15
    assert doc["compactor"]["retention_enabled"] is True


def test_dashboard_log_queries_use_existing_labels() -> None:
    labels = stream_labels()
    found = 0
    for path in DASHBOARDS_DIR.glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                if target["datasource"]["type"] != "loki":
                    continue
                selector = re.match(r"\s*\{([^}]*)\}", target["expr"])
                assert selector, target["expr"]
                used = set(re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", selector.group(1)))
                assert used <= labels, f"{path.name}: {used - labels}"
                found += 1
    assert found


def _kubernetes_job() -> tuple[dict[str, Any], dict[str, Any]]:
    """The auth-service job of the values for the upstream promtail chart, after the chart's
    `tpl` (which turns the escaped `{{ "{{" }}` back into `{{`), and the snippets."""
    snippets = load_yaml(LOKI_DIR / "promtail-kubernetes-values.yaml")["config"]["snippets"]
    text = snippets["extraScrapeConfigs"]
    assert "{{" not in text.replace('{{ "{{" }}', ""), "an unescaped {{ would be run by tpl"
    (job,) = yaml.safe_load(text.replace('{{ "{{" }}', "{{"))
    return job, snippets


def test_kubernetes_promtail_runs_the_compose_pipeline() -> None:
    job, _ = _kubernetes_job()
    # The container runtime's log format first (CRI), then exactly the Compose pipeline.
    assert job["pipeline_stages"][0] == {"cri": {}}
    assert job["pipeline_stages"][1:] == _promtail_job()["pipeline_stages"]


def test_kubernetes_promtail_labels_and_selection() -> None:
    job, snippets = _kubernetes_job()
    keep = [r for r in job["relabel_configs"] if r.get("action") == "keep"]
    assert keep == [
        {
            "source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
            "regex": "auth-service",
            "action": "keep",
        }
    ]
    targets = {r["target_label"] for r in job["relabel_configs"] if "target_label" in r}
    assert {t for t in targets if not t.startswith("__")} <= ALLOWED_LABELS
    # The chart's default job would ship the same pods again, unparsed: it drops them.
    (drop,) = snippets["extraRelabelConfigs"]
    assert (drop["action"], drop["regex"]) == ("drop", "auth-service")
