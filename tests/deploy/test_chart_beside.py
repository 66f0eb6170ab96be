"""What runs beside the service, in the chart: Alertmanager routing as an AlertmanagerConfig
that routes like monitoring/alertmanager/alertmanager.yml, the `dr watch` observers (Compose's
dr-watch service, values-dr-watch.yaml), OTLP export to a Jaeger collector; and the custom
resources' validation (scripts/deploy/validate_crds.py) refusing a bad object."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from typing import Any

import pytest
import yaml

from tests.deploy.deploy_support import (
    INSTALLER,
    ROOT,
    HelmError,
    Obj,
    component,
    find,
    load_yaml,
    render,
)
from tests.support.services import service_missing

AM_FILE = ROOT / "monitoring" / "alertmanager" / "alertmanager.yml"
OPS = {"=": "=", "!=": "!=", "=~": "=~", "!~": "!~"}


def _matchers(ms: list[dict[str, str]]) -> list[str]:
    return [f'{m["name"]}{OPS[m.get("matchType", "=")]}"{m["value"]}"' for m in ms]


def _classic_route(route: dict[str, Any]) -> dict[str, Any]:
    """An AlertmanagerConfig route in alertmanager.yml's vocabulary."""
    out: dict[str, Any] = {"receiver": route["receiver"]}
    names = {
        "groupBy": "group_by",
        "groupWait": "group_wait",
        "groupInterval": "group_interval",
        "repeatInterval": "repeat_interval",
        "continue": "continue",
    }
    for key, classic in names.items():
        if key in route:
            out[classic] = route[key]
    if "matchers" in route:
        out["matchers"] = _matchers(route["matchers"])
    if "routes" in route:
        out["routes"] = [_classic_route(r) for r in route["routes"]]
    return out


def _alertmanager_config(objs: list[Obj]) -> Obj:
    (amc,) = find(objs, "AlertmanagerConfig")
    return amc


def test_alertmanager_config_routes_like_the_compose_file(rendered: dict[str, list[Obj]]) -> None:
    spec = _alertmanager_config(rendered["values-production.yaml"])["spec"]
    compose = load_yaml(AM_FILE)
    assert _classic_route(spec["route"]) == compose["route"]
    inhibit = [
        {
            "source_matchers": _matchers(r["sourceMatch"]),
            "target_matchers": _matchers(r["targetMatch"]),
            "equal": r["equal"],
        }
        for r in spec["inhibitRules"]
    ]
    assert inhibit == compose["inhibit_rules"]
    ours = {r["name"]: sorted(k for k in r if k != "name") for r in spec["receivers"]}
    theirs = {
        r["name"]: sorted(
            k.replace("_configs", "Configs").replace("pagerduty", "pagerduty")
            for k in r
            if k != "name"
        )
        for r in compose["receivers"]
    }
    assert ours == theirs
    receivers = {r["name"]: r for r in spec["receivers"]}
    channels = {
        name: receivers[name]["slackConfigs"][0]["channel"]
        for name in ("slack-critical", "slack-warning")
    }
    assert channels == {
        r["name"]: r["slack_configs"][0]["channel"]
        for r in compose["receivers"]
        if "slack_configs" in r
    }
    (email,) = receivers["email"]["emailConfigs"]
    assert email["to"] == compose["receivers"][-1]["email_configs"][0]["to"]
    assert email["authPassword"] == {"name": "alertmanager-auth-service", "key": "smtp-password"}
    assert email["smarthost"] == compose["global"]["smtp_smarthost"]


def test_alertmanager_config_is_in_the_plain_manifests() -> None:
    docs = list(yaml.safe_load_all((ROOT / "k8s/monitoring/prometheus-operator.yaml").read_text()))
    assert [d["kind"] for d in docs if d and d["kind"] == "AlertmanagerConfig"] == [
        "AlertmanagerConfig"
    ]


