"""API turns go through the turn journal: recorded before they are answered, answered in
arrival order, answered by another process when that one holds the conversation, and answered
after a process stopped with the message in hand."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.http.turns import ApiTurns
from bot.journal import LEASE_PREFIX, TurnJournal
from memory.base import ConversationStore, PlatformKey
from tests.adapters.http.helpers import API, client_with, create_conversation, history, say
from tests.support.agents import agents_file, plain
from tests.support.api import Api, ApiFactory
from tests.support.engines import EngineFactory
from tests.support.fake_openai import FakeOpenAI, HeldModel
from tests.support.waiting import eventually


async def place_of(store: ConversationStore, conversation: dict[str, str]) -> PlatformKey:
    stored = await store.get_conversation(conversation_id=conversation["id"])
    assert stored is not None
    assert stored.key.platform == "api"
    return stored.key


async def entries_of(store: ConversationStore, conversation_id: str) -> list[str]:
    """States of the conversation's journal entries, oldest first (read by their messages)."""
    messages = await store.list_messages(conversation_id=conversation_id, limit=100)
    states = []
    for message in messages:
        if message.role == "user" and message.platform_message_id:
            entry = await store.journal_get(entry_id=message.platform_message_id)
            assert entry is not None, message.platform_message_id
            states.append(entry.state)
    return states


async def test_an_api_message_is_journalled_and_ends_shown(api: Api) -> None:
    async with client_with(api, await api.key("write")) as client:
        conversation = await create_conversation(client, agent_id="plain")
        turn = await say(client, conversation["id"], "hello there")
    entry_id = turn["user_message"]["platform_message_id"]
    assert entry_id.startswith("api:")

    async def shown() -> bool:  # written with the drain's next step, a moment after the reply
        done = await api.store.journal_get(entry_id=entry_id)
        return done is not None and done.state == "shown"

    await eventually(shown)
    entry = await api.store.journal_get(entry_id=entry_id)
    assert entry is not None
    assert entry.key == await place_of(api.store, conversation)
    assert (entry.conversation_id, entry.user_message_id, entry.reply_message_id) == (
        conversation["id"],
        turn["user_message"]["id"],
        turn["reply"]["id"],
    )
    assert entry.message["text"] == "hello there"
    assert await api.store.journal_backlog() == 0


async def test_concurrent_messages_are_answered_in_arrival_order(
    api: Api, fake_openai: FakeOpenAI
) -> None:
    held = HeldModel()
    fake_openai.handle(held)
    async with client_with(api, await api.key("write")) as client:
        conversation = await create_conversation(client, agent_id="plain")
        first = asyncio.create_task(say(client, conversation["id"], "first"))
        await held.until(1)
        later = []
        for n in range(3):  # each recorded before the next is sent: their arrival order
            later.append(asyncio.create_task(say(client, conversation["id"], f"m{n}")))

            async def recorded(count: int = n + 2) -> bool:
                return await api.store.journal_backlog() == count

            await eventually(recorded)
        held.release()
        turns = await asyncio.gather(first, *later)
        assert [t["user_message"]["text"] for t in turns] == ["first", "m0", "m1", "m2"]
        seqs = [t["user_message"]["seq"] for t in turns]
        assert seqs == sorted(seqs), "stored in the order they arrived"
        said = await history(client, conversation["id"])
        assert [text for role, text in said if role == "user"] == ["first", "m0", "m1", "m2"]


async def test_a_conversation_held_by_another_process_is_answered_there(
    api: Api, make_engine: EngineFactory
) -> None:
    """This process records the message but another holds the conversation's lease: the
    request waits for that one's answer and returns it, read from the store."""
    async with client_with(api, await api.key("write")) as client:
        conversation = await create_conversation(client, agent_id="plain")
        place = await place_of(api.store, conversation)
        lease = LEASE_PREFIX + place.canonical
        assert await api.store.claim(key=lease, owner="other", ttl_seconds=60)
        request = asyncio.create_task(say(client, conversation["id"], "who answers?"))

        async def recorded() -> bool:
            return await api.store.journal_backlog() == 1

        await eventually(recorded)
        await asyncio.sleep(0.3)
        assert not request.done(), "the lease holder answers, not this process"

        other_engine = make_engine(agents_file(plain()), store=api.store)
        other = TurnJournal(engine=other_engine, owner="other")
        other_turns = ApiTurns(engine=other_engine, journal=other)
        try:
            other.kick(place)
            turn = await asyncio.wait_for(request, timeout=10)
        finally:
            await other_turns.aclose()
            await other.stop(grace=1.0)
    assert turn["user_message"]["text"] == "who answers?"
    assert turn["text"] == turn["reply"]["text"]
    assert turn["text"], "the stored reply, read back"
    assert await entries_of(api.store, conversation["id"]) == ["shown"]


async def test_a_message_left_by_a_stopped_process_is_answered_by_the_next(
    api_factory: ApiFactory,
    fake_openai: FakeOpenAI,
    make_engine: EngineFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held = HeldModel()
    fake_openai.handle(held)
    first = await api_factory()
    journal = TurnJournal(engine=first.engine)
    turns = ApiTurns(engine=first.engine, journal=journal)
    key = await first.key("write")
    async with client_with(first, key) as client:
        conversation = await create_conversation(client, agent_id="plain")
    loaded = await first.store.get_conversation(conversation_id=conversation["id"])
    assert loaded is not None
    records = await first.services.keys.list()
    started = await turns.start(loaded, "still there?", author="", key=records[0])
    await held.until(1)
    await journal.stop(grace=0.05)  # the process goes with the turn in hand
    reads = 0
    get = first.store.journal_get

    async def counted(*, entry_id: str) -> Any:
        nonlocal reads
        reads += 1
        return await get(entry_id=entry_id)

    monkeypatch.setattr(first.store, "journal_get", counted)
    await asyncio.sleep(0.5)
    assert reads <= 3, "the request waits with its pause, it does not spin"
    await turns.aclose()
    assert not started.done
    assert await first.store.journal_backlog() == 1, "kept for the next process"

    held.release()
    next_engine = make_engine(agents_file(plain()), store=first.store)
    successor = TurnJournal(engine=next_engine)
    ApiTurns(engine=next_engine, journal=successor)
    try:
        await successor.start()

        async def answered() -> bool:
            return await first.store.journal_backlog() == 0

        await eventually(answered)
    finally:
        await successor.stop(grace=1.0)
    async with client_with(first, key) as client:
        said = await history(client, conversation["id"])
        response = await client.get(f"{API}/conversations/{conversation['id']}/messages")
    assert [text for role, text in said if role == "user"] == ["still there?"], "stored once"
    assert said[-1][0] == "assistant"
    assert [role for role, _ in said].count("assistant") == 2, "the greeting and one answer"
    assert response.status_code == 200
