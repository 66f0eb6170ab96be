"""Policy tests over the objects the Helm chart renders, for every values file: the security
and availability properties a platform review asks for, checked on the real `helm template`
output rather than on the templates' text."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from tests.deploy.deploy_support import (
    RELEASE,
    HelmError,
    Obj,
    component,
    find,
    pod_templates,
    render,
)

SECRET_ENV = {
    "AUTH_BACKUP__KEY",
    "AUTH_MASTER_KEY",
    "AUTH_DATABASE__URL",
    "AUTH_REDIS__URL",
    "AUTH_MAIL__SMTP_PASSWORD",
}


def containers(pod: Obj) -> list[Obj]:
    spec = pod["spec"]
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def server(objs: list[Obj]) -> Obj:
    (deployment,) = [o for o in find(objs, "Deployment") if component(o) == "server"]
    return deployment


def env_of(container: Obj) -> dict[str, Any]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_every_object_is_namespaced_and_labelled(objects: list[Obj]) -> None:
    for o in objects:
        meta = o["metadata"]
        assert meta.get("namespace") == "auth", f"{o['kind']}/{meta['name']} has no namespace"
        assert meta["labels"]["app.kubernetes.io/instance"] == RELEASE
        assert meta["labels"]["app.kubernetes.io/part-of"] == "auth-service"


def test_pods_run_as_non_root_10001_with_runtime_default_seccomp(objects: list[Obj]) -> None:
    for owner, pod in pod_templates(objects):
        sc = pod["spec"]["securityContext"]
        where = f"{owner['kind']}/{owner['metadata']['name']}"
        assert sc["runAsNonRoot"] is True, where
        assert (sc["runAsUser"], sc["runAsGroup"], sc["fsGroup"]) == (10001, 10001, 10001), where
        assert sc["seccompProfile"]["type"] == "RuntimeDefault", where
        spec = pod["spec"]
        assert spec["automountServiceAccountToken"] is False, f"{where} mounts an API token"
        assert not spec.get("hostNetwork")
        assert not spec.get("hostPID")
        assert not spec.get("hostIPC")
        assert all("hostPath" not in v for v in spec.get("volumes", [])), where


def test_containers_are_locked_down(objects: list[Obj]) -> None:
    for owner, pod in pod_templates(objects):
        for c in containers(pod):
            where = f"{owner['kind']}/{owner['metadata']['name']}/{c['name']}"
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc.get("privileged") is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert not sc["capabilities"].get("add"), where
            assert sc["runAsNonRoot"] is True, where


def test_every_container_has_requests_and_limits(objects: list[Obj]) -> None:
    for owner, pod in pod_templates(objects):
        for c in containers(pod):
            res = c["resources"]
            for section in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    assert res.get(section, {}).get(resource), (
                        f"{owner['metadata']['name']}/{c['name']} lacks {section}.{resource}"
                    )


def test_images_are_pinned(objects: list[Obj]) -> None:
    for _, pod in pod_templates(objects):
        for c in containers(pod):
            image = c["image"]
            assert "@sha256:" in image or (
                ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
            )


def test_server_probes_use_the_management_port(objects: list[Obj]) -> None:
    (c,) = server(objects)["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 8000, "management": 9000}
    expected = {
        "startupProbe": "/health/started",
        "livenessProbe": "/health/live",
        "readinessProbe": "/health/ready",
    }
    for probe, path in expected.items():
        get = c[probe]["httpGet"]
        assert ports[get["port"]] == 9000, f"{probe} is not on the management port"
        assert get["path"] == path


def test_rollout_never_reduces_capacity_and_outlasts_the_drain(objects: list[Obj]) -> None:
    d = server(objects)
    assert d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = d["spec"]["template"]["spec"]
    env = env_of(pod["containers"][0])
    delay = float(env["AUTH_HEALTH__DRAIN_DELAY_SECONDS"])
    drain = float(env["AUTH_SERVER__GRACEFUL_SHUTDOWN_SECONDS"])
    assert delay > 0, "endpoints need a moment to drop the pod before it stops listening"
    assert pod["terminationGracePeriodSeconds"] > delay + drain + 5


def test_config_is_mounted_as_a_directory_for_hot_reload(objects: list[Obj]) -> None:
    for owner, pod in pod_templates(objects):
        if component(owner) == "postgresql":
            continue
        (c,) = pod["spec"]["containers"]
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        assert "subPath" not in mounts["/etc/auth-service"], "subPath mounts never see updates"
        assert env_of(c)["AUTH_CONFIG"] == "/etc/auth-service/config.yaml"
        # Writable paths are scratch volumes; the root filesystem is read-only.
        assert {"/tmp", "/var/lib/auth-service"} <= set(mounts)  # noqa: S108 - container paths
        assert env_of(c)["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")  # noqa: S108


def test_secrets_are_files_never_environment_values(objects: list[Obj]) -> None:
    for owner, pod in pod_templates(objects):
        for c in containers(pod):
            for e in c.get("env", []):
                assert e["name"] not in SECRET_ENV, (
                    f"{owner['metadata']['name']}: {e['name']} in env"
                )
                assert "secretKeyRef" not in e.get("valueFrom", {}), e["name"]
            env = env_of(c)
            for name in SECRET_ENV & {k.removesuffix("_FILE") for k in env}:
                assert env[name + "_FILE"].startswith("/run/secrets/")


def test_pod_disruption_budget_covers_the_server(objects: list[Obj]) -> None:
    d = server(objects)
    pdbs = find(objects, "PodDisruptionBudget")
    if d["spec"].get("replicas") == 1:
        # A single replica (dev) with maxUnavailable 1 protects nothing; with 0 it blocks drains.
        assert not pdbs
        return
    (pdb,) = pdbs
    assert (
        pdb["spec"]["selector"]["matchLabels"].items()
        <= d["spec"]["template"]["metadata"]["labels"].items()
    )
    assert pdb["spec"]["maxUnavailable"] == 1


def test_replicas_spread_over_zones_and_nodes(objects: list[Obj]) -> None:
    spec = server(objects)["spec"]
    pod = spec["template"]["spec"]
    if spec.get("replicas") == 1:
        assert "topologySpreadConstraints" not in pod  # dev: one pod, nothing to spread
        return
    keys = {t["topologyKey"] for t in pod["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}
    assert pod["affinity"]["podAntiAffinity"]


def selects(selector: Obj, labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        value = labels.get(expr["key"])
        if expr["operator"] == "In" and value not in expr["values"]:
            return False
        if expr["operator"] == "NotIn" and value in expr["values"]:
            return False
        if expr["operator"] == "Exists" and value is None:
            return False
    return True


def test_network_policy_default_denies_every_pod_of_the_release(objects: list[Obj]) -> None:
    (deny,) = [
        p for p in find(objects, "NetworkPolicy") if p["metadata"]["name"].endswith("-default-deny")
    ]
    spec = deny["spec"]
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    assert not spec.get("ingress")
    assert not spec.get("egress")
    for owner, pod in pod_templates(objects):
        labels = pod["metadata"]["labels"]
        assert selects(spec["podSelector"], labels), (
            f"{owner['metadata']['name']} escapes default deny"
        )
        allowing = [
            p
            for p in find(objects, "NetworkPolicy")
            if p is not deny and selects(p["spec"]["podSelector"], labels)
        ]
        assert allowing, (
            f"{owner['metadata']['name']} has no allow policy (it could not even resolve DNS)"
        )


def test_server_network_policy_opens_only_the_expected_ports(objects: list[Obj]) -> None:
    (np,) = [p for p in find(objects, "NetworkPolicy") if p["metadata"]["name"].endswith("-server")]
    ingress_ports = {p["port"] for rule in np["spec"]["ingress"] for p in rule["ports"]}
    assert ingress_ports <= {"http", "management"}
    for rule in np["spec"]["ingress"]:
        assert rule.get("from"), "an ingress rule without `from` admits every pod"
    allowed = {53, 5432, 6379, 587, 4318}
    (server,) = [d for d in find(objects, "Deployment") if component(d) == "server"]
    pod_meta = server["spec"]["template"]["metadata"]
    if pod_meta["labels"].get("sidecar.istio.io/inject") == "true":
        allowed |= {15012}  # istiod
    if (pod_meta.get("annotations") or {}).get("linkerd.io/inject") == "enabled":
        allowed |= {8080, 8086, 8090}  # Linkerd's identity, destination, policy
    for rule in np["spec"]["egress"]:
        assert rule.get("to"), "an egress rule without `to` allows the whole internet"
        assert {p["port"] for p in rule["ports"]} <= allowed
        for peer in rule["to"]:
            if "ipBlock" in peer:
                assert ipaddress.ip_network(peer["ipBlock"]["cidr"]).prefixlen > 0, (
                    "the server never needs 0.0.0.0/0"
                )


def test_ingress_routes_only_to_the_public_port_with_tls(objects: list[Obj]) -> None:
    for ing in find(objects, "Ingress"):
        for rule in ing["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                svc = path["backend"]["service"]
                assert not svc["name"].endswith("-management")
                assert svc["port"] == {"name": "http"}
    management = [
        s for s in find(objects, "Service") if s["metadata"]["name"].endswith("-management")
    ]
    assert management
    assert management[0]["spec"]["type"] == "ClusterIP"


def test_migrations_run_as_a_hook_before_upgrades(objects: list[Obj]) -> None:
    (job,) = [j for j in find(objects, "Job") if component(j) == "migrate"]
    hooks = job["metadata"]["annotations"]["helm.sh/hook"].split(",")
    assert "pre-upgrade" in hooks
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == ["migrate"]
    # Everything the hook pod mounts exists at hook time: hook objects with a lower weight.
    weight = int(job["metadata"]["annotations"]["helm.sh/hook-weight"])
    pod = job["spec"]["template"]["spec"]
    needed = {("ServiceAccount", pod["serviceAccountName"])}
    needed |= {("ConfigMap", v["configMap"]["name"]) for v in pod["volumes"] if "configMap" in v}
    needed |= {("Secret", v["secret"]["secretName"]) for v in pod["volumes"] if "secret" in v}
    hooks_by_name = {
        (o["kind"], o["metadata"]["name"]): o
        for o in objects
        if "helm.sh/hook" in o["metadata"].get("annotations", {})
    }
    for kind, name in needed:
        if kind == "Secret" and not find(objects, "Secret"):
            continue  # secrets.existingSecret: created before the release
        hook = hooks_by_name.get((kind, name))
        assert hook, f"{kind}/{name} does not exist when the migration hook runs"
        assert int(hook["metadata"]["annotations"]["helm.sh/hook-weight"]) < weight


def test_checkov_skips_carry_a_reason(objects: list[Obj]) -> None:
    for o in objects:
        for key, value in o["metadata"].get("annotations", {}).items():
            if key.startswith("checkov.io/skip"):
                check, _, reason = value.partition("=")
                assert check.startswith("CKV"), value
                assert len(reason) > 30, f"skip {check} on {o['metadata']['name']} lacks a reason"


def test_service_account_token_and_role_are_minimal(objects: list[Obj]) -> None:
    for sa in find(objects, "ServiceAccount"):
        assert sa["automountServiceAccountToken"] is False
    for role in find(objects, "Role"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"]
            assert "*" not in rule["resources"]
            assert set(rule["verbs"]) <= {"get", "list", "watch"}
            assert rule.get("resourceNames"), "the Role is scoped to named objects"
    assert not find(objects, "ClusterRole")
    assert not find(objects, "ClusterRoleBinding")


@pytest.mark.parametrize("values", ["values-staging.yaml", "values-production.yaml"])
def test_production_shape(rendered: dict[str, list[Obj]], values: str) -> None:
    objs = rendered[values]
    assert not find(objs, "Secret"), "staging/production take their secrets from existingSecret"
    assert not find(objs, "StatefulSet"), "no bundled PostgreSQL"
    (hpa,) = find(objs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["minReplicas"] >= 2
    (ing,) = find(objs, "Ingress")
    assert ing["spec"]["tls"]
    assert ing["metadata"]["annotations"].get("cert-manager.io/cluster-issuer")
    args = sorted(
        " ".join(c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"])
        for c in find(objs, "CronJob")
    )
    assert args == [
        "backup prune --confirm",
        "backup run --kind full",
        "backup verify --restore-test",
    ]
    for cron in find(objs, "CronJob"):
        (c,) = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
        assert env_of(c)["AUTH_BACKUP__KEY_FILE"].startswith("/run/secrets/")
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert "/var/lib/auth-service/backups" in mounts
    # The server reads the catalog (backup health check, auth_backup_* metrics): key and a
    # read-only mount of the ReadWriteMany volume; it can never change a backup.
    srv = server(objs)["spec"]["template"]["spec"]
    assert env_of(srv["containers"][0])["AUTH_BACKUP__KEY_FILE"].startswith("/run/secrets/")
    (mount,) = [m for m in srv["containers"][0]["volumeMounts"] if m["name"] == "backups"]
    assert mount["readOnly"] is True
    (claim,) = [v for v in srv["volumes"] if v["name"] == "backups"]
    assert claim["persistentVolumeClaim"]["readOnly"] is True
    # The migration Job never gets the backup key.
    (job,) = [j for j in find(objs, "Job") if component(j) == "migrate"]
    (secret_volume,) = [v for v in job["spec"]["template"]["spec"]["volumes"] if "secret" in v]
    assert "backup-key" not in {i["key"] for i in secret_volume["secret"]["items"]}
    (wal,) = [d for d in find(objs, "Deployment") if component(d) == "wal-stream"]
    assert wal["spec"]["replicas"] == 1
    assert wal["spec"]["strategy"]["type"] == "Recreate"
    env = env_of(server(objs)["spec"]["template"]["spec"]["containers"][0])
    assert env["AUTH_SERVER__PUBLIC_URL"].startswith("https://")
    assert env["AUTH_ENV"] in {"staging", "production"}


def test_dev_values_are_small_and_local(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["values-dev.yaml"]
    d = server(objs)
    assert d["spec"]["replicas"] == 1
    assert not find(objs, "HorizontalPodAutoscaler")
    assert find(objs, "StatefulSet"), "dev uses the bundled PostgreSQL"
    (c,) = d["spec"]["template"]["spec"]["containers"]
    assert c["imagePullPolicy"] == "IfNotPresent"
    skips = d["metadata"]["annotations"]
    assert any(v.startswith("CKV_K8S_15=") for v in skips.values()), (
        "the pull policy skip is explained"
    )


def test_chart_managed_secret_keeps_generated_keys(rendered: dict[str, list[Obj]]) -> None:
    (secret,) = find(rendered["values.yaml"], "Secret")
    ann = secret["metadata"]["annotations"]
    assert ann["helm.sh/resource-policy"] == "keep"
    assert set(secret["data"]) == {"master-key", "database-url", "postgres-password"}
    import base64

    key = base64.b64decode(secret["data"]["master-key"]).decode()
    assert len(base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))) == 32


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("unknownKey=1",), "additional properties"),
        (("image.tag=latest",), "/image/tag"),
        (("server.publicUrl=http://auth.example.com",), ""),
        (("resources.limits=null",), "resources"),
        (("networkPolicy.egress.database.to[0].anything=1",), "additional properties"),
        (("terminationGracePeriodSeconds=21",), "terminationGracePeriodSeconds"),
        (("environment=prod",), "environment"),
        (("postgresql.enabled=false",), "externalDatabase.url"),
        (("externalDatabase.url=postgresql://db/auth",), "postgresql.enabled=false"),
        (("secrets.masterKey=short",), "masterKey"),
        (("ingress.enabled=true", "ingress.tls.secretName="), "secretName"),
    ],
)
def test_bad_values_fail_at_render(helm: str, sets: tuple[str, ...], message: str) -> None:
    with pytest.raises(HelmError) as err:
        render(helm, sets=sets)
    assert message in str(err.value)


def test_digest_pins_the_image_and_drops_the_skip(helm: str) -> None:
    digest = "sha256:" + "a" * 64
    objs = render(helm, ("values-production.yaml",), (f"image.digest={digest}",))
    d = server(objs)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"].endswith("@" + digest)
    assert not any(
        v.startswith("CKV_K8S_43") for v in d["metadata"].get("annotations", {}).values()
    )


def test_server_gets_the_backup_key_only_when_it_can_read_the_backups(helm: str) -> None:
    """A ReadWriteOnce backup volume cannot be mounted by every server pod: then the server gets
    neither the key nor the volume (backup metrics must come from object storage instead)."""
    objs = render(helm, sets=("backup.enabled=true",))  # default accessModes: ReadWriteOnce
    srv = server(objs)["spec"]["template"]["spec"]
    assert "AUTH_BACKUP__KEY_FILE" not in env_of(srv["containers"][0])
    assert not [v for v in srv["volumes"] if v["name"] == "backups"]
    objs = render(helm, sets=("backup.enabled=true", "backup.persistence.enabled=false"))
    srv = server(objs)["spec"]["template"]["spec"]
    assert "AUTH_BACKUP__KEY_FILE" in env_of(srv["containers"][0])


def test_the_realm_file_is_applied_by_a_hook_after_the_migrations(helm: str) -> None:
    """Configuration as code (docs/operations/config-as-code.md): off by default; when on, the
    realm file from a ConfigMap is applied after install and upgrade, after the migration
    hook, by a pod as locked down as the migration's."""
    assert not [j for j in find(render(helm), "Job") if component(j) == "realm"]
    content = "version: 1\nroles:\n  - name: auditor\n"
    bundled = ("postgresql.enabled=true",)
    external = ("postgresql.enabled=false", "externalDatabase.url=postgresql+asyncpg://db/auth")
    for database in (bundled, external):
        objs = render(
            helm,
            sets=(
                "realm.enabled=true",
                f"realm.content={content}",
                "realm.secretName=realm-secrets",
                *database,
            ),
        )
        (job,) = [j for j in find(objs, "Job") if component(j) == "realm"]
        (migrate,) = [j for j in find(objs, "Job") if component(j) == "migrate"]
        notes = job["metadata"]["annotations"]
        assert notes["helm.sh/hook"].split(",") == ["post-install", "post-upgrade"]
        migrate_hooks = migrate["metadata"]["annotations"]["helm.sh/hook"].split(",")
        if "post-install" in migrate_hooks:
            weight = int(migrate["metadata"]["annotations"]["helm.sh/hook-weight"])
            assert int(notes["helm.sh/hook-weight"]) > weight
        pod = job["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == ["apply", "-f", "/etc/auth-service-realm/realm.yaml"]
        migrate_pod = migrate["spec"]["template"]["spec"]
        assert pod["securityContext"] == migrate_pod["securityContext"]
        assert container["securityContext"] == migrate_pod["containers"][0]["securityContext"]
        assert pod["automountServiceAccountToken"] is False
        assert container["resources"]["limits"]
        assert container["resources"]["requests"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        (realm_map,) = [
            c
            for c in find(objs, "ConfigMap")
            if c["metadata"]["name"] == volumes["realm"]["configMap"]["name"]
        ]
        assert realm_map["data"]["realm.yaml"] == content
        assert volumes["realm-secrets"]["secret"]["secretName"] == "realm-secrets"
        # Every object the hook pod mounts exists at hook time (hooks with a lower weight).
        weight = int(notes["helm.sh/hook-weight"])
        for kind, name in (
            ("ServiceAccount", pod["serviceAccountName"]),
            ("ConfigMap", volumes["config"]["configMap"]["name"]),
            ("ConfigMap", volumes["realm"]["configMap"]["name"]),
        ):
            (hook,) = find(objs, kind, name)
            assert int(hook["metadata"]["annotations"]["helm.sh/hook-weight"]) < weight
    pruning = render(
        helm, sets=("realm.enabled=true", f"realm.content={content}", "realm.prune=true")
    )
    (job,) = [j for j in find(pruning, "Job") if component(j) == "realm"]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][-1] == "--prune"
    with pytest.raises(HelmError, match=r"realm\.content is required"):
        render(helm, sets=("realm.enabled=true",))
