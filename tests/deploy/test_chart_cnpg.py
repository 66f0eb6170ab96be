"""CloudNativePG (values-cnpg.yaml, values-cnpg-replica.yaml): the chart renders the Cluster,
the service reaches its `-rw` Service with sslmode=verify-full against the operator's CA, and
the backups have one owner (docs/adr/0314). The Cluster is checked against our schema of the
fields we set (scripts/deploy/schemas/cnpg-cluster.ours.json), which must also refuse a field
that is not there."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tests.deploy.deploy_support import ROOT, HelmError, Obj, component, find, render

SCHEMA = json.loads((ROOT / "scripts/deploy/schemas/cnpg-cluster.ours.json").read_text())


def _cluster(objs: list[Obj]) -> Obj:
    (cluster,) = find(objs, "Cluster")
    return cluster


def _errors(obj: Obj) -> list[str]:
    return [e.message for e in Draft202012Validator(SCHEMA).iter_errors(obj)]


def test_cluster_three_instances_synchronous_over_zones(rendered: dict[str, list[Obj]]) -> None:
    cluster = _cluster(rendered["values-cnpg.yaml"])
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    spec = cluster["spec"]
    assert spec["instances"] == 3
    # Our backups stream WAL and take base backups as the application role: REPLICATION, and
    # a replication pg_hba line over TLS only.
    assert spec["managed"]["roles"] == [
        {"name": "auth", "ensure": "present", "login": True, "replication": True}
    ]
    assert spec["postgresql"]["pg_hba"] == ["hostssl replication auth all scram-sha-256"]
    assert spec["postgresql"]["synchronous"] == {
        "method": "any",
        "number": 1,
        "dataDurability": "required",
    }
    assert spec["affinity"]["topologyKey"] == "topology.kubernetes.io/zone"
    assert spec["bootstrap"] == {
        "initdb": {"database": "auth", "owner": "auth", "secret": {"name": "auth-db-app"}}
    }
    assert "backup" not in spec, "backups stay the chart's here: one owner of the WAL archive"
    assert _errors(cluster) == []


def test_service_verifies_the_cluster_ca(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["values-cnpg.yaml"]
    for d in find(objs, "Deployment"):
        if component(d) not in {"server", "wal-stream"}:
            continue
        pod = d["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        assert env["AUTH_DATABASE__SSL_MODE"] == "verify-full"
        assert env["AUTH_DATABASE__SSL_ROOT_CERT"] == "/var/run/auth-service/db-ca/ca.crt"
        (volume,) = [v for v in pod["volumes"] if v["name"] == "db-ca"]
        # Only the certificate: the operator's CA secret also holds the CA's private key.
        assert volume["secret"] == {
            "secretName": "auth-db-ca",
            "defaultMode": 0o444,
            "items": [{"key": "ca.crt", "path": "ca.crt"}],
        }
    (np,) = [p for p in find(objs, "NetworkPolicy") if p["metadata"]["name"].endswith("-server")]
    db = [r for r in np["spec"]["egress"] if r["ports"][0]["port"] == 5432]
    assert db[0]["to"] == [{"podSelector": {"matchLabels": {"cnpg.io/cluster": "auth-db"}}}]


def test_chart_managed_secret_points_at_the_rw_service(helm: str) -> None:
    objs = render(
        helm,
        sets=(
            "postgresql.enabled=false",
            "externalDatabase.cloudNativePG.cluster=auth-db",
            "externalDatabase.cloudNativePG.create=true",
            "backup.enabled=false",
        ),
    )
    secrets = {s["metadata"]["name"]: s for s in find(objs, "Secret")}
    url = base64.b64decode(secrets["auth-service-secrets"]["data"]["database-url"]).decode()
    app = secrets["auth-service-cnpg-app"]
    assert app["type"] == "kubernetes.io/basic-auth"
    password = base64.b64decode(app["data"]["password"]).decode()
    assert url == f"postgresql+asyncpg://auth:{password}@auth-db-rw.auth.svc:5432/auth"
    assert _cluster(objs)["spec"]["bootstrap"]["initdb"]["secret"] == {
        "name": "auth-service-cnpg-app"
    }
    # The Cluster exists only after install: migrations run post-install.
    (job,) = [j for j in find(objs, "Job") if component(j) == "migrate"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,pre-upgrade"


def test_replica_cluster_in_a_second_region(rendered: dict[str, list[Obj]]) -> None:
    objs = rendered["values-cnpg-replica.yaml"]
    spec = _cluster(objs)["spec"]
    assert spec["replica"] == {"enabled": True, "source": "auth-db-region-a"}
    assert spec["bootstrap"] == {"recovery": {"source": "auth-db-region-a"}}
    (source,) = spec["externalClusters"]
    assert source["connectionParameters"]["sslmode"] == "verify-full"
    assert source["barmanObjectStore"]["destinationPath"] == "s3://auth-backups/region-a"
    # This region's backups are the engine's, to its own archive; the chart's are off.
    assert spec["backup"]["barmanObjectStore"]["destinationPath"] == "s3://auth-backups/region-b"
    assert not [o for o in objs if component(o) in {"backup", "wal-stream"}]
    assert "managed" not in spec, "no replication role for backups the engine takes"
    assert _errors(_cluster(objs)) == []


def test_both_backup_owners_are_refused(helm: str) -> None:
    with pytest.raises(HelmError, match="one tool owns the WAL archive"):
        render(
            helm,
            ("values-production.yaml", "values-cnpg.yaml"),
            sets=(
                "externalDatabase.cloudNativePG.backup.enabled=true",
                "externalDatabase.cloudNativePG.backup.destinationPath=s3://b/a",
                "externalDatabase.cloudNativePG.backup.s3CredentialsSecret=creds",
            ),
        )


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("spec", "instancez"), 3, "Additional properties"),
        (("spec", "postgresql", "synchronous", "method"), "all", "is not one of"),
        (("spec", "bootstrap", "recovery"), {"source": "x"}, "has too many properties"),
        (("spec", "instances"), 0, "less than the minimum"),
    ],
)
def test_our_schema_refuses_what_the_operator_would(
    rendered: dict[str, list[Obj]], path: tuple[str, ...], value: object, message: str
) -> None:
    cluster = copy.deepcopy(_cluster(rendered["values-cnpg.yaml"]))
    node = cluster
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert any(message in e for e in _errors(cluster)), _errors(cluster)


def test_schema_says_it_is_ours() -> None:
    assert "OURS" in SCHEMA["description"]
    assert Path(ROOT / "scripts/deploy/schemas/cnpg-cluster.ours.json").name.endswith(".ours.json")
