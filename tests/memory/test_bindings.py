"""The channel binding records' contract, run unchanged against each store."""

from __future__ import annotations

from memory.base import (
    ChannelBinding,
    ConversationStore,
)
from tests.support.clock import FakeClock
from tests.support.stores import StoreFactory


async def test_channel_bindings(store_factory: StoreFactory, clock: FakeClock) -> None:
    store = await store_factory()
    where = {"platform": "slack", "workspace": "T_A", "channel": "C1"}
    assert await store.channel_agent(**where) is None  # type: ignore[arg-type]
    await store.bind_channel(**where, agent_id="chef")  # type: ignore[arg-type]
    assert await store.channel_agent(**where) == "chef"  # type: ignore[arg-type]
    clock.advance(1)
    await store.bind_channel(**where, agent_id="tutor")  # type: ignore[arg-type]
    assert await store.channel_agent(**where) == "tutor"  # type: ignore[arg-type]
    assert await store.channel_agent(platform="slack", workspace="T_B", channel="C1") is None
    assert await store.channel_agent(platform="discord", workspace="T_A", channel="C1") is None
    other_process = await store_factory()
    assert await other_process.channel_agent(**where) == "tutor"  # type: ignore[arg-type]


async def test_list_channel_bindings(store_factory: StoreFactory, clock: FakeClock) -> None:
    store = await store_factory()
    assert await store.list_channel_bindings() == []
    await store.bind_channel(platform="slack", workspace="T_B", channel="C9", agent_id="chef")
    await store.bind_channel(platform="slack", workspace="T_A", channel="C1", agent_id="chef")
    await store.bind_channel(platform="discord", workspace="9001", channel="42", agent_id="tutor")
    await store.bind_channel(platform="slack", workspace="T_A", channel="C2", agent_id="chef")
    clock.advance(1)
    await store.bind_channel(platform="slack", workspace="T_A", channel="C2", agent_id="tutor")

    every = [
        ChannelBinding(platform="discord", workspace="9001", channel="42", agent_id="tutor"),
        ChannelBinding(platform="slack", workspace="T_A", channel="C1", agent_id="chef"),
        ChannelBinding(platform="slack", workspace="T_A", channel="C2", agent_id="tutor"),
        ChannelBinding(platform="slack", workspace="T_B", channel="C9", agent_id="chef"),
    ]
    other_process = await store_factory()
    assert await other_process.list_channel_bindings() == every
    assert await store.list_channel_bindings(agent_id="chef") == [every[1], every[3]]
    assert await store.list_channel_bindings(agent_id="tutor") == [every[0], every[2]]
    assert await store.list_channel_bindings(agent_id="tutor", limit=1) == [every[0]]
    assert await store.list_channel_bindings(limit=2) == every[:2]
    assert await store.list_channel_bindings(agent_id="sommelier") == []
    assert await store.list_channel_bindings(agent_id='{"$gt": ""}') == []


async def test_channel_bindings_with_empty_workspace(store: ConversationStore) -> None:
    await store.bind_channel(platform="console", workspace="", channel="demo", agent_id="chef")
    assert await store.list_channel_bindings() == [
        ChannelBinding(platform="console", workspace="", channel="demo", agent_id="chef")
    ]