def test_observers_are_one_hardened_deployment_each(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["values-dr-watch.yaml"]
    observers = [d for d in find(objs, "Deployment") if component(d) == "dr-watch"]
    assert len(observers) == 3
    zones = set()
    for d in observers:
        spec = d["spec"]
        assert spec["replicas"] == 1
        assert spec["strategy"] == {"type": "Recreate"}, "never two pods under one observer id"
        pod = spec["template"]["spec"]
        zones.add(pod["nodeSelector"]["topology.kubernetes.io/zone"])
        (container,) = pod["containers"]
        assert container["args"] == ["dr", "watch", "--metrics-port", "9465"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["AUTH_DR__AUTO__OBSERVER_ID"] == d["metadata"]["labels"]["auth-service/observer"]
        assert env["AUTH_DR__AUTO__ENABLED"] == "false", "observe-only until a drill says otherwise"
        assert json.loads(env["AUTH_DR__AUTO__STORE"]) == {"url": "s3://auth-dr-lock/observers"}
        assert env["AUTH_DR__STANDBY_URL_FILE"] == "/run/secrets/auth-service/standby-url"
        items = next(v for v in pod["volumes"] if v["name"] == "secrets")["secret"]["items"]
        # Least privilege: the databases' URLs and the master key, not Redis nor SMTP.
        assert {i["key"] for i in items} == {"master-key", "database-url", "standby-url"}
        assert "AUTH_REDIS__URL_FILE" not in env
        assert "AUTH_MAIL__SMTP_PASSWORD_FILE" not in env
        assert container["livenessProbe"]["httpGet"]["port"] == "metrics"
    assert zones == {"zone-a", "zone-b", "zone-c"}, "a quorum in one zone fails together"
    (np,) = [p for p in find(objs, "NetworkPolicy") if p["metadata"]["name"].endswith("-dr-watch")]
    assert [p["port"] for r in np["spec"]["ingress"] for p in r["ports"]] == ["metrics"]
    assert {p["port"] for r in np["spec"]["egress"] for p in r["ports"]} == {53, 5432, 443}
    (monitor,) = find(objs, "PodMonitor")
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"


def test_observers_are_off_by_default(rendered: dict[str, list[Obj]]) -> None:
    for values in ("values.yaml", "values-production.yaml"):
        assert not [d for d in rendered[values] if component(d) == "dr-watch"]


DR_WATCH = ("drWatch.enabled=true", "drWatch.store.url=s3://lock/observers")


@pytest.mark.parametrize(
    ("values", "sets", "message"),
    [
        (("values-production.yaml",), ("drWatch.enabled=true",), "drWatch.store is required"),
        (
            ("values-production.yaml", "values-cnpg.yaml"),
            DR_WATCH,
            "the operator already fails over",
        ),
        (
            ("values-production.yaml",),
            (*DR_WATCH, "drWatch.autoFailover=true", "drWatch.observers[0].id=lonely"),
            "needs at least 2 observers",
        ),
        (("values.yaml",), DR_WATCH, "needs secrets.existingSecret"),
    ],
)
def test_observer_misconfigurations_fail_at_render(
    helm: str, values: tuple[str, ...], sets: tuple[str, ...], message: str
) -> None:
    with pytest.raises(HelmError, match=message):
        render(helm, values, sets=sets)


def test_auto_failover_with_the_default_three_observers(helm: str) -> None:
    objs = render(helm, ("values-production.yaml",), sets=(*DR_WATCH, "drWatch.autoFailover=true"))
    observers = [d for d in find(objs, "Deployment") if component(d) == "dr-watch"]
    assert len(observers) == 3
    for d in observers:
        env = {
            e["name"]: e.get("value") for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env["AUTH_DR__AUTO__ENABLED"] == "true"


def test_traces_go_to_the_jaeger_collector(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["values-dr-watch.yaml"]
    (server,) = [d for d in find(objs, "Deployment") if component(d) == "server"]
    env = {
        e["name"]: e.get("value")
        for e in server["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger-collector.observability:4318"
    assert "OTEL_SDK_DISABLED" not in env
    (np,) = [p for p in find(objs, "NetworkPolicy") if p["metadata"]["name"].endswith("-server")]
    assert 4318 in {p["port"] for r in np["spec"]["egress"] for p in r["ports"]}
    default = rendered["values.yaml"]
    (server,) = [d for d in find(default, "Deployment") if component(d) == "server"]
    env = {
        e["name"]: e.get("value")
        for e in server["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["OTEL_SDK_DISABLED"] == "true"


@pytest.fixture(scope="module")
def crd_schemas() -> None:
    if not (ROOT / ".tools/crd-schemas/node_modules").is_dir():
        proc = subprocess.run(
            ["bash", str(INSTALLER), "crd"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0:
            service_missing("node", f"install-tools.sh crd failed: {proc.stderr.strip()[-600:]}")


def _validate(tmp_path: Any, objs: list[Obj]) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "objects.yaml"
    path.write_text(yaml.safe_dump_all(objs))
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts/deploy/validate_crds.py"), str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_custom_resources_validate_and_a_bad_one_is_refused(
    crd_schemas: None, rendered: dict[str, list[Obj]], tmp_path: Any
) -> None:
    objs = [
        o
        for v in ("values-mesh-istio.yaml", "values-cnpg.yaml", "values-dr-watch.yaml")
        for o in rendered[v]
    ]
    good = _validate(tmp_path, objs)
    assert good.returncode == 0, good.stderr
    assert "PeerAuthentication" in good.stdout
    assert "AlertmanagerConfig" in good.stdout
    assert "Cluster postgresql.cnpg.io/v1 auth-db (our schema)" in good.stdout
    bad = copy.deepcopy(_alertmanager_config(rendered["values-production.yaml"]))
    bad["spec"]["route"]["groupWait"] = 30
    (peer,) = find(rendered["values-mesh-istio.yaml"], "PeerAuthentication")
    bad_peer = copy.deepcopy(peer)
    bad_peer["spec"]["mtls"]["mode"] = "MUTUAL"
    unknown = {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "x"}}
    result = _validate(tmp_path, [bad, bad_peer, unknown])
    assert result.returncode == 1
    assert "FAIL" in result.stderr
    assert "AlertmanagerConfig" in result.stderr
    assert "PeerAuthentication" in result.stderr
    assert "Thing example.com/v1: no schema" in result.stderr
