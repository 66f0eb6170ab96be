"""Under AUTH_TEST_REQUIRE_SERVICES=1 a skip fails the run, unless it is on the allow-list."""

from __future__ import annotations

import pytest

from tests.support.required import ALLOWED_SKIPS, allowed

SKIPS = """
import pytest

from tests.support.services import service_missing


def test_skips_itself():
    pytest.skip("no frobnicator here")


@pytest.fixture
def server():
    service_missing("Frobnicator", "nothing on 127.0.0.1:1")


def test_needs_a_server(server):
    pass


@pytest.mark.skipif(True, reason="not on this platform")
def test_marked():
    pass


@pytest.mark.xfail(reason="known bug", strict=True)
def test_known_bug():
    assert False
"""

MODULE_SKIP = """
import pytest

pytest.importorskip("a_package_that_is_not_installed")


def test_never_collected():
    pass
"""


def _run(inner: pytest.Pytester, **files: str) -> pytest.RunResult:
    inner.makepyfile(**files)
    return inner.runpytest_subprocess("-p", "tests.support.required", "-p", "no:cacheprovider")


def test_without_the_variable_skips_stay_skips(inner: pytest.Pytester) -> None:
    result = _run(inner, test_skips=SKIPS, test_module_skip=MODULE_SKIP)
    result.assert_outcomes(skipped=4, xfailed=1)
    assert result.ret == pytest.ExitCode.OK


@pytest.fixture
def required(inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("AUTH_TEST_REQUIRE_SERVICES", "1")
    return inner


def test_a_required_run_fails_on_every_skip(required: pytest.Pytester) -> None:
    result = _run(required, test_skips=SKIPS)
    # service_missing fails at once (a fixture: an error); the hook turns the plain skip (a
    # failure) and the skipif (at setup: an error) into failures; an expected failure stays.
    result.assert_outcomes(failed=1, errors=2, xfailed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    for line in (
        "*skipped although AUTH_TEST_REQUIRE_SERVICES=1 (no frobnicator here)*",
        "*skipped although AUTH_TEST_REQUIRE_SERVICES=1 (not on this platform)*",
        "*Frobnicator not available (nothing on 127.0.0.1:1)*",
    ):
        result.stdout.fnmatch_lines([line])


def test_a_required_run_fails_on_a_module_that_skips_itself(required: pytest.Pytester) -> None:
    result = _run(required, test_module_skip=MODULE_SKIP)
    result.assert_outcomes(errors=1)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*AUTH_TEST_REQUIRE_SERVICES=1*a_package_that_is_not_installed*"])


def test_the_allow_list_is_short_and_matches_by_node_and_reason() -> None:
    assert len(ALLOWED_SKIPS) <= 3
    node, words = ALLOWED_SKIPS[0]
    assert allowed(node + "test_x[sqlite]", f"{words} (SQLite is a local file)")
    assert not allowed(node + "test_x[sqlite]", "PostgreSQL not available")
    assert not allowed("tests/api/test_x.py::test_y", words)
