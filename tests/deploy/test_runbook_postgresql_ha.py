"""docs/operations/postgresql-ha.md: every `helm` command of the runbook renders as written
(`helm upgrade --install` as `helm template` with the same arguments), every step names a test
that exists, and the promotion step does what the page says."""

from __future__ import annotations

import ast
import json
import re
import shlex
import subprocess

from jsonschema import Draft202012Validator

from tests.deploy.deploy_support import ROOT, find, render

RUNBOOK = ROOT / "docs" / "operations" / "postgresql-ha.md"
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(test_\w+)`")
FENCE = re.compile(r"```sh\n(.*?)```", re.S)


def helm_commands() -> list[list[str]]:
    commands = []
    for block in FENCE.findall(RUNBOOK.read_text(encoding="utf-8")):
        for command in block.replace("\\\n", " ").splitlines():
            words = shlex.split(command)
            if words and words[0] == "helm":
                commands.append(words)
    return commands


def test_every_helm_command_renders(helm: str) -> None:
    commands = helm_commands()
    assert len(commands) >= 6
    for words in commands:
        assert words[1:3] == ["upgrade", "--install"], words
        args = [helm, "template", *words[3:]]
        proc = subprocess.run(
            args, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
        )
        assert proc.returncode == 0, f"{shlex.join(words)}:\n{proc.stderr}"
        assert "kind: Deployment" in proc.stdout


def test_every_step_names_an_existing_test() -> None:
    text = RUNBOOK.read_text(encoding="utf-8")
    steps = text.count("Tested by:")
    references = REFERENCE.findall(text)
    assert steps >= 6
    assert len(references) >= steps
    for path, name in references:
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
        defined = {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        assert name in defined, f"{path}::{name} named by {RUNBOOK.name} does not exist"


def test_promotion_drops_replica_mode(helm: str) -> None:
    objs = render(
        helm,
        ("values-production.yaml", "values-cnpg-replica.yaml"),
        sets=("externalDatabase.cloudNativePG.replica.enabled=false",),
    )
    (cluster,) = find(objs, "Cluster")
    spec = cluster["spec"]
    assert "replica" not in spec
    assert "externalClusters" not in spec or spec["externalClusters"]
    # Region B's own archive stays its own: never region A's.
    assert spec["backup"]["barmanObjectStore"]["destinationPath"] == "s3://auth-backups/region-b"
    schema = json.loads((ROOT / "scripts/deploy/schemas/cnpg-cluster.ours.json").read_text())
    assert list(Draft202012Validator(schema).iter_errors(cluster)) == []
