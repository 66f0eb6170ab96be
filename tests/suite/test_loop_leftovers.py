"""A task that outlives its test's event loop fails the test quickly, named, with its stack."""

from __future__ import annotations

import pytest

STUBBORN = """
import asyncio

import tests.support.loop_leftovers as leftovers

leftovers.LEFTOVER_SECONDS = 0.5


async def _ignores_cancellation():
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass  # the bug this plugin exists to show


async def _finishes_on_cancellation():
    await asyncio.sleep(3600)


async def _ignores_one_cancellation():
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError:
        pass  # a lost cancellation: the next one ends it
    await asyncio.sleep(3600)


async def test_leaves_a_stubborn_task():
    asyncio.create_task(_ignores_cancellation(), name="stubborn-task")
    asyncio.create_task(_finishes_on_cancellation(), name="polite-task")
    await asyncio.sleep(0)


async def test_leaves_a_task_that_loses_a_cancellation():
    asyncio.create_task(_ignores_one_cancellation(), name="deaf-once-task")
    await asyncio.sleep(0)


async def test_leaves_a_task_that_ends_when_cancelled():
    asyncio.create_task(_finishes_on_cancellation(), name="polite-task")
    await asyncio.sleep(0)
"""


def test_a_task_that_ignores_cancellation_is_named_within_the_bound(
    inner: pytest.Pytester,
) -> None:
    inner.makepyfile(test_stubborn=STUBBORN)
    result = inner.runpytest_subprocess(
        "-p", "tests.support.loop_leftovers", "-p", "no:cacheprovider", "-o", "asyncio_mode=auto"
    )
    result.assert_outcomes(passed=3, errors=1, warnings=1)
    output = result.stdout.str()
    # The error's own section, not the short summary's "ERROR ... - Failed: ..." line (which
    # holds the same words when the terminal is wide enough: COLUMNS in CI).
    [line] = [line for line in output.splitlines() if line.startswith("1 task(s) still running")]
    assert line.endswith("cancelled them (6 times): stubborn-task"), line
    assert "in _ignores_cancellation" in output  # its stack
    assert "LostCancellation: test_stubborn.py::test_leaves_a_task_that_loses_a_cancellation" in (
        output
    )
    assert "in _ignores_one_cancellation" in output
