"""The harness's conversation (tests/harness/run.mjs, Harness.converse): a scenario asks, the
test answers, in order; without a conversation, or when the test cannot answer, the scenario
fails at once instead of waiting."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.harness import Harness, HarnessError

URL = "http://127.0.0.1:9"  # never contacted by this scenario


async def test_each_ask_gets_the_answer_to_it(harness: Harness) -> None:
    asked: list[dict[str, Any]] = []

    async def answer(ask: dict[str, Any]) -> Any:
        asked.append(ask)
        return {"heard": ask["word"].upper()}

    result = await harness.converse("ask-echo", base_url=URL, answer=answer, say=["a", "b"])
    assert asked == [{"ask": "echo", "word": "a"}, {"ask": "echo", "word": "b"}]
    assert result == [{"heard": "A"}, {"heard": "B"}]


def test_a_scenario_that_asks_without_a_conversation_fails_at_once(harness: Harness) -> None:
    with pytest.raises(HarnessError) as failure:
        harness.run("ask-echo", base_url=URL, say="a", timeout=20)
    assert "closed the conversation" in failure.value.error["message"]


async def test_an_answer_that_fails_fails_the_test_and_ends_the_scenario(
    harness: Harness,
) -> None:
    async def answer(ask: dict[str, Any]) -> Any:
        raise LookupError("no such thing")

    with pytest.raises(LookupError):
        await harness.converse("ask-echo", base_url=URL, answer=answer, say="a", timeout=20)
