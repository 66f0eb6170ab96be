"""Cutting a streamed NDJSON body into lines (accounts.importing.split_lines): the same
lines whatever the chunking, and a line over the limit refused once without being held."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from hypothesis import given
from hypothesis import strategies as st

from auth_service.accounts.importing import MAX_LINE_BYTES, split_lines


async def _lines(data: bytes, cuts: list[int]) -> list[tuple[int, bytes | None]]:
    async def chunks() -> AsyncIterator[bytes]:
        start = 0
        for cut in sorted(set(cuts)):
            yield data[start:cut]
            start = cut
        yield data[start:]

    return [x async for x in split_lines(chunks())]


LINE = st.one_of(
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
    st.integers(MAX_LINE_BYTES - 2, MAX_LINE_BYTES + 2).map(lambda n: b"x" * n),
)


@given(st.lists(LINE, max_size=8), st.booleans(), st.lists(st.integers(0, 70_000), max_size=12))
def test_any_chunking_gives_the_same_numbered_lines(
    lines: list[bytes], final_newline: bool, cuts: list[int]
) -> None:
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    got = asyncio.run(_lines(data, [c for c in cuts if c <= len(data)]))
    expected = [
        (number, line if len(line) <= MAX_LINE_BYTES else None)
        for number, line in enumerate(lines, start=1)
    ]
    if lines and not final_newline and lines[-1] == b"":
        expected.pop()  # nothing after the last newline: no line
    assert got == expected


def test_a_huge_line_is_dropped_as_it_streams() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"a": 1}\n'
        for _ in range(1000):  # 64 MiB without a newline
            yield b"y" * 65536
        yield b"\n{}\n"

    async def run() -> list[tuple[int, bytes | None]]:
        return [x async for x in split_lines(chunks())]

    assert asyncio.run(run()) == [(1, b'{"a": 1}'), (2, None), (3, b"{}")]
