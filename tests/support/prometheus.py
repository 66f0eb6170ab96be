"""pytest plugin: the real Prometheus tools (promtool, amtool, prometheus, alertmanager), and a
real Alertmanager running the project's routing tree."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.support.daemon import Daemon
from tests.support.net import free_port
from tests.support.services import service_missing

REPO = Path(__file__).resolve().parents[2]
INSTALLER = REPO / "scripts" / "monitoring" / "install-tools.sh"
ALERTMANAGER_CONFIG = REPO / "monitoring" / "alertmanager" / "alertmanager.yml"


@dataclass(frozen=True)
class Tools:
    promtool: str
    amtool: str
    prometheus: str
    alertmanager: str


def ensure_tools() -> Tools:
    """The tools from PATH; scripts/monitoring/install-tools.sh installs the Debian packages
    first when one is missing (a no-op otherwise)."""
    try:
        proc = subprocess.run(
            ["bash", str(INSTALLER)], capture_output=True, text=True, timeout=900, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        service_missing("Prometheus tools", f"install-tools.sh could not run: {exc}")
    found = {
        "promtool": shutil.which("promtool"),
        "amtool": shutil.which("amtool"),
        "prometheus": shutil.which("prometheus"),
        # Debian names the binary after its package.
        "alertmanager": shutil.which("alertmanager") or shutil.which("prometheus-alertmanager"),
    }
    missing = sorted(name for name, path in found.items() if path is None)
    if proc.returncode != 0 or missing:
        service_missing(
            "Prometheus tools",
            f"missing {missing or 'none'}; install-tools.sh exit {proc.returncode}: "
            f"{proc.stderr.strip()[-500:]}",
        )
    return Tools(**{name: str(path) for name, path in found.items()})


@pytest.fixture(scope="session")
def tools() -> Tools:
    return ensure_tools()


@pytest.fixture
def alertmanager(tools: Tools, tmp_path: Path) -> Iterator[str]:
    """Our routing tree and inhibition rules, receivers swapped for a loopback webhook that
    nothing listens on (tests read alert state through the API, not notifications)."""
    doc = yaml.safe_load(ALERTMANAGER_CONFIG.read_text(encoding="utf-8"))
    doc.pop("templates", None)
    hook = f"http://127.0.0.1:{free_port()}/hook"
    doc["receivers"] = [
        {"name": r["name"], "webhook_configs": [{"url": hook, "send_resolved": True}]}
        for r in doc["receivers"]
    ]
    config = tmp_path / "alertmanager.yml"
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [
        tools.alertmanager,
        f"--config.file={config}",
        f"--storage.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        "--log.level=warn",
    ]
    with Daemon("alertmanager", args, tmp_path / "alertmanager.log", f"{url}/-/ready"):
        yield url
