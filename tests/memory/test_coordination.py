"""Coordination records (processed platform events, claims and shared values), run unchanged
store."""

from __future__ import annotations

import asyncio

from memory.base import (
    ConversationStore,
)
from tests.support.clock import FakeClock
from tests.support.stores import StoreFactory


async def test_events_are_processed_once_until_they_expire(
    store: ConversationStore, clock: FakeClock
) -> None:
    assert await store.mark_event_processed(event_id="Ev123") is True
    assert await store.mark_event_processed(event_id="Ev123") is False
    assert await store.mark_event_processed(event_id="Ev124") is True
    clock.advance(86_401)
    assert await store.mark_event_processed(event_id="Ev123") is True
    assert await store.mark_event_processed(event_id="Ev123") is False


async def test_concurrent_duplicate_events_pass_once(store: ConversationStore) -> None:
    results = await asyncio.gather(
        *(store.mark_event_processed(event_id="Ev-dup") for _ in range(20))
    )
    assert results.count(True) == 1


async def test_claims_are_exclusive_until_they_expire(
    store: ConversationStore, clock: FakeClock
) -> None:
    assert await store.claim(key="goal:chef:2026-01-01T00", owner="p1", ttl_seconds=60)
    assert not await store.claim(key="goal:chef:2026-01-01T00", owner="p2", ttl_seconds=60)
    assert await store.claim(key="goal:chef:2026-01-01T00", owner="p1", ttl_seconds=60)
    assert await store.claim(key="goal:chef:2026-01-01T01", owner="p2", ttl_seconds=60)
    clock.advance(61)
    assert await store.claim(key="goal:chef:2026-01-01T00", owner="p2", ttl_seconds=60)
    assert not await store.claim(key="goal:chef:2026-01-01T00", owner="p1", ttl_seconds=60)


async def test_release_claim(store: ConversationStore) -> None:
    assert await store.claim(key="k", owner="p1", ttl_seconds=300)
    assert await store.release_claim(key="k", owner="p2") is False
    assert not await store.claim(key="k", owner="p2", ttl_seconds=300)
    assert await store.release_claim(key="k", owner="p1") is True
    assert await store.claim(key="k", owner="p2", ttl_seconds=300)


async def test_concurrent_claims_have_one_winner(store_factory: StoreFactory) -> None:
    one, two = await store_factory(), await store_factory()
    results = await asyncio.gather(
        *(
            (one if n % 2 else two).claim(key="slot", owner=f"p{n}", ttl_seconds=60)
            for n in range(20)
        )
    )
    assert results.count(True) == 1


async def test_values_are_read_back_until_replaced(store: ConversationStore) -> None:
    assert await store.get_value(name="discord.commands.1") is None
    await store.set_value(name="discord.commands.1", value="abc")
    await store.set_value(name="discord.commands.2", value="other")
    assert await store.get_value(name="discord.commands.1") == "abc"
    await store.set_value(name="discord.commands.1", value="def")
    assert await store.get_value(name="discord.commands.1") == "def"
    assert await store.get_value(name="discord.commands.2") == "other"
    assert await store.get_value(name="discord.commands") is None


async def test_values_are_shared_by_processes(store_factory: StoreFactory) -> None:
    one, two = await store_factory(), await store_factory()
    await one.set_value(name="shared", value="from one")
    assert await two.get_value(name="shared") == "from one"
    await asyncio.gather(*(two.set_value(name="raced", value=f"v{n}") for n in range(10)))
    assert await one.get_value(name="raced") in {f"v{n}" for n in range(10)}
