"""tls.enabled: a cert-manager Certificate for both Services' names, its Secret mounted as a
directory (renewals reach the pod in place, docs/adr/0310), the service told where it is,
probes and the ServiceMonitor over HTTPS; off by default."""

from __future__ import annotations

import pytest

from tests.deploy.deploy_support import HelmError, Obj, find, render

TLS = ("tls.enabled=true", "tls.issuerRef.name=internal-ca", "metrics.serviceMonitor.enabled=true")


def _server(objs: list[Obj]) -> Obj:
    (deployment,) = [d for d in find(objs, "Deployment") if d["metadata"]["name"] == "auth-service"]
    return deployment


def test_tls_is_off_by_default(helm: str) -> None:
    objs = render(helm)
    assert find(objs, "Certificate") == []
    container = _server(objs)["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"].get("scheme", "HTTP") == "HTTP"


def test_certificate_mount_env_and_probes(helm: str) -> None:
    objs = render(helm, sets=TLS)
    (certificate,) = find(objs, "Certificate")
    spec = certificate["spec"]
    assert spec["secretName"] == "auth-service-tls"
    assert spec["issuerRef"] == {
        "name": "internal-ca",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }
    assert "auth-service.auth.svc" in spec["dnsNames"]
    assert "auth-service-management.auth.svc" in spec["dnsNames"]
    pod = _server(objs)["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["AUTH_SERVER__TLS__CERT_PATH"] == "/var/run/auth-service/tls/tls.crt"
    assert env["AUTH_SERVER__TLS__KEY_PATH"] == "/var/run/auth-service/tls/tls.key"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "tls")
    assert mount["mountPath"] == "/var/run/auth-service/tls"
    assert "subPath" not in mount  # a subPath mount never sees a renewal
    volume = next(v for v in pod["volumes"] if v["name"] == "tls")
    assert volume["secret"]["secretName"] == "auth-service-tls"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["scheme"] == "HTTPS"
    (monitor,) = find(objs, "ServiceMonitor")
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"]["ca"]["secret"]["name"] == "auth-service-tls"


def test_an_issuer_is_required(helm: str) -> None:
    with pytest.raises(HelmError, match=r"tls.issuerRef.name is required"):
        render(helm, sets=("tls.enabled=true",))


def test_the_public_and_the_serving_certificate_never_share_a_secret(
    helm: str, rendered: dict[str, list[Obj]]
) -> None:
    with pytest.raises(HelmError, match="is the serving certificate's Secret"):
        render(helm, ("values-production.yaml",), sets=TLS)
    objs = rendered["values-tls.yaml"]
    (certificate,) = find(objs, "Certificate")
    (ingress,) = find(objs, "Ingress")
    public = {t["secretName"] for t in ingress["spec"]["tls"]}
    assert certificate["spec"]["secretName"] not in public
    assert (
        ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"]
        == "HTTPS"
    )
