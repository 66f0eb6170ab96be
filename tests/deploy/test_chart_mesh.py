"""mesh.provider: Linkerd proxy injection or an Istio sidecar with PeerAuthentication STRICT and
a DestinationRule ISTIO_MUTUAL (docs/adr/0313); off by default; the Job pods opt out; the
meshed pods may reach the control plane and nothing more."""

from __future__ import annotations

import pytest

from tests.deploy.deploy_support import HelmError, Obj, component, find, pod_templates, render


def _pods(objs: list[Obj]) -> dict[str, Obj]:
    return {owner["metadata"]["name"]: pod["metadata"] for owner, pod in pod_templates(objs)}


def test_no_mesh_by_default(rendered: dict[str, list[Obj]]) -> None:
    for values in ("values.yaml", "values-production.yaml"):
        objs = rendered[values]
        assert not [o for o in objs if "istio.io" in o["apiVersion"]]
        for meta in _pods(objs).values():
            assert "sidecar.istio.io/inject" not in meta["labels"]
            assert "linkerd.io/inject" not in (meta.get("annotations") or {})


def test_istio_strict_mtls_and_destination_rules(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["values-mesh-istio.yaml"]
    (peer,) = find(objs, "PeerAuthentication")
    assert peer["apiVersion"] == "security.istio.io/v1"
    assert peer["spec"]["mtls"] == {"mode": "STRICT"}
    (server,) = [d for d in find(objs, "Deployment") if component(d) == "server"]
    selector = peer["spec"]["selector"]["matchLabels"]
    assert selector.items() <= server["spec"]["template"]["metadata"]["labels"].items()
    hosts = {
        r["spec"]["host"]: r["spec"]["trafficPolicy"]["tls"] for r in find(objs, "DestinationRule")
    }
    assert hosts == {
        "auth-service.auth.svc.cluster.local": {"mode": "ISTIO_MUTUAL"},
        "auth-service-management.auth.svc.cluster.local": {"mode": "ISTIO_MUTUAL"},
    }
    labels = {
        name: meta["labels"].get("sidecar.istio.io/inject") for name, meta in _pods(objs).items()
    }
    assert labels["auth-service"] == "true"
    # A sidecar never exits: a Job with one would never complete.
    assert {v for k, v in labels.items() if k != "auth-service"} == {"false"}


def test_linkerd_injection_by_annotation(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["values-mesh-linkerd.yaml"]
    assert not [o for o in objs if "istio.io" in o["apiVersion"]]
    inject = {
        n: (m.get("annotations") or {}).get("linkerd.io/inject") for n, m in _pods(objs).items()
    }
    assert inject.pop("auth-service") == "enabled"
    assert set(inject.values()) == {"disabled"}


@pytest.mark.parametrize(
    ("overlay", "namespace", "ports"),
    [
        ("values-mesh-istio.yaml", "istio-system", {15012}),
        ("values-mesh-linkerd.yaml", "linkerd", {8080, 8086, 8090}),
    ],
)
def test_meshed_server_reaches_its_control_plane(
    rendered: dict[str, list[Obj]], overlay: str, namespace: str, ports: set[int]
) -> None:
    (np,) = [
        p
        for p in find(rendered[overlay], "NetworkPolicy")
        if p["metadata"]["name"].endswith("-server")
    ]
    rules = [r for r in np["spec"]["egress"] if {p["port"] for p in r["ports"]} == ports]
    assert len(rules) == 1
    assert rules[0]["to"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}
    ]


def test_unknown_provider_and_mode_are_refused(helm: str) -> None:
    with pytest.raises(HelmError, match="/mesh/provider"):
        render(helm, sets=("mesh.provider=consul",))
    with pytest.raises(HelmError, match="/mesh/istio/mtlsMode"):
        render(helm, sets=("mesh.provider=istio", "mesh.istio.mtlsMode=DISABLE"))


def test_services_declare_what_their_ports_speak(helm: str) -> None:
    """Istio believes appProtocol over the port name: with the service's own TLS the port named
    `http` must say https, or the sidecar would parse TLS as HTTP."""
    for extra, expected in (((), "http"), (("values-tls.yaml",), "https")):
        objs = render(helm, ("values-production.yaml", "values-mesh-istio.yaml", *extra))
        protocols = {
            p["appProtocol"] for svc in find(objs, "Service") for p in svc["spec"]["ports"]
        }
        assert protocols == {expected}


def test_metrics_ports_may_be_permissive_for_an_unmeshed_prometheus(helm: str) -> None:
    (peer,) = find(
        render(helm, ("values-production.yaml", "values-mesh-istio.yaml")), "PeerAuthentication"
    )
    assert "portLevelMtls" not in peer["spec"]
    objs = render(
        helm,
        ("values-production.yaml", "values-mesh-istio.yaml", "values-dr-watch.yaml"),
        sets=("mesh.istio.permissiveMetricsPorts=true",),
    )
    (peer,) = find(objs, "PeerAuthentication")
    assert peer["spec"]["mtls"] == {"mode": "STRICT"}
    assert peer["spec"]["portLevelMtls"] == {
        "9000": {"mode": "PERMISSIVE"},
        "9465": {"mode": "PERMISSIVE"},
    }
