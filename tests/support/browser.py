"""Playwright for Python driving Debian's Chromium, for the browser tests.

Chromium is `/usr/bin/chromium` from `scripts/install-test-deps.sh` (or AUTH_TEST_CHROMIUM);
Playwright's own browser download does not work here and is never used. When Chromium is
absent, tests that use these fixtures skip with the reason, or fail under
AUTH_TEST_REQUIRE_SERVICES=1.

Browser tests use Playwright's async API and run in pytest-asyncio's session event loop, which
this plugin sets for them: the sync API would leave its event loop marked as running in the main
thread for as long as the browser lives, and every `asyncio.run` after it (database fixtures,
the rest of the suite) would fail. Tests that ask for ``browser``, ``browser_context`` or
``page`` are marked ``browser`` here, so ``-m "not browser"`` leaves them out.

    async def test_sign_in_page(page: Page, live_server: LiveServer) -> None:
        await page.goto(f"{live_server.url}/login")
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from playwright.async_api import Error as PlaywrightError
from pytest_asyncio import is_async_test

from tests.support.services import service_missing

CHROMIUM = os.environ.get("AUTH_TEST_CHROMIUM", "/usr/bin/chromium")
# As root on a machine with no network but loopback: no sandbox (it needs user namespaces), no
# GPU, and none of the background connections Chromium would open at start (refused here).
# Playwright gives every launch a fresh, empty --user-data-dir of its own.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
BROWSER_FIXTURES = frozenset({"browser", "browser_context", "page"})
# Stashed by the report hook so that ``page`` can keep a screenshot of a failed test.
_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # tryfirst: the marks must be on before `-m` deselects by them.
    session_loop = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if BROWSER_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())):
            continue
        item.add_marker(pytest.mark.browser)
        if not is_async_test(item):
            raise pytest.UsageError(
                f"{item.nodeid}: browser tests are `async def` (Playwright's async API)"
            )
        item.add_marker(session_loop, append=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Iterator[None]:
    report = yield
    if report.when == "call" and report.failed:  # type: ignore[attr-defined]
        item.stash[_FAILED] = True
    return report


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the whole session."""
    if not os.access(CHROMIUM, os.X_OK):
        service_missing(
            "Chromium", f"{CHROMIUM} is not installed: run scripts/install-test-deps.sh"
        )
    async with async_playwright() as playwright:
        try:
            chromium = await playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS)
            )
        except PlaywrightError as exc:
            service_missing("Chromium", f"{CHROMIUM} did not start: {exc.message}")
        yield chromium
        await chromium.close()


@pytest_asyncio.fixture(loop_scope="session")
async def browser_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh context per test: no cookies, storage or permissions shared between tests."""
    context = await browser.new_context(locale="en-US", timezone_id="UTC")
    context.set_default_timeout(10_000)
    yield context
    await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def page(
    browser_context: BrowserContext, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Page]:
    """A page of the test's own context; a failed test leaves ``failure.png`` in its tmp_path."""
    page = await browser_context.new_page()
    yield page
    if request.node.stash.get(_FAILED, False) and not page.is_closed():
        shot = tmp_path / "failure.png"
        await page.screenshot(path=shot, full_page=True)
        print(f"screenshot of the failed page ({page.url}): {shot}")
