"""The Node harness (tests/harness): third-party clients run against a live auth-service.

`scripts/install-test-deps.sh` installs it (`npm ci` from the committed lockfile). When Node or
the packages are missing, tests that use the ``harness`` fixture skip with the reason, or fail
under AUTH_TEST_REQUIRE_SERVICES=1; they are marked ``harness`` automatically.

    result = harness.run("verify-access-token", base_url=live_server.url, token=token)
    assert result["claims"]["sub"] == user_id
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import service_missing

HARNESS_DIR = Path(__file__).resolve().parents[1] / "harness"
NODE_MODULES = HARNESS_DIR / "node_modules"
PACKAGES = ("jose", "openid-client", "oauth4webapi", "oidc-provider", "axe-core")
INSTALL_HINT = "run scripts/install-test-deps.sh"


def missing_packages() -> str | None:
    """Why the harness cannot run, or None when Node and every package are there."""
    if shutil.which("node") is None:
        return f"node is not on PATH ({INSTALL_HINT})"
    absent = [p for p in PACKAGES if not (NODE_MODULES / p / "package.json").is_file()]
    if absent:
        return f"{', '.join(absent)} missing in {NODE_MODULES} ({INSTALL_HINT})"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # tryfirst: the mark must be on before `-m` deselects by it.
    for item in items:
        if "harness" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.harness)


class HarnessError(AssertionError):
    """A scenario that failed: ``error`` is what the runner reported (name, code, message)."""

    def __init__(self, scenario: str, returncode: int, error: dict[str, Any], stderr: str) -> None:
        super().__init__(f"harness scenario {scenario} failed ({returncode}): {error}\n{stderr}")
        self.scenario = scenario
        self.returncode = returncode
        self.error = error
        self.stderr = stderr


class Harness:
    def run(self, scenario: str, *, base_url: str, timeout: float = 60, **options: Any) -> Any:
        """Run ``tests/harness/scenarios/<scenario>.mjs``; its result, or raise HarnessError.

        Keyword options become ``--kebab-case value`` (a list repeats the option).
        """
        argv = ["node", str(HARNESS_DIR / "run.mjs"), scenario, "--base-url", base_url]
        for name, value in options.items():
            values: Iterable[Any] = value if isinstance(value, list | tuple) else [value]
            for item in values:
                argv += [f"--{name.replace('_', '-')}", str(item)]
        done = subprocess.run(
            argv, cwd=HARNESS_DIR, capture_output=True, text=True, timeout=timeout, check=False
        )
        try:
            reply = json.loads(done.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            reply = {"ok": False, "error": {"message": f"no JSON on stdout: {done.stdout!r}"}}
        if done.returncode != 0 or not reply.get("ok"):
            raise HarnessError(scenario, done.returncode, reply.get("error", {}), done.stderr)
        return reply["result"]


@pytest.fixture(scope="session")
def harness() -> Harness:
    reason = missing_packages()
    if reason is not None:
        service_missing("Node harness", reason)
    return Harness()
