"""The Node harness (tests/harness): third-party clients run against a live auth-service.

`scripts/install-test-deps.sh` installs it (`npm ci` from the committed lockfile). When Node or
the packages are missing, tests that use the ``harness`` fixture skip with the reason, or fail
under AUTH_TEST_REQUIRE_SERVICES=1; they are marked ``harness`` automatically.

    result = harness.run("verify-access-token", base_url=live_server.url, token=token)
    assert result["claims"]["sub"] == user_id

A scenario that needs the test midway (a browser step, a factor to enrol) asks, and the test
answers from an async callable (tests/harness/run.mjs has the protocol):

    async def answer(ask: dict[str, Any]) -> Any:  # {"ask": "browser", "url": ...}
        return await drive_browser(ask["url"])
    result = await harness.converse("oidc-code-flow", base_url=url, answer=answer, ...)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
from collections.abc import Awaitable, Callable, Iterable
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


Answer = Callable[[dict[str, Any]], Awaitable[Any]]
# One line of the conversation may carry a whole page or token set.
_LINE_LIMIT = 4 * 1024 * 1024


def _argv(scenario: str, base_url: str, options: dict[str, Any]) -> list[str]:
    """Keyword options become ``--kebab-case value`` (a list repeats the option)."""
    argv = ["node", str(HARNESS_DIR / "run.mjs"), scenario, "--base-url", base_url]
    for name, value in options.items():
        values: Iterable[Any] = value if isinstance(value, list | tuple) else [value]
        for item in values:
            argv += [f"--{name.replace('_', '-')}", str(item)]
    return argv


def _outcome(scenario: str, returncode: int, last_line: str, stderr: str) -> Any:
    try:
        reply = json.loads(last_line)
    except json.JSONDecodeError:
        reply = {"ok": False, "error": {"message": f"no JSON on stdout: {last_line!r}"}}
    if returncode != 0 or not reply.get("ok"):
        raise HarnessError(scenario, returncode, reply.get("error", {}), stderr)
    return reply["result"]


class Harness:
    def run(self, scenario: str, *, base_url: str, timeout: float = 60, **options: Any) -> Any:
        """Run ``tests/harness/scenarios/<scenario>.mjs``; its result, or raise HarnessError.
        No conversation: a scenario that asks fails."""
        done = subprocess.run(
            _argv(scenario, base_url, options),
            cwd=HARNESS_DIR,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        lines = done.stdout.strip().splitlines()
        return _outcome(scenario, done.returncode, lines[-1] if lines else "", done.stderr)

    async def converse(
        self, scenario: str, *, base_url: str, answer: Answer, timeout: float = 90, **options: Any
    ) -> Any:
        """Run a scenario that asks: each ``{"ask": ...}`` line it prints goes to ``answer``,
        whose result is written back as ``{"reply": ...}``. The result, or HarnessError; an
        exception of ``answer`` is told to the scenario and raised here."""
        process = await asyncio.create_subprocess_exec(
            *_argv(scenario, base_url, options),
            cwd=HARNESS_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=_LINE_LIMIT,
        )
        assert process.stdin
        assert process.stdout
        assert process.stderr
        stderr = asyncio.ensure_future(process.stderr.read())  # never left to fill its pipe
        last = ""
        try:
            async with asyncio.timeout(timeout):
                while line := (await process.stdout.readline()).decode():
                    last = line.strip()
                    try:
                        message = json.loads(last)
                    except json.JSONDecodeError:
                        continue  # a stray console.log: only JSON lines speak
                    if not isinstance(message, dict) or "ask" not in message:
                        continue
                    try:
                        reply = {"reply": await answer(message)}
                    except BaseException as exc:
                        with contextlib.suppress(OSError):
                            process.stdin.write(json.dumps({"error": repr(exc)}).encode() + b"\n")
                        raise
                    process.stdin.write(json.dumps(reply).encode() + b"\n")
                    await process.stdin.drain()
                process.stdin.close()
                returncode = await process.wait()
                errors = (await stderr).decode(errors="replace")
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
            stderr.cancel()
        return _outcome(scenario, returncode, last, errors)


@pytest.fixture(scope="session")
def harness() -> Harness:
    reason = missing_packages()
    if reason is not None:
        service_missing("Node harness", reason)
    return Harness()
