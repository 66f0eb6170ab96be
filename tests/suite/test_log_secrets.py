"""A password or token that reaches the logs fails the session, whichever test logged it."""

from __future__ import annotations

import pytest

LOGS_A_SECRET = """
import structlog

from tests.support.secrets import remember


def test_logs_a_token():
    remember("tok-0123456789-leaked")
    structlog.get_logger("x").info("oops", note="tok-0123456789-leaked")


def test_runs_after_it():
    pass
"""

LOGS_NO_SECRET = """
import structlog

from tests.support.secrets import remember


def test_keeps_the_token_to_itself():
    remember("tok-0123456789-kept")
    structlog.get_logger("x").info("fine", note="nothing to see")
"""


def test_a_leaked_secret_fails_the_run_though_every_test_passed(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_leak=LOGS_A_SECRET)
    result = inner.runpytest_subprocess("-p", "tests.support.log_secrets", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*1 secrets found in the logs*tok-01...*"])
    assert "tok-0123456789-leaked" in (inner.path / "session.log").read_text()


def test_a_clean_run_passes(inner: pytest.Pytester) -> None:
    inner.makepyfile(test_clean=LOGS_NO_SECRET)
    result = inner.runpytest_subprocess("-p", "tests.support.log_secrets", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.OK
    assert "fine" in (inner.path / "session.log").read_text()
