"""The stored agent records' contract, run unchanged against each store."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.errors import Conflict, StoreError
from memory.base import (
    ConversationStore,
)
from tests.memory.helpers import (
    CHEF,
    HOSTILE,
    new_key,
)
from tests.support.clock import FakeClock
from tests.support.stores import StoreFactory


async def test_create_get_replace_delete_agent(
    store_factory: StoreFactory, clock: FakeClock
) -> None:
    store = await store_factory()
    assert await store.get_agent(agent_id="chef") is None
    created = await store.create_agent(agent_id="chef", definition=CHEF)
    assert created.id == "chef"
    assert created.definition == CHEF
    assert created.created_at == clock.now
    assert created.updated_at == clock.now
    assert await store.get_agent(agent_id="chef") == created

    clock.advance(5)
    with pytest.raises(Conflict):
        await store.create_agent(agent_id="chef", definition={"name": "impostor"})
    assert await store.get_agent(agent_id="chef") == created

    clock.advance(5)
    replaced = await store.replace_agent(agent_id="chef", definition={"name": "Chef v2"})
    assert replaced is not None
    assert replaced.definition == {"name": "Chef v2"}
    assert replaced.created_at == created.created_at
    assert replaced.updated_at == clock.now
    assert replaced.updated_at != created.updated_at
    other_process = await store_factory()
    assert await other_process.get_agent(agent_id="chef") == replaced

    assert await store.replace_agent(agent_id="tutor", definition={"name": "x"}) is None
    assert await store.get_agent(agent_id="tutor") is None
    assert await store.delete_agent(agent_id="chef") is True
    assert await store.delete_agent(agent_id="chef") is False
    assert await other_process.get_agent(agent_id="chef") is None
    assert await store.delete_agent(agent_id="never-was") is False
    again = await store.create_agent(agent_id="chef", definition={"name": "Chef v3"})
    assert again.definition == {"name": "Chef v3"}


async def test_agent_definitions_round_trip(store_factory: StoreFactory) -> None:
    store = await store_factory()
    await store.create_agent(agent_id="chef", definition=CHEF)
    await store.create_agent(agent_id="ünï", definition={"nested": [[{"deep": ["∞", -0.5]}]]})
    reopened = await store_factory()
    chef = await reopened.get_agent(agent_id="chef")
    assert chef is not None
    assert chef.definition == CHEF
    assert chef.definition["big"] == 2**70
    unicode_agent = await reopened.get_agent(agent_id="ünï")
    assert unicode_agent is not None
    assert unicode_agent.definition == {"nested": [[{"deep": ["∞", -0.5]}]]}


async def test_list_agents_by_id(store: ConversationStore, clock: FakeClock) -> None:
    assert await store.list_agents() == []
    for agent_id in ("tutor", "chef", "sommelier", "baker"):
        clock.advance(1)
        await store.create_agent(agent_id=agent_id, definition={"name": agent_id})
    listed = await store.list_agents()
    assert [agent.id for agent in listed] == ["baker", "chef", "sommelier", "tutor"]
    assert [agent.definition["name"] for agent in listed] == [agent.id for agent in listed]
    assert [agent.id for agent in await store.list_agents(limit=2)] == ["baker", "chef"]
    assert await store.list_agents(limit=0) == []


async def test_concurrent_creates_of_one_agent_have_one_winner(
    store_factory: StoreFactory,
) -> None:
    one, two = await store_factory(), await store_factory()
    results = await asyncio.gather(
        *(
            (one if n % 2 else two).create_agent(agent_id="chef", definition={"n": n})
            for n in range(10)
        ),
        return_exceptions=True,
    )
    winners = [result for result in results if not isinstance(result, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(result, Conflict) for result in results if result not in winners)
    assert await one.get_agent(agent_id="chef") == winners[0]


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_agent_ids_are_literal(store: ConversationStore, hostile: str) -> None:
    await store.create_agent(agent_id="chef", definition={"name": "Chef"})
    assert await store.get_agent(agent_id=hostile) is None
    assert await store.replace_agent(agent_id=hostile, definition={"x": 1}) is None
    assert await store.delete_agent(agent_id=hostile) is False
    chef = await store.get_agent(agent_id="chef")
    assert chef is not None
    assert chef.definition == {"name": "Chef"}


async def test_non_string_values_are_refused(store: ConversationStore) -> None:
    """A query document in place of a string must never become a MongoDB operator."""
    await store.create_agent(agent_id="chef", definition={"name": "Chef"})
    await store.add_api_key(new_key("ci"))
    operator: Any = {"$gt": ""}
    with pytest.raises((TypeError, StoreError)):
        await store.delete_agent(agent_id=operator)
    with pytest.raises((TypeError, StoreError)):
        await store.get_agent(agent_id=operator)
    with pytest.raises((TypeError, StoreError)):
        await store.find_api_key(key_hash=operator)
    assert [agent.id for agent in await store.list_agents()] == ["chef"]
