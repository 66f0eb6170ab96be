#!/usr/bin/env python3
"""Validate the custom resources in rendered manifests (what kubernetes-validate cannot: it only
knows the built-in kinds).

    validate_crds.py FILE...

- cert-manager, Istio and Prometheus Operator objects: against the schemas of npm's
  @kubernetes-models/* packages (scripts/deploy/validate-crds.mjs, installed from the lockfile
  in scripts/deploy/crd-schemas/ into .tools/crd-schemas).
- CloudNativePG objects: no registry ships the operator's CRD schema, so against our own minimal
  schema of the fields the chart sets, derived from the operator's API reference
  (scripts/deploy/schemas/cnpg-*.ours.json; strict: a field not listed there fails).
- Any other custom resource fails: a new kind needs a schema before it ships.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / ".tools" / "crd-schemas" / "node_modules"
NPM_GROUPS = {
    "cert-manager.io",
    "monitoring.coreos.com",
    "networking.istio.io",
    "security.istio.io",
}
OURS = {("postgresql.cnpg.io", "Cluster"): ROOT / "scripts/deploy/schemas/cnpg-cluster.ours.json"}
BUILTIN_GROUPS = {"", "apps", "batch", "policy", "autoscaling"}


def group_of(obj: dict[str, Any]) -> str:
    api = str(obj.get("apiVersion", ""))
    return api.split("/")[0] if "/" in api else ""


def builtin(group: str) -> bool:
    return group in BUILTIN_GROUPS or group.endswith(".k8s.io")


def ours(objs: list[tuple[str, dict[str, Any]]]) -> int:
    failed = 0
    for source, obj in objs:
        schema = json.loads(OURS[(group_of(obj), obj["kind"])].read_text())
        errors = sorted(Draft202012Validator(schema).iter_errors(obj), key=lambda e: e.path)
        name = f"{source}: {obj['kind']} {obj['apiVersion']} {obj['metadata']['name']}"
        if errors:
            failed += 1
            for e in errors:
                where = "/".join(str(p) for p in e.absolute_path)
                print(f"FAIL {name}: /{where}: {e.message}", file=sys.stderr)
        else:
            print(f"ok   {name} (our schema)")
    return failed


def main(files: list[str]) -> int:
    npm: list[dict[str, Any]] = []
    mine: list[tuple[str, dict[str, Any]]] = []
    failed = 0
    for f in files:
        for obj in yaml.safe_load_all(Path(f).read_text()):
            if not obj:
                continue
            group = group_of(obj)
            if builtin(group):
                continue
            if group in NPM_GROUPS:
                npm.append({"source": Path(f).name, "object": obj})
            elif (group, obj.get("kind")) in OURS:
                mine.append((Path(f).name, obj))
            else:
                print(
                    f"FAIL {f}: {obj.get('kind')} {obj.get('apiVersion')}: no schema",
                    file=sys.stderr,
                )
                failed += 1
    failed += ours(mine)
    if npm:
        proc = subprocess.run(
            ["node", str(ROOT / "scripts/deploy/validate-crds.mjs"), str(NODE_MODULES)],
            input=json.dumps(npm),
            text=True,
            check=False,
        )
        failed += proc.returncode != 0
    if failed:
        print("validate-crds: invalid custom resources (above)", file=sys.stderr)
        return 1
    print(f"validate-crds: {len(npm) + len(mine)} custom resources valid")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
