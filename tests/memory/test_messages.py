"""The message records' contract, run unchanged against each store."""

from __future__ import annotations

import asyncio

import pytest

from bot.errors import NotFound
from memory.base import (
    ConversationStore,
    NewMessage,
    PlatformKey,
    is_valid_id,
)
from tests.memory.helpers import (
    DISCORD,
    SLACK_A,
    reply,
    user,
)
from tests.support.clock import FakeClock


async def test_append_assigns_seq_and_updates_conversation(
    store: ConversationStore, clock: FakeClock
) -> None:
    conversation, _ = await store.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    clock.advance(3)
    first = await store.append_message(
        conversation_id=conversation.id,
        message=user("Hi, I am Bob", platform_message_id="1700000000.000200", token_count=7),
    )
    clock.advance(1)
    second = await store.append_message(
        conversation_id=conversation.id,
        message=reply(
            "Hello Bob",
            data={"answer": "Hello Bob", "recipes": [], "summary": None, "score": 1.5},
            token_count=5,
        ),
    )
    assert (first.seq, second.seq) == (1, 2)
    assert is_valid_id(first.id)
    assert first.id != second.id
    assert first.conversation_id == conversation.id
    assert first.role == "user"
    assert (first.author_id, first.author_name) == ("U1", "Ada")
    assert first.platform_message_id == "1700000000.000200"
    assert first.token_count == 7
    assert first.data is None
    assert second.data == {"answer": "Hello Bob", "recipes": [], "summary": None, "score": 1.5}
    assert second.created_at == clock.now

    stored = await store.get_conversation(conversation_id=conversation.id)
    assert stored is not None
    assert stored.message_count == 2
    assert stored.last_message_at == clock.now
    assert stored.updated_at == clock.now
    assert stored.goal_pending is True
    assert await store.list_messages(conversation_id=conversation.id) == [first, second]


async def test_append_to_unknown_conversation_raises(store: ConversationStore) -> None:
    with pytest.raises(NotFound):
        await store.append_message(conversation_id="e" * 32, message=user("lost?"))


async def test_append_keeps_errors(store: ConversationStore) -> None:
    conversation, _ = await store.get_or_create_conversation(key=DISCORD, agent_id="chef")
    failed = await store.append_message(
        conversation_id=conversation.id,
        message=reply("Sorry, I could not answer.", error="model timed out"),
    )
    assert failed.error == "model timed out"
    assert (await store.list_messages(conversation_id=conversation.id))[0].error == (
        "model timed out"
    )


async def test_unicode_and_large_messages_round_trip(store: ConversationStore) -> None:
    conversation, _ = await store.get_or_create_conversation(key=DISCORD, agent_id="chef")
    texts = [
        "Café crème, 日本語, emoji 🍝🇪🇸, RTL עברית, nul-free \u200b zero width",
        "x" * 100_000 + "é",
        "line one\nline two\r\n\ttabbed",
    ]
    for text in texts:
        await store.append_message(
            conversation_id=conversation.id,
            message=user(text, author_name="Zoë 🧑‍🍳"),
        )
    stored = await store.list_messages(conversation_id=conversation.id)
    assert [message.text for message in stored] == texts
    assert stored[0].author_name == "Zoë 🧑‍🍳"


async def test_list_messages_windows(store: ConversationStore) -> None:
    conversation, _ = await store.get_or_create_conversation(key=DISCORD, agent_id="chef")
    for number in range(1, 11):
        await store.append_message(conversation_id=conversation.id, message=user(f"m{number}"))

    async def seqs(**window: object) -> list[int]:
        messages = await store.list_messages(conversation_id=conversation.id, **window)  # type: ignore[arg-type]
        return [message.seq for message in messages]

    assert await seqs() == list(range(1, 11))
    assert await seqs(limit=3) == [1, 2, 3]
    assert await seqs(limit=3, newest_first=True) == [10, 9, 8]
    assert await seqs(after_seq=7) == [8, 9, 10]
    assert await seqs(before_seq=4) == [1, 2, 3]
    assert await seqs(after_seq=2, before_seq=6) == [3, 4, 5]
    assert await seqs(before_seq=6, limit=2, newest_first=True) == [5, 4]
    assert await seqs(after_seq=10) == []


async def test_fifty_writers_in_fifty_conversations_lose_nothing(
    store: ConversationStore,
) -> None:
    keys = [PlatformKey(platform="discord", workspace="g", channel=str(n)) for n in range(50)]

    async def writer(key: PlatformKey) -> str:
        conversation, _ = await store.get_or_create_conversation(key=key, agent_id="chef")
        for number in range(10):
            await store.append_message(
                conversation_id=conversation.id, message=user(f"{key.channel}:{number}")
            )
        return conversation.id

    ids = await asyncio.gather(*(writer(key) for key in keys))
    assert len(set(ids)) == 50
    for key, conversation_id in zip(keys, ids, strict=True):
        messages = await store.list_messages(conversation_id=conversation_id)
        assert [m.text for m in messages] == [f"{key.channel}:{n}" for n in range(10)]
        assert [m.seq for m in messages] == list(range(1, 11))
        stored = await store.get_conversation(conversation_id=conversation_id)
        assert stored is not None
        assert stored.message_count == 10


async def test_concurrent_appends_to_one_conversation_get_distinct_seqs(
    store: ConversationStore,
) -> None:
    conversation, _ = await store.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    await asyncio.gather(
        *(
            store.append_message(conversation_id=conversation.id, message=user(str(n)))
            for n in range(50)
        )
    )
    messages = await store.list_messages(conversation_id=conversation.id)
    assert [m.seq for m in messages] == list(range(1, 51))
    assert sorted(int(m.text) for m in messages) == list(range(50))


async def test_a_reply_keeps_the_knowledge_it_was_given(store: ConversationStore) -> None:
    conversation, _ = await store.get_or_create_conversation(key=SOURCES_KEY, agent_id="chef")
    sources = ("a" * 32, "b" * 32)
    kept = await store.append_message(
        conversation_id=conversation.id,
        message=NewMessage(role="assistant", text="Boil it.", sources=sources),
    )
    plain = await store.append_message(
        conversation_id=conversation.id, message=NewMessage(role="user", text="thanks")
    )
    assert (kept.sources, plain.sources) == (sources, ())
    stored = await store.list_messages(conversation_id=conversation.id)
    assert [message.sources for message in stored] == [sources, ()]


SOURCES_KEY = PlatformKey(platform="slack", workspace="T1", channel="C1", thread="9.0")
