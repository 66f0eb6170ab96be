"""malloc_trim hands freed heap pages back to the system (ADR 0436), and the served workers'
periodic trimmer runs it and stops when cancelled."""

from __future__ import annotations

import asyncio
import sys

import pytest

from auth_service.observability import memory


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * 4096 / 2**20


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or memory.malloc_trim() is None, reason="glibc only"
)
def test_trim_returns_pages_freed_below_the_top_of_the_heap() -> None:
    trim = memory.malloc_trim()
    assert trim is not None
    # 600-byte objects come from malloc (pymalloc takes <= 512). Keeping one in 32 alive leaves
    # whole free pages between survivors, which free() alone cannot give back.
    blocks = [bytes(600) for _ in range(160_000)]  # ~100 MiB
    survivors = blocks[::32]
    del blocks
    held = _rss_mib()
    trim(0)
    after = _rss_mib()
    assert held - after > 30, (held, after)
    assert len(survivors) == 5000


def test_periodic_trim_runs_and_stops_when_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(memory, "malloc_trim", lambda: calls.append)

    async def scenario() -> None:
        task = asyncio.create_task(memory.trim_periodically(0.01))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
    assert calls
    assert set(calls) == {0}
