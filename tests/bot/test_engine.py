"""The engine end to end: real store, real AsyncOpenAI client, fake OpenAI server on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.engine import (
    GOAL_SCHEMA,
    ApiShareFull,
    ConversationBusy,
    EngineBusy,
    IncomingMessage,
    KeyBusy,
    NoGoal,
    UnknownAgent,
)
from bot.errors import StoreUnavailable
from memory.base import NewMessage, PlatformKey
from memory.sqlite import SqliteStore
from tests.support.agents import agents_file, chef, plain
from tests.support.engines import EngineFactory
from tests.support.fake_openai import FakeOpenAI, HeldModel, RecordedRequest, Reply

KEY = PlatformKey(platform="slack", workspace="T1", channel="C1", thread="100.1")
OTHER = PlatformKey(platform="slack", workspace="T1", channel="C1", thread="200.2")


def said(text: str, key: PlatformKey = KEY, author: str = "Ada") -> IncomingMessage:
    return IncomingMessage(key=key, text=text, author_id="U1", author_name=author)


def in_api(text: str, channel: str, quota: str | None = None) -> IncomingMessage:
    key = PlatformKey(platform="api", channel=channel)
    return IncomingMessage(key=key, text=text, author_id="U1", author_name="Ada", quota=quota)


@pytest.fixture
async def held(fake_openai: FakeOpenAI) -> AsyncIterator[HeldModel]:
    hold = HeldModel()
    fake_openai.handle(hold)
    yield hold
    hold.release()  # before the engine and the fake server stop, whatever the test did


async def test_structured_reply_is_stored_whole_and_shown_by_field(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine()
    result = await engine.reply(said("Hi, my name is Bob")).result()

    assert result.text == "You said: Ada: Hi, my name is Bob"
    assert result.data is not None
    assert result.data["answer"] == result.text
    assert set(result.data) == {"answer", "recipes", "ingredients", "summary"}
    assert not result.failed

    request = fake_openai.chat_requests()[-1]
    response_format = request.response_format
    assert response_format is not None
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["strict"] is True
    assert response_format["json_schema"]["schema"]["required"] == [
        "answer",
        "recipes",
        "ingredients",
        "summary",
    ]
    assert request.body["model"] == "gpt-4o-mini"
    assert request.headers.get("authorization") == "Bearer test-key"

    stored = await engine.store.list_messages(conversation_id=result.conversation.id)
    assert [(m.role, m.text) for m in stored] == [
        ("user", "Hi, my name is Bob"),
        ("assistant", result.text),
    ]
    assert stored[0].author_name == "Ada"
    assert stored[0].token_count > 0
    assert stored[1].data == result.data


async def test_prompt_order_on_a_later_turn(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine()
    await engine.reply(said("first")).result()
    await engine.reply(said("second", author="Matt")).result()
    messages = fake_openai.chat_requests()[-1].messages
    assert [m["role"] for m in messages] == ["system", "assistant", "user", "assistant", "user"]
    assert messages[0]["content"].startswith("You are a Mediterranean chef.")
    assert messages[1]["content"] == engine.agents.default.first_message
    assert messages[2]["content"] == "Ada: first"
    assert json.loads(messages[3]["content"])["answer"] == "You said: Ada: first"
    assert messages[4]["content"] == "Matt: second"


async def test_plain_agent_streams_text_without_response_format(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine(agents_file(plain()))
    fake_openai.script(Reply(content="Plain answer, streamed in pieces.", chunk_size=4))
    turn = engine.reply(said("hello"))
    snapshots = [text async for text in turn]
    result = await turn.result()
    assert result.text == "Plain answer, streamed in pieces."
    assert result.data is None
    assert snapshots[-1] == result.text
    assert fake_openai.chat_requests()[-1].response_format is None
    assert fake_openai.chat_requests()[-1].stream


async def test_reply_field_streams_out_of_partial_json(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine()
    answer = "Paella needs rice, saffron and patience; let me walk you through it."
    body = json.dumps(
        {"answer": answer, "recipes": ["Paella"], "ingredients": ["rice"], "summary": "paella"}
    )
    fake_openai.script(Reply(content=body, chunk_size=5, chunk_delay=0.005))
    turn = engine.reply(said("paella?"))
    snapshots = [text async for text in turn]
    result = await turn.result()
    assert result.text == answer
    assert len(snapshots) >= 5, "the visible text grew in several steps"
    assert all(answer.startswith(snapshot) for snapshot in snapshots)
    assert not any("{" in snapshot or "recipes" in snapshot for snapshot in snapshots)
    assert snapshots[-1] == answer


async def test_falls_back_to_json_mode_and_remembers_it(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reject_json_schema = True
    engine = make_engine()
    first = await engine.reply(said("one")).result()
    second = await engine.reply(said("two")).result()
    formats = [request.response_format for request in fake_openai.chat_requests()]
    assert [f["type"] if f else None for f in formats] == [
        "json_schema",
        "json_object",
        "json_object",
    ], "a refused format is not asked for again"
    assert first.data is not None
    assert first.data["answer"] == "You said: Ada: one"
    assert second.data is not None
    system = fake_openai.chat_requests()[1].messages[0]["content"]
    assert "JSON Schema" in system


async def test_falls_back_to_prompt_only_when_json_mode_is_refused_too(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reject_json_schema = True
    fake_openai.reject_json_object = True
    engine = make_engine()
    result = await engine.reply(said("hello")).result()
    formats = [request.response_format for request in fake_openai.chat_requests()]
    assert [f["type"] if f else None for f in formats] == ["json_schema", "json_object", None]
    assert result.data is not None
    assert result.text == "You said: Ada: hello"


async def test_invalid_json_is_repaired_once(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine()
    fixed = {"answer": "Fixed.", "recipes": [], "ingredients": [], "summary": "s"}
    fake_openai.script(
        Reply(content='{"answer": "Broken", "recipes": "not a list"}'),
        Reply(content=json.dumps(fixed)),
    )
    result = await engine.reply(said("hi")).result()
    assert result.text == "Fixed."
    assert result.data == fixed
    repair = fake_openai.chat_requests()[-1]
    assert not repair.stream
    assert repair.messages[-2]["content"] == '{"answer": "Broken", "recipes": "not a list"}'
    assert "field 'recipes' must be array" in repair.messages[-1]["content"]
    assert "missing field 'ingredients'" in repair.messages[-1]["content"]


async def test_still_invalid_json_shows_and_keeps_the_raw_text(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine()
    fake_openai.script(Reply(content="I forgot the JSON, sorry."), Reply(content="Still no JSON."))
    result = await engine.reply(said("hi")).result()
    assert result.text == "I forgot the JSON, sorry."
    assert result.data is None
    assert not result.failed
    stored = await engine.store.list_messages(conversation_id=result.conversation.id)
    assert stored[-1].text == "I forgot the JSON, sorry."
    assert stored[-1].error is not None
    assert stored[-1].error.startswith("invalid JSON")


@pytest.mark.parametrize(
    ("failure", "attempts"),
    [
        (Reply(status=500, error_message="upstream exploded"), 2),
        (Reply(status=429, headers={"retry-after": "0"}), 2),
        (Reply(delay=2.0), 2),
        (Reply(content='{"answer": "cut off', drop_after_chunks=1), 1),
    ],
    ids=["500", "429", "timeout", "dropped-stream"],
)
async def test_model_failure_apologises_and_loses_nothing(
    make_engine: EngineFactory, fake_openai: FakeOpenAI, failure: Reply, attempts: int
) -> None:
    """The SDK retries (once here) what fails before the reply starts; a stream that breaks
    half-way is not replayed, since part of it may already have been shown."""
    engine = make_engine(
        agents_file(chef(apology="Sorry, the kitchen is closed for a moment.")),
        max_retries=1,
        timeout=0.5,
    )
    fake_openai.script(*[failure] * attempts)
    result = await engine.reply(said("Hi, my name is Bob")).result()
    assert result.failed
    assert result.text == "Sorry, the kitchen is closed for a moment."
    assert len(fake_openai.chat_requests()) == attempts
    stored = await engine.store.list_messages(conversation_id=result.conversation.id)
    assert stored[0].text == "Hi, my name is Bob"
    assert stored[1].error is not None

    after = await engine.reply(said("what's my name?")).result()
    assert not after.failed
    assert after.text == "Your name is Bob."
    last_prompt = fake_openai.chat_requests()[-1].messages
    assert "Sorry, the kitchen is closed" not in json.dumps(last_prompt)


async def test_messages_of_one_conversation_are_handled_in_order(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine(agents_file(plain()))
    fake_openai.handle(
        lambda request: Reply(
            content=f"echo {request.messages[-1]['content']}", chunk_delay=0.002, chunk_size=3
        )
    )
    turns = [engine.reply(said(f"m{n}")) for n in range(8)]  # the conversation's cap
    results = await asyncio.gather(*(turn.result() for turn in turns))
    assert [r.text for r in results] == [f"echo Ada: m{n}" for n in range(8)]
    stored = await engine.store.list_messages(conversation_id=results[0].conversation.id)
    assert [m.text for m in stored] == [
        text for n in range(8) for text in (f"m{n}", f"echo Ada: m{n}")
    ]
    prompts = [request.messages for request in fake_openai.chat_requests()]
    assert len(prompts[-1]) == 2 + 14 + 1, "the last turn saw all seven earlier turns"
    assert engine.locked_conversations == 0, "the lock table empties when turns end"


async def test_conversations_run_concurrently_and_stay_separate(
    make_engine: EngineFactory,
) -> None:
    engine = make_engine()
    await asyncio.gather(
        engine.reply(said("my name is Bob", key=KEY)).result(),
        engine.reply(said("my name is Matt", key=OTHER)).result(),
    )
    bob, matt = await asyncio.gather(
        engine.reply(said("What's my name again?", key=KEY)).result(),
        engine.reply(said("What's my name again?", key=OTHER)).result(),
    )
    assert bob.text == "Your name is Bob."
    assert matt.text == "Your name is Matt."
    assert bob.conversation.id != matt.conversation.id


async def test_the_summary_keeps_an_early_fact_for_hundreds_of_turns(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine(agents_file(plain(context_tokens=200)))
    await engine.reply(said("Hello, my name is Bob and I love figs")).result()
    for number in range(298):
        await engine.reply(said(f"filler message number {number} about the weather")).result()
    result = await engine.reply(said("What's my name?")).result()
    await engine.aclose()

    assert result.text == "Your name is Bob."
    final_prompt = fake_openai.chat_requests()[-1]
    contents = [m["content"] for m in final_prompt.messages]
    assert not any("love figs" in text for text in contents[2:]), "turn 1 is long out of the window"
    summaries = [m for m in final_prompt.messages[2:] if m["role"] == "system"]
    assert len(summaries) == 1
    assert "Bob" in summaries[0]["content"]
    conversation = await engine.store.get_conversation(conversation_id=result.conversation.id)
    assert conversation is not None
    assert conversation.message_count == 600
    assert 500 < conversation.summary_seq < 600
    summary_calls = [
        r for r in fake_openai.chat_requests() if "[parley:summary]" in str(r.messages[0])
    ]
    assert 5 < len(summary_calls) < 150, "summaries are batched, not one per turn"
    assert all(not r.stream for r in summary_calls)
    prompt_sizes = [len(r.messages) for r in fake_openai.chat_requests() if r.stream]
    assert max(prompt_sizes) < 20, "the window stays within the budget"


async def test_max_turns_closes_politely_and_starts_afresh(make_engine: EngineFactory) -> None:
    engine = make_engine(agents_file(chef(max_turns=2, closing_message="That's all for now!")))
    first = await engine.reply(said("one")).result()
    await engine.reply(said("two")).result()
    closing = await engine.reply(said("three")).result()
    assert closing.closed
    assert closing.text == "That's all for now!"
    assert closing.conversation.id == first.conversation.id
    fresh = await engine.reply(said("four")).result()
    assert fresh.conversation.id != first.conversation.id
    assert not fresh.closed
    old = await engine.store.get_conversation(conversation_id=first.conversation.id)
    assert old is not None
    assert old.closed_at is not None


async def test_check_goal_stores_a_record(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine()
    result = await engine.reply(said("I have chosen the paella")).result()
    check = await engine.check_goal(result.conversation.id)
    assert check.reached is True
    assert check.error is None
    assert check.covered_seq == 2
    request = fake_openai.chat_requests()[-1]
    assert request.response_format is not None
    assert request.response_format["json_schema"]["schema"] == GOAL_SCHEMA
    assert "[parley:goal]" in request.messages[0]["content"]
    assert "The person chose a recipe." in request.messages[0]["content"]
    assert "Ada: I have chosen the paella" in request.messages[1]["content"]
    conversation = await engine.store.get_conversation(conversation_id=result.conversation.id)
    assert conversation is not None
    assert conversation.goal is not None
    assert conversation.goal.reached is True
    assert await engine.store.list_goal_checks(conversation_id=result.conversation.id) == [check]


async def test_check_goal_failure_is_recorded(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine()
    result = await engine.reply(said("hello")).result()
    fake_openai.script(Reply(status=500))
    check = await engine.check_goal(result.conversation.id)
    assert check.error == "the model failed (HTTP 500)"
    conversation = await engine.store.get_conversation(conversation_id=result.conversation.id)
    assert conversation is not None
    assert conversation.goal is None
    assert conversation.goal_pending


async def test_check_goal_needs_a_goal(make_engine: EngineFactory) -> None:
    engine = make_engine(agents_file(plain()))
    result = await engine.reply(said("hello")).result()
    with pytest.raises(NoGoal):
        await engine.check_goal(result.conversation.id)


async def test_open_conversation_stores_the_opener_once(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine()
    conversation, created = await engine.open_conversation(
        key=KEY, data={"order": 7}, source="shop", tags=["web"]
    )
    again, created_again = await engine.open_conversation(key=KEY)
    assert (created, created_again) == (True, False)
    assert again.id == conversation.id
    assert conversation.data == {"order": 7}
    assert conversation.tags == ("web",)
    stored = await engine.store.list_messages(conversation_id=conversation.id)
    assert [(m.role, m.text) for m in stored] == [
        ("assistant", engine.agents.default.first_message)
    ]

    await engine.reply(said("hi")).result()
    messages = fake_openai.chat_requests()[-1].messages
    assert [m["content"] for m in messages].count(engine.agents.default.first_message) == 1


async def test_reset_starts_a_new_conversation(make_engine: EngineFactory) -> None:
    engine = make_engine()
    before = await engine.reply(said("my name is Bob")).result()
    assert await engine.reset(KEY)
    assert not await engine.reset(KEY)
    after = await engine.reply(said("What's my name?")).result()
    assert after.conversation.id != before.conversation.id
    assert after.text == "I don't know your name yet."


async def test_bound_agent_answers_a_new_conversation(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine(agents_file(chef(), plain(), default="chef"))
    incoming = IncomingMessage(key=KEY, text="hello", author_name="Ada", agent_id="plain")
    result = await engine.reply(incoming).result()
    assert result.conversation.agent_id == "plain"
    assert fake_openai.chat_requests()[-1].response_format is None


async def test_a_store_failure_reaches_the_caller(
    make_engine: EngineFactory, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    store = SqliteStore(path=tmp_path / "never-opened.sqlite3")
    engine = make_engine(store=store)
    turn = engine.reply(said("hello"))
    with pytest.raises(StoreUnavailable, match="is not open"):
        await turn.result()
    assert fake_openai.chat_requests() == [], "no model call without a stored message"
    assert engine.locked_conversations == 0
    assert engine.admission.in_flight == 0, "a failed turn gave its place back"
    assert engine.admission.entries == 0


async def test_channel_binding_chooses_the_agent_of_new_conversations(
    make_engine: EngineFactory,
) -> None:
    engine = make_engine(
        agents_file(chef(), plain(bindings={"slack": ["C0PLAIN"]}), default="chef")
    )
    where = {"platform": "slack", "workspace": "T1"}
    assert (await engine.agent_for_channel(**where, channel="C0PLAIN")).id == "plain"  # type: ignore[arg-type]
    assert (await engine.agent_for_channel(**where, channel="C0OTHER")).id == "chef"  # type: ignore[arg-type]
    await engine.bind_channel(**where, channel="C0OTHER", agent_id="plain")  # type: ignore[arg-type]
    assert (await engine.agent_for_channel(**where, channel="C0OTHER")).id == "plain"  # type: ignore[arg-type]
    with pytest.raises(UnknownAgent, match="no agent 'waiter' \\(agents: chef, plain\\)"):
        await engine.bind_channel(**where, channel="C0OTHER", agent_id="waiter")  # type: ignore[arg-type]


async def test_forget_waits_for_a_turn_in_progress(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine()
    first = await engine.reply(said("my name is Bob")).result()
    started = asyncio.Event()

    def slow(request: RecordedRequest) -> Reply:
        started.set()
        return Reply(
            content=json.dumps({"answer": "ok", "recipes": [], "ingredients": [], "summary": ""}),
            chunk_delay=0.01,
        )

    fake_openai.handle(slow)
    turn = engine.reply(said("one more thing"))
    await asyncio.wait_for(started.wait(), timeout=10)
    assert await engine.forget(first.conversation)
    result = await turn.result()
    assert result.text == "ok", "the turn in progress finished before the deletion"
    assert await engine.store.get_conversation(conversation_id=first.conversation.id) is None
    assert await engine.store.list_messages(conversation_id=first.conversation.id) == []
    assert not await engine.forget(first.conversation)


# turn caps ---------------------------------------------------------------------------------


async def test_a_conversation_takes_at_most_its_cap_of_turns_on_every_platform(
    make_engine: EngineFactory, held: HeldModel
) -> None:
    engine = make_engine()
    turns = [engine.reply(said(f"m{n}")) for n in range(8)]
    await held.until(1)
    assert engine.admission.of_conversation(KEY.canonical) == 8, "running and waiting count"

    with pytest.raises(ConversationBusy, match="this conversation already has 8 messages"):
        engine.reply(said("one too many"))
    other = engine.reply(said("elsewhere", key=OTHER))
    await held.until(2)

    held.release()
    results = await asyncio.gather(*(turn.result() for turn in [*turns, other]))
    assert [r.user_message.text for r in results[:8]] == [f"m{n}" for n in range(8)]
    assert engine.admission.entries == 0, "places are given back as results are handed over"
    again = await engine.reply(said("one more")).result()
    assert again.user_message.seq == 2 * 8 + 1


async def test_a_key_takes_at_most_its_cap_and_other_keys_are_served(
    make_engine: EngineFactory, held: HeldModel
) -> None:
    engine = make_engine()
    turns = [engine.reply(in_api("hi", f"c{n}", "k1")) for n in range(4)]
    await held.until(4)
    with pytest.raises(KeyBusy, match="this key already has 4 turns running or waiting"):
        engine.reply(in_api("hi", "c9", "k1"))
    turns.append(engine.reply(in_api("hi", "c9", "k2")))
    await held.until(5)

    held.release()
    await turns[0].result()
    assert engine.admission.of_quota("k1") < 4
    turns.append(engine.reply(in_api("hi", "c9", "k1")))
    for turn in turns:
        assert not (await turn.result()).failed
    assert engine.admission.entries == 0


async def test_chat_platform_turns_get_in_when_api_turns_hold_their_share(
    make_engine: EngineFactory, held: HeldModel
) -> None:
    engine = make_engine(agents_file(plain()), max_pending_turns=4, api_turn_share=0.5)
    assert engine.admission.api_total == 2
    api_turns = [engine.reply(in_api("hi", f"c{n}", f"k{n}")) for n in range(2)]
    await held.until(2)
    with pytest.raises(ApiShareFull):
        engine.reply(in_api("hi", "c3", "k3"))
    with pytest.raises(ApiShareFull):  # an api conversation's turn is the API's, key or not
        engine.reply(in_api("hi", "c4"))

    slack_turns = [engine.reply(said("hello", key=key)) for key in (KEY, OTHER)]
    await held.until(4)
    assert engine.admission.in_flight == 4
    third = PlatformKey(platform="discord", workspace="G1", channel="300")
    with pytest.raises(EngineBusy, match="too many messages are waiting") as full:
        engine.reply(said("hello", key=third))
    assert type(full.value) is EngineBusy, "the engine is full, for everyone"

    held.release()
    for turn in [*api_turns, *slack_turns]:
        assert not (await turn.result()).failed
    assert (engine.admission.in_flight, engine.admission.api_in_flight) == (0, 0)


async def test_a_cancelled_turn_gives_its_place_back(
    make_engine: EngineFactory, held: HeldModel
) -> None:
    engine = make_engine()
    turn = engine.reply(in_api("hi", "c1", "k1"))
    waiting = engine.reply(in_api("again", "c1", "k1"))
    await held.until(1)
    assert engine.admission.of_quota("k1") == 2

    await engine.aclose(grace=0)
    for cancelled in (turn, waiting):
        with pytest.raises(asyncio.CancelledError):
            await cancelled.result()
    assert (engine.admission.in_flight, engine.admission.entries) == (0, 0)


async def test_a_resumed_message_already_stored_is_not_stored_again(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    """A process died after storing the user's message: the journal's retry answers it
    without a second copy in the history."""
    engine = make_engine(agents_file(plain()))
    conversation, _ = await engine.open_conversation(key=KEY, agent_id="plain")
    await engine.store.append_message(
        conversation_id=conversation.id,
        message=NewMessage(role="user", text="Ada: hello", platform_message_id="1700.1"),
    )
    resumed = IncomingMessage(
        key=KEY, text="hello", author_name="Ada", platform_message_id="1700.1", resume=True
    )
    result = await engine.reply(resumed).result()
    messages = await engine.store.list_messages(conversation_id=conversation.id)
    assert [(m.role, m.platform_message_id) for m in messages[-2:]] == [
        ("user", "1700.1"),
        ("assistant", None),
    ]
    assert sum(1 for m in messages if m.platform_message_id == "1700.1") == 1
    assert result.user_message.platform_message_id == "1700.1"
    assert len(fake_openai.chat_requests()) == 1


async def test_a_resumed_message_already_answered_is_not_answered_again(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine(agents_file(plain()))
    message = replace(said("hello"), platform_message_id="1700.2")
    first = await engine.reply(message).result()
    asked = len(fake_openai.chat_requests())
    again = await engine.reply(replace(message, resume=True)).result()
    assert len(fake_openai.chat_requests()) == asked, "the model is not asked again"
    assert (again.reply.id, again.text) == (first.reply.id, first.text)
    history = await engine.store.list_messages(conversation_id=first.conversation.id)
    assert history[-1].id == first.reply.id, "nothing stored after the first answer"


async def test_without_resume_the_same_platform_id_is_a_new_turn(
    make_engine: EngineFactory,
) -> None:
    """Only the journal's retries look back; an ordinary turn never skips its message."""
    engine = make_engine(agents_file(plain()))
    message = replace(said("hello"), platform_message_id="1700.3")
    first = await engine.reply(message).result()
    second = await engine.reply(message).result()
    assert second.user_message.seq == first.reply.seq + 1


async def test_a_cancelled_turn_stores_no_reply_and_frees_its_place(
    make_engine: EngineFactory, held: HeldModel
) -> None:
    engine = make_engine(agents_file(plain()), max_pending_turns=1)
    turn = engine.reply(said("a long story"))
    await held.until(1)

    assert turn.cancel()
    with pytest.raises(asyncio.CancelledError):
        await turn.result()
    assert turn.done
    assert not turn.cancel(), "already ended"
    conversation = await engine.store.find_conversation(key=KEY)
    assert conversation is not None
    messages = await engine.store.list_messages(conversation_id=conversation.id)
    assert [m.role for m in messages] == ["user"]

    held.release()
    result = await engine.reply(said("a short one")).result()  # the one place is free again
    assert result.text == "You said: Ada: a short one"
