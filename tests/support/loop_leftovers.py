"""Tasks a test leaves running when its event loop closes.

asyncio cancels them and waits, without a bound, for every one to finish: a task that ignores
its cancellation, or that awaits something which can no longer complete (a connection of a
pool that was disposed), hangs the test until pytest-timeout fails it five minutes later, with
only the threads' stacks to show for it. This plugin waits ``LEFTOVER_SECONDS`` instead and
then fails the test's teardown naming every task still running, with its stack (pytest-asyncio
would only warn about an error raised while its runner closes the loop).

Each task still running is cancelled again every ``LEFTOVER_SECONDS / ROUNDS``: one that ends
only then had lost a cancellation, which is reported as a ``LostCancellation`` warning with
its stack (the test passes); one still running after every round fails the test.

With ``AUTH_TEST_LEFTOVERS=<file>`` every loop close that found tasks still running (even ones
that then ended when cancelled) appends a line to the file: the test and the tasks' names.
"""

from __future__ import annotations

import asyncio
import asyncio.runners
import io
import os
import warnings
from collections.abc import Generator
from typing import Any

import pytest

LEFTOVER_SECONDS = 30.0
# Cancelled again this many times within LEFTOVER_SECONDS: a task that lost one cancellation
# (Python 3.11's asyncio.wait_for can drop a cancel that meets its own timeout) ends on the
# next; one that awaits what can never complete does not.
ROUNDS = 6


class LostCancellation(UserWarning):
    """A task left running by a test ended only after being cancelled more than once."""


_found: list[str] = []
_lost: list[str] = []
_current = ""


def _stacks(tasks: set[asyncio.Task[Any]]) -> str:
    out = io.StringIO()
    for task in tasks:
        task.print_stack(file=out)
    return out.getvalue()


def _names(tasks: set[asyncio.Task[Any]]) -> str:
    return ", ".join(sorted(task.get_name() for task in tasks))


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    if not tasks:
        return
    record = os.environ.get("AUTH_TEST_LEFTOVERS")
    if record:
        with open(record, "a", encoding="utf-8") as out:
            out.write(f"{_current}: {_names(tasks)}\n")
    pending = tasks
    first_stacks = ""
    for attempt in range(ROUNDS):
        for task in pending:
            task.cancel()
        _, pending = loop.run_until_complete(
            asyncio.wait(pending, timeout=LEFTOVER_SECONDS / ROUNDS)
        )
        if not pending:
            break
        if attempt == 0:
            first_stacks = _stacks(pending)
    for task in tasks - pending:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during asyncio.run() shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )
    if pending:
        _found.append(
            f"{len(pending)} task(s) still running {LEFTOVER_SECONDS:g} s after the test's "
            f"event loop cancelled them ({ROUNDS} times): {_names(pending)}\n{_stacks(pending)}"
        )
    elif first_stacks:
        _lost.append(
            f"{_current}: task(s) ended only when cancelled again; where the first "
            f"cancellation left them:\n{first_stacks}"
        )


def pytest_configure(config: Any) -> None:
    asyncio.runners._cancel_all_tasks = _cancel_all_tasks  # type: ignore[attr-defined]


def pytest_runtest_setup(item: pytest.Item) -> None:
    global _current
    _current = item.nodeid


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    yield
    for lost in _lost:
        warnings.warn(LostCancellation(lost), stacklevel=1)
    _lost.clear()
    if _found:
        found = "\n".join(_found)
        _found.clear()
        pytest.fail(found, pytrace=False)
