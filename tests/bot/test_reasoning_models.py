"""Today's reasoning models through the real engine and client: OpenAI's (gpt-5, the
o-series) refuse ``max_tokens`` and any temperature but 1; local ones (DeepSeek-R1, Qwen3)
write ``<think>...</think>`` before their answer, which people never see."""

from __future__ import annotations

import json

from bot.engine import IncomingMessage
from memory.base import PlatformKey
from tests.support.agents import agents_file, chef, plain
from tests.support.engines import EngineFactory
from tests.support.fake_openai import FakeOpenAI, Reply

KEY = PlatformKey(platform="slack", workspace="T1", channel="C1", thread="100.1")
REASONING = 'I should greet them. {"answer": "not this"} Maybe mention paella.'


def said(text: str) -> IncomingMessage:
    return IncomingMessage(key=KEY, text=text, author_id="U1", author_name="Ada")


async def test_a_reasoning_model_that_refuses_max_tokens_is_answered(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine(agents_file(chef(model="gpt-5-mini", max_output_tokens=400)))

    first = await engine.reply(said("Hello")).result()
    second = await engine.reply(said("Again")).result()
    check = await engine.check_goal(first.conversation.id)

    assert not first.failed
    assert first.text == "You said: Ada: Hello"
    assert not second.failed
    assert second.text == "You said: Ada: Again"
    assert check.error is None  # temperature 0 refused once, then left out
    bodies = [request.body for request in fake_openai.chat_requests()]
    assert [("max_tokens" in b, "max_completion_tokens" in b) for b in bodies[:3]] == [
        (True, False),  # refused with OpenAI's 400
        (False, True),
        (False, True),  # remembered: the second turn goes straight
    ]
    assert bodies[2]["max_completion_tokens"] == 400
    assert [("temperature" in b) for b in bodies[3:]] == [True, False]


async def test_a_structured_reply_streams_without_the_think_block(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine()
    fake_openai.think = REASONING
    answer = "Paella needs rice, saffron and patience."
    body = {"answer": answer, "recipes": ["Paella"], "ingredients": ["rice"], "summary": "p"}
    fake_openai.script(Reply(content=json.dumps(body), chunk_size=3, chunk_delay=0.005))

    turn = engine.reply(said("paella?"))
    snapshots = [text async for text in turn]
    result = await turn.result()

    assert result.data == body
    assert result.text == answer
    assert len(snapshots) > 3
    assert all(answer.startswith(snapshot) for snapshot in snapshots)
    stored = await engine.store.list_messages(conversation_id=result.conversation.id)
    assert "think" not in stored[-1].text
    assert stored[-1].error is None


async def test_a_plain_reply_streams_without_the_think_block(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine(agents_file(plain()))
    fake_openai.think = REASONING
    fake_openai.script(Reply(content="Plain answer, streamed in pieces.", chunk_size=4))

    turn = engine.reply(said("hello"))
    snapshots = [text async for text in turn]
    result = await turn.result()

    assert result.text == "Plain answer, streamed in pieces."
    assert snapshots
    assert all("think" not in s and "greet" not in s for s in snapshots)
    assert snapshots[-1] == result.text


async def test_goal_checks_and_summaries_read_past_the_think_block(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine(agents_file(chef(context_tokens=200)))
    fake_openai.think = REASONING
    first = await engine.reply(said("Hello, my name is Bob")).result()
    for number in range(12):
        await engine.reply(said(f"filler message number {number} about the weather")).result()
    await engine.reply(said("I have chosen the paella")).result()
    check = await engine.check_goal(first.conversation.id)
    await engine.aclose()  # lets the background summary finish

    assert check.error is None
    assert check.reached is True
    conversation = await engine.store.get_conversation(conversation_id=first.conversation.id)
    assert conversation is not None
    assert conversation.summary.startswith("Summary: The user's name is Bob.")
    repairs = [r for r in fake_openai.chat_requests() if "was not valid" in str(r.messages[-1])]
    assert repairs == []
