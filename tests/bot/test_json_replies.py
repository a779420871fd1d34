"""JSON replies through the real engine and client: validated with JSON Schema in every mode,
broken JSON mended locally before a repair call is spent."""

from __future__ import annotations

import json
from typing import Any

from bot.engine import IncomingMessage
from memory.base import PlatformKey
from tests.support.agents import agents_file, chef
from tests.support.engines import EngineFactory
from tests.support.fake_openai import FakeOpenAI, Reply

KEY = PlatformKey(platform="slack", workspace="T1", channel="C1", thread="100.1")
SHAPE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "pattern": "^[A-Z]"},
        "recipes": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "serves": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]},
    },
    "required": ["answer", "recipes", "serves"],
    "additionalProperties": False,
}
GOOD = {"answer": "Paella it is.", "recipes": ["Paella"], "serves": 4}


def said(text: str) -> IncomingMessage:
    return IncomingMessage(key=KEY, text=text, author_id="U1", author_name="Ada")


def repairs(fake_openai: FakeOpenAI) -> list[str]:
    """The repair requests' complaint, one per repair call."""
    return [
        str(r.messages[-1]["content"])
        for r in fake_openai.chat_requests()
        if "was not valid" in str(r.messages[-1].get("content"))
    ]


async def test_broken_json_is_mended_without_a_repair_call(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine(agents_file(chef(response_shape=SHAPE)))
    broken = "{'answer': 'Paella it is.', 'recipes': ['Paella'], 'serves': 4,"  # cut off
    fake_openai.script(Reply(content=broken))

    turn = engine.reply(said("paella?"))
    snapshots = [text async for text in turn]
    result = await turn.result()

    assert result.data == GOOD
    assert result.text == "Paella it is."
    assert snapshots[-1] == "Paella it is."
    assert len(fake_openai.chat_requests()) == 1
    stored = await engine.store.list_messages(conversation_id=result.conversation.id)
    assert stored[-1].error is None


async def test_mended_json_that_does_not_validate_still_gets_a_repair_call(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine(agents_file(chef(response_shape=SHAPE)))
    fake_openai.script(
        Reply(content='{"answer": "Paella it is.", "recipes": ['),  # mended: recipes empty
        Reply(content=json.dumps(GOOD)),
    )

    result = await engine.reply(said("paella?")).result()

    assert result.data == GOOD
    [complaint] = repairs(fake_openai)
    assert "the reply is not a JSON object" in complaint


async def test_the_fallback_modes_honour_pattern_min_items_and_any_of(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reject_json_schema = True
    engine = make_engine(agents_file(chef(response_shape=SHAPE)))
    wrong = {"answer": "lower case", "recipes": [], "serves": 0}
    fake_openai.script(Reply(content=json.dumps(wrong)), Reply(content=json.dumps(GOOD)))

    result = await engine.reply(said("paella?")).result()

    assert result.data == GOOD
    modes = [(r.response_format or {}).get("type") for r in fake_openai.chat_requests()]
    assert modes == ["json_schema", "json_object", "json_object"]
    [complaint] = repairs(fake_openai)
    assert "field 'answer': 'lower case' does not match '^[A-Z]'" in complaint
    assert "field 'recipes': [] should be non-empty" in complaint
    assert "field 'serves': 0 is not valid under any of the given schemas" in complaint
