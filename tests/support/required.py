"""pytest plugin: a run that requires every service (AUTH_TEST_REQUIRE_SERVICES=1, CI) fails
on any skip but the few expected ones, so that no missing server, binary or package can pass
for green. Skips for a missing service go through services.service_missing; this catches
every other skip, including ones a future test adds."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.support.services import REQUIRE_SERVICES

# (node id prefix, words of the skip reason): skips that hold whatever the machine has.
ALLOWED_SKIPS: tuple[tuple[str, str], ...] = (
    # Run on both databases; SQLite has no read-only standby to detect, PostgreSQL's case runs.
    ("tests/integration/health/test_probes.py::", "read-only detection is PostgreSQL's"),
    # Mounting the small tmpfs needs root with CAP_SYS_ADMIN, which unprivileged containers
    # lack; the rest of the suite runs there all the same.
    ("tests/integration/db/test_sqlite_disk_full.py::", "cannot mount a tmpfs"),
)


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    text = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ")


def allowed(nodeid: str, reason: str) -> bool:
    return any(nodeid.startswith(node) and words in reason for node, words in ALLOWED_SKIPS)


def _refuse(report: pytest.TestReport | pytest.CollectReport) -> None:
    reason = _reason(report)
    if allowed(report.nodeid, reason):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"skipped although AUTH_TEST_REQUIRE_SERVICES=1 ({reason}); provide what it needs, "
        "or add it to ALLOWED_SKIPS in tests/support/required.py with the reason it must skip"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if REQUIRE_SERVICES and report.skipped and not hasattr(report, "wasxfail"):
        _refuse(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield
    if REQUIRE_SERVICES and report.skipped:
        _refuse(report)
    return report
