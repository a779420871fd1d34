"""The composed store: lifecycle, persistence, two stores on one data, export; and each record
type's protocol, which every store implements."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol

import pytest

from bot.errors import NotFound
from memory.base import (
    AgentRecords,
    ApiKeyRecords,
    BindingRecords,
    ConversationRecords,
    ConversationStore,
    Coordination,
    FeedbackRecords,
    GoalCheckRecords,
    JournalRecords,
    KnowledgeRecords,
    MemoryRecords,
    MessageRecords,
    StoreLifecycle,
    UsageRecords,
)
from memory.export import export_conversation
from tests.memory.helpers import (
    DISCORD,
    SLACK_A,
    reply,
    user,
)
from tests.support.stores import StoreFactory


async def test_ping_and_description(store: ConversationStore) -> None:
    assert await store.ping() is True
    assert store.description


async def test_open_is_idempotent(store: ConversationStore) -> None:
    await store.open()
    conversation, _ = await store.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    await store.open()
    assert await store.get_conversation(conversation_id=conversation.id) == conversation


async def test_persists_across_close_and_reopen(store_factory: StoreFactory) -> None:
    first = await store_factory()
    conversation, _ = await first.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    await first.append_message(conversation_id=conversation.id, message=user("remember me"))
    await first.set_summary(conversation_id=conversation.id, summary="Bob.", summary_seq=1)
    assert await first.mark_event_processed(event_id="Ev1")
    await first.close()

    second = await store_factory()
    again, created = await second.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    assert created is False
    assert again.id == conversation.id
    assert again.summary == "Bob."
    assert [m.text for m in await second.list_messages(conversation_id=again.id)] == ["remember me"]
    assert await second.mark_event_processed(event_id="Ev1") is False


async def test_two_stores_on_the_same_data_share_one_conversation(
    store_factory: StoreFactory,
) -> None:
    """Two processes on one database get one conversation per key."""
    one, two = await store_factory(), await store_factory()
    results = await asyncio.gather(
        *(
            (one if n % 2 else two).get_or_create_conversation(key=DISCORD, agent_id="chef")
            for n in range(20)
        )
    )
    assert len({conversation.id for conversation, _ in results}) == 1
    assert sum(created for _, created in results) == 1


async def test_export_json_and_markdown(store: ConversationStore) -> None:
    conversation, _ = await store.get_or_create_conversation(
        key=SLACK_A, agent_id="chef", title="Dinner <ideas>"
    )
    await store.append_message(conversation_id=conversation.id, message=user("Hi, I am Bob 🍝"))
    await store.append_message(
        conversation_id=conversation.id,
        message=reply("Try *paella*.", data={"answer": "Try *paella*.", "recipes": ["Paella"]}),
    )

    exported = json.loads(
        await export_conversation(store, conversation_id=conversation.id, fmt="json")
    )
    assert exported["conversation"]["id"] == conversation.id
    assert exported["conversation"]["key"]["workspace"] == "T_A"
    assert [m["text"] for m in exported["messages"]] == ["Hi, I am Bob 🍝", "Try *paella*."]
    assert exported["messages"][1]["data"] == {"answer": "Try *paella*.", "recipes": ["Paella"]}

    markdown = await export_conversation(store, conversation_id=conversation.id, fmt="md")
    assert markdown.startswith("# Dinner <ideas>")
    assert "Hi, I am Bob 🍝" in markdown
    assert "Try *paella*." in markdown
    assert '"recipes": [' in markdown
    assert markdown.index("Hi, I am Bob") < markdown.index("Try *paella*.")

    with pytest.raises(NotFound):
        await export_conversation(store, conversation_id="c" * 32, fmt="md")


RECORD_PROTOCOLS: dict[type[Any], tuple[str, ...]] = {
    StoreLifecycle: ("open", "close", "ping"),
    ConversationRecords: ("get_or_create_conversation", "list_conversations"),
    MessageRecords: ("append_message", "list_messages"),
    GoalCheckRecords: ("add_goal_check", "conversations_due_for_goal_check"),
    BindingRecords: ("bind_channel", "channel_agent"),
    FeedbackRecords: ("rate_message", "list_feedback"),
    AgentRecords: ("create_agent", "list_agents"),
    ApiKeyRecords: ("add_api_key", "find_api_key"),
    Coordination: ("mark_event_processed", "claim", "release_claim", "get_value", "set_value"),
    JournalRecords: ("journal_add", "journal_advance"),
    MemoryRecords: ("add_memories", "recall_memories", "forget_memories"),
    KnowledgeRecords: ("put_document", "search_knowledge", "delete_document"),
    UsageRecords: ("add_usage", "usage_totals"),
}


def test_the_store_protocol_is_the_record_protocols() -> None:
    """``ConversationStore`` is exactly the record types' protocols put together."""
    assert set(ConversationStore.__bases__) - {Protocol} == set(RECORD_PROTOCOLS)
    for protocol, names in RECORD_PROTOCOLS.items():
        assert set(names) <= set(dir(protocol))


async def test_a_store_is_each_record_protocol(store: ConversationStore) -> None:
    for protocol in RECORD_PROTOCOLS:
        assert isinstance(store, protocol), protocol.__name__
    assert isinstance(store, ConversationStore)
