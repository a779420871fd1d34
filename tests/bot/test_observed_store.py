"""The observed store on both stores: every operation timed by name, failures counted, the
store's own behaviour and attributes untouched."""

from __future__ import annotations

import pytest

from bot.errors import Conflict
from bot.observed_store import observed_store
from bot.telemetry import Telemetry
from memory.base import ConversationStore, NewMessage, PlatformKey
from tests.support.metrics import Scrape

KEY = PlatformKey(platform="slack", workspace="T1", channel="C1", thread="1.0")
SECONDS = "parley_store_operation_duration_seconds_count"
ERRORS = "parley_store_operation_errors_total"


async def test_each_operation_is_timed_by_name(store: ConversationStore) -> None:
    telemetry = Telemetry()
    observed = observed_store(store, telemetry)

    conversation, created = await observed.get_or_create_conversation(key=KEY, agent_id="chef")
    await observed.append_message(
        conversation_id=conversation.id, message=NewMessage(role="user", text="hi")
    )
    await observed.append_message(
        conversation_id=conversation.id, message=NewMessage(role="assistant", text="hello")
    )
    messages = await observed.list_messages(conversation_id=conversation.id)

    assert created
    assert [m.text for m in messages] == ["hi", "hello"]
    assert observed.description == store.description
    found = Scrape.of(telemetry.metrics)
    assert found.value(SECONDS, operation="get_or_create_conversation") == 1
    assert found.value(SECONDS, operation="append_message") == 2
    assert found.value(SECONDS, operation="list_messages") == 1
    assert found.total(ERRORS) == 0
    assert observed_store(observed, telemetry) is observed, "never wrapped twice"


async def test_a_failing_operation_is_counted_and_still_raises(store: ConversationStore) -> None:
    telemetry = Telemetry()
    observed = observed_store(store, telemetry)
    await observed.create_agent(agent_id="tutor", definition={"id": "tutor"})

    with pytest.raises(Conflict):
        await observed.create_agent(agent_id="tutor", definition={"id": "tutor"})

    found = Scrape.of(telemetry.metrics)
    assert found.value(SECONDS, operation="create_agent") == 2
    assert found.value(ERRORS, operation="create_agent") == 1
