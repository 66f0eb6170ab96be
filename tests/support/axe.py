"""axe-core (from the Node harness's lockfile) run inside a Playwright page.

    await page.goto(f"{live_server.url}/login")
    assert await axe_violations(page) == []

The script goes in through the DevTools protocol (``page.evaluate``), not a <script> tag, so a
page whose CSP forbids inline and foreign scripts (ours) is checked as it is served.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from playwright.async_api import Page

from tests.support.harness import INSTALL_HINT, NODE_MODULES
from tests.support.services import service_missing

AXE_SCRIPT = NODE_MODULES / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")

_RUN = """async (impacts) => {
  const { violations } = await axe.run(document, { resultTypes: ["violations"] });
  return violations
    .filter((v) => impacts.includes(v.impact))
    .map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                   targets: v.nodes.map((n) => n.target.join(" ")) }));
}"""


@cache
def _axe_source() -> str:
    if not AXE_SCRIPT.is_file():
        service_missing("axe-core", f"{AXE_SCRIPT} missing ({INSTALL_HINT})")
    return AXE_SCRIPT.read_text(encoding="utf-8")


async def axe_violations(page: Page, impacts: tuple[str, ...] = BLOCKING) -> list[dict[str, Any]]:
    """The page's axe violations of those impacts (``id``, ``impact``, ``help``, ``targets``)."""
    if not await page.evaluate("typeof axe !== 'undefined'"):
        await page.evaluate(_axe_source())
    result: list[dict[str, Any]] = await page.evaluate(_RUN, list(impacts))
    return result
