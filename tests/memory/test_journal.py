"""The store contract for the turn journal (issue #14), run unchanged against each store.

Like ``test_store_contract.py`` it goes through ``store_factory``: calling the factory twice
gives two stores on one SQLite file or one MongoDB database, which is how two processes share
the journal. The SQLite query plans are checked at the end.
"""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import JsonValue, ValidationError

from memory.base import (
    MAX_JOURNAL_ERROR,
    MAX_JOURNAL_ID,
    MAX_JOURNAL_MESSAGE,
    ConversationStore,
    JournalEntry,
    JournalFinish,
    JournalState,
    NewJournalEntry,
    PlatformKey,
    journal_state_after,
)
from memory.sqlite import SqliteStore
from tests.support.clock import FakeClock
from tests.support.stores import StoreFactory

SLACK = PlatformKey(platform="slack", workspace="T1", channel="C1", thread="1700000000.000100")
DISCORD = PlatformKey(platform="discord", workspace="9001", channel="42")
API = PlatformKey(platform="api", channel="0123456789abcdef0123456789abcdef")

CONVERSATION_ID = "a" * 32
USER_MESSAGE_ID = "b" * 32
REPLY_MESSAGE_ID = "c" * 32

MESSAGE: dict[str, JsonValue] = {
    "text": "Bonjour, je m'appelle Zoë 🍝 — 日本語も",
    "author": {"id": "U1", "name": "Zoë"},
    "agent_id": "chef",
    "reply_to": {"channel": "C1", "thread_ts": "1700000000.000100"},
    "$schema": "not an operator",
    "a.b": [1, 2.5, None, True, "x", 2**70],
    "empty": {"list": [], "object": {}},
}

STATES: tuple[JournalState, ...] = get_args(JournalState)


def entry(
    entry_id: str,
    key: PlatformKey = SLACK,
    position: str = "0001",
    message: dict[str, JsonValue] | None = None,
) -> NewJournalEntry:
    return NewJournalEntry(
        id=entry_id, key=key, position=position, message=message or {"text": entry_id}
    )


async def move_to(store: ConversationStore, entry_id: str, state: JournalState) -> None:
    """Take an entry from received to ``state`` the forward way."""
    path: dict[JournalState, tuple[JournalState, ...]] = {
        "received": (),
        "answered": ("answered",),
        "shown": ("answered", "shown"),
        "failed": ("failed",),
    }
    for step in path[state]:
        updated = await store.journal_update(entry_id=entry_id, state=step)
        assert updated is not None
        assert updated.state == step


# adding ----------------------------------------------------------------------------------


async def test_add_creates_once(store: ConversationStore, clock: FakeClock) -> None:
    new = entry("slack:T1:C1:1700000000.000200", position="1700000000.000200", message=MESSAGE)
    first, created = await store.journal_add(new)
    assert created is True
    assert (first.id, first.key, first.position, first.message) == (
        new.id,
        SLACK,
        "1700000000.000200",
        MESSAGE,
    )
    assert first.state == "received"
    assert first.unfinished is True
    assert first.created_at == first.updated_at == clock.now
    assert first.attempts == 0
    assert first.conversation_id is None
    assert first.user_message_id is None
    assert first.reply_message_id is None
    assert first.shown_ref is None
    assert first.error is None
    assert await store.journal_get(entry_id=new.id) == first

    clock.advance(5)
    redelivered = entry(new.id, key=DISCORD, position="9999", message={"text": "changed"})
    again, created_again = await store.journal_add(redelivered)
    assert created_again is False
    assert again == first
    assert await store.journal_backlog() == 1


async def test_add_returns_the_entry_as_it_stands(store: ConversationStore) -> None:
    """A redelivery of a turn already under way gets its progress, not a fresh entry."""
    await store.journal_add(entry("discord:1"))
    await store.journal_update(entry_id="discord:1", state="answered", add_attempt=True)
    again, created = await store.journal_add(entry("discord:1"))
    assert created is False
    assert (again.state, again.attempts) == ("answered", 1)


async def test_concurrent_adds_of_one_id_make_one_entry(store_factory: StoreFactory) -> None:
    """Twenty adds at once, from two processes' stores: one entry, one creator."""
    first, second = await store_factory(), await store_factory()
    new = entry("slack:T1:C1:1700000000.000300", message=MESSAGE)
    results = await asyncio.gather(*(store.journal_add(new) for store in [first, second] * 10))
    assert sum(created for _, created in results) == 1
    assert all(found == results[0][0] for found, _ in results)
    assert await first.journal_backlog() == 1
    assert await second.journal_pending() == [SLACK]


async def test_messages_round_trip(store: ConversationStore) -> None:
    big: dict[str, JsonValue] = {"text": "é" * ((MAX_JOURNAL_MESSAGE - 20) // 2)}
    await store.journal_add(entry("discord:1", message=MESSAGE))
    await store.journal_add(entry("discord:2", message=big))
    first = await store.journal_get(entry_id="discord:1")
    second = await store.journal_get(entry_id="discord:2")
    assert first is not None
    assert first.message == MESSAGE
    assert second is not None
    assert second.message == big


# order -----------------------------------------------------------------------------------


async def test_next_follows_position_across_interleaved_places(
    store: ConversationStore, clock: FakeClock
) -> None:
    """Each place's entries come in position order, whatever order they arrived in."""
    arrivals = [
        ("slack:3", SLACK, "1700000003.000000"),
        ("discord:20", DISCORD, "00000000000000000020"),
        ("slack:1", SLACK, "1700000001.000000"),
        ("discord:10", DISCORD, "00000000000000000010"),
        ("slack:2", SLACK, "1700000002.000000"),
        ("discord:30", DISCORD, "00000000000000000030"),
    ]
    for entry_id, key, position in arrivals:
        clock.advance(1)
        await store.journal_add(entry(entry_id, key=key, position=position))
    assert await store.journal_next(key=API) is None

    taken: dict[str, list[str]] = {"slack": [], "discord": []}
    for _ in range(3):
        for key in (SLACK, DISCORD):
            head = await store.journal_next(key=key)
            assert head is not None
            assert head.key == key
            taken[key.platform].append(head.id)
            await move_to(store, head.id, "shown")
    assert taken == {
        "slack": ["slack:1", "slack:2", "slack:3"],
        "discord": ["discord:10", "discord:20", "discord:30"],
    }
    assert await store.journal_next(key=SLACK) is None
    assert await store.journal_next(key=DISCORD) is None


async def test_next_breaks_ties_by_arrival_then_id(
    store: ConversationStore, clock: FakeClock
) -> None:
    await store.journal_add(entry("api:b", key=API, position="5"))
    await store.journal_add(entry("api:a", key=API, position="5"))
    clock.advance(-1)
    await store.journal_add(entry("api:c", key=API, position="5"))
    order = []
    while (head := await store.journal_next(key=API)) is not None:
        order.append(head.id)
        await move_to(store, head.id, "failed")
    assert order == ["api:c", "api:a", "api:b"]


async def test_next_keeps_an_answered_entry_until_it_is_shown(store: ConversationStore) -> None:
    await store.journal_add(entry("discord:1", key=DISCORD, position="1"))
    await store.journal_add(entry("discord:2", key=DISCORD, position="2"))
    await move_to(store, "discord:1", "answered")
    head = await store.journal_next(key=DISCORD)
    assert head is not None
    assert (head.id, head.state) == ("discord:1", "answered")
    await move_to(store, "discord:1", "failed")
    head = await store.journal_next(key=DISCORD)
    assert head is not None
    assert head.id == "discord:2"


async def take(
    store: ConversationStore,
    key: PlatformKey,
    *,
    owner: str = "p1",
    finish: JournalFinish | None = None,
) -> JournalEntry | None:
    """One drain step at ``key`` by ``owner`` (the journal's lease for it)."""
    return await store.journal_advance(
        key=key, lease=f"turns:{key.canonical}", owner=owner, ttl_seconds=30, finish=finish
    )


async def test_advance_takes_the_head_and_counts_an_attempt(
    store: ConversationStore, clock: FakeClock
) -> None:
    """Advance takes what next finds, counts an attempt (to answer or to show) and marks the
    entry touched, so a sweeper sees the place as worked on."""
    assert await take(store, DISCORD) is None
    await store.journal_add(entry("discord:2", key=DISCORD, position="2"))
    await store.journal_add(entry("discord:1", key=DISCORD, position="1"))
    clock.advance(5)
    first = await take(store, DISCORD)
    assert first is not None
    assert (first.id, first.state, first.attempts) == ("discord:1", "received", 1)
    assert first.updated_at == clock.now
    assert first.updated_at > first.created_at
    assert first.prior_touch == first.created_at  # never touched before this take
    assert await store.journal_get(entry_id="discord:1") == first.model_copy(
        update={"prior_touch": None}
    )
    clock.advance(2)
    again = await take(store, DISCORD)
    assert again is not None
    assert (again.id, again.attempts) == ("discord:1", 2)
    assert again.prior_touch == first.updated_at  # when the attempt before this one began
    await move_to(store, "discord:1", "answered")
    clock.advance(5)
    showing = await take(store, DISCORD)
    assert showing is not None
    assert (showing.id, showing.state, showing.attempts) == ("discord:1", "answered", 3)
    assert showing.updated_at == clock.now
    assert showing.prior_touch == clock.now - timedelta(seconds=5)  # the move to answered
    await move_to(store, "discord:1", "shown")
    second = await take(store, DISCORD)
    assert second is not None
    assert (second.id, second.attempts) == ("discord:2", 1)
    await move_to(store, "discord:2", "failed")
    assert await take(store, DISCORD) is None
    assert await take(store, SLACK) is None


async def test_advance_writes_the_finished_entry_and_takes_the_next(
    store: ConversationStore, clock: FakeClock
) -> None:
    """The entry a drain finished is written in the same step that takes the next one."""
    for n in (1, 2):
        await store.journal_add(entry(f"discord:{n}", key=DISCORD, position=f"{n}"))
    first = await take(store, DISCORD)
    assert first is not None
    clock.advance(1)
    done = JournalFinish.of(
        "discord:1",
        state="shown",
        conversation_id=CONVERSATION_ID,
        user_message_id=USER_MESSAGE_ID,
        reply_message_id=REPLY_MESSAGE_ID,
        shown_ref="1700000000.000200",
    )
    second = await take(store, DISCORD, finish=done)
    assert second is not None
    assert second.id == "discord:2"
    finished = await store.journal_get(entry_id="discord:1")
    assert finished is not None
    assert (finished.state, finished.unfinished, finished.updated_at) == (
        "shown",
        False,
        clock.now,
    )
    assert (finished.conversation_id, finished.user_message_id, finished.reply_message_id) == (
        CONVERSATION_ID,
        USER_MESSAGE_ID,
        REPLY_MESSAGE_ID,
    )
    assert finished.shown_ref == "1700000000.000200"
    last = JournalFinish.of("discord:2", state="failed", error="nothing to answer")
    assert await take(store, DISCORD, finish=last) is None
    failed = await store.journal_get(entry_id="discord:2")
    assert failed is not None
    assert (failed.state, failed.error) == ("failed", "nothing to answer")
    with pytest.raises(ValueError, match="shown_ref"):
        JournalFinish.of("discord:2", state="shown", shown_ref="not\x1fprintable")


async def test_advance_needs_the_lease_and_lets_it_go_when_the_place_is_empty(
    store: ConversationStore,
) -> None:
    """A place another owner holds is not taken (the finished entry is still written); an
    emptied place's lease is released at once, so the next adder can drain it."""
    lease = f"turns:{DISCORD.canonical}"
    for n in (1, 2):
        await store.journal_add(entry(f"discord:{n}", key=DISCORD, position=f"{n}"))
    assert await take(store, DISCORD, owner="p1") is not None
    done = JournalFinish.of("discord:1", state="shown")
    assert await take(store, DISCORD, owner="p2", finish=done) is None, "p1 holds it"
    written = await store.journal_get(entry_id="discord:1")
    assert written is not None
    assert written.state == "shown"
    untouched = await store.journal_get(entry_id="discord:2")
    assert untouched is not None
    assert untouched.attempts == 0
    second = await take(store, DISCORD, owner="p1")
    assert second is not None
    assert second.id == "discord:2"
    assert not await store.claim(key=lease, owner="p2", ttl_seconds=30), "still p1's"
    assert (
        await take(store, DISCORD, owner="p1", finish=JournalFinish.of("discord:2", state="shown"))
        is None
    )
    assert await store.claim(key=lease, owner="p2", ttl_seconds=30), "released when empty"
    assert await take(store, DISCORD, owner="p1") is None, "now p2's"


async def test_take_keeps_to_its_place(store: ConversationStore) -> None:
    await store.journal_add(entry("slack:1", key=SLACK, position="1"))
    assert await take(store, DISCORD) is None
    untouched = await store.journal_get(entry_id="slack:1")
    assert untouched is not None
    assert untouched.attempts == 0


async def add_and_take(
    store: ConversationStore, new: NewJournalEntry, *, owner: str = "p1"
) -> tuple[JournalEntry, bool, JournalEntry | None]:
    return await store.journal_add_and_take(
        new, lease=f"turns:{new.key.canonical}", owner=owner, ttl_seconds=30
    )


async def test_add_and_take_records_and_takes_up_the_entry_or_leaves_it_to_a_step(
    store: ConversationStore, clock: FakeClock
) -> None:
    """At a place nobody drains, one call records the message and takes it up under the
    lease as an advance would, or (a store that cannot do both in one write) records it
    untaken and leaves the lease free for the drain's first step."""
    lease = f"turns:{DISCORD.canonical}"
    added, created, taken = await add_and_take(store, entry("discord:1", key=DISCORD))
    assert created is True
    stored = await store.journal_get(entry_id="discord:1")
    assert stored is not None
    if taken is None:
        assert (stored.state, stored.attempts) == ("received", 0)
        first = await take(store, DISCORD, owner="p1")
        assert first is not None
        assert (first.id, first.attempts) == ("discord:1", 1)
    else:
        assert (taken.id, taken.state, taken.attempts) == ("discord:1", "received", 1)
        assert taken.message == {"text": "discord:1"}
        assert taken.prior_touch == added.created_at == clock.now
        assert added == taken
        assert stored == taken.model_copy(update={"prior_touch": None})
    assert not await store.claim(key=lease, owner="p2", ttl_seconds=30), "p1 holds the place"
    finished = JournalFinish.of("discord:1", state="shown")
    assert await take(store, DISCORD, owner="p1", finish=finished) is None
    assert await store.claim(key=lease, owner="p2", ttl_seconds=30), "released when empty"


async def test_add_and_take_takes_the_head_not_the_newcomer(store: ConversationStore) -> None:
    """An entry left unfinished before is first in line: it is the one taken, if any."""
    await store.journal_add(entry("discord:1", key=DISCORD, position="1"))
    _, created, taken = await add_and_take(store, entry("discord:2", key=DISCORD, position="2"))
    assert created is True
    assert taken is None or taken.id == "discord:1"
    newcomer = await store.journal_get(entry_id="discord:2")
    assert newcomer is not None
    assert (newcomer.state, newcomer.attempts) == ("received", 0)


async def test_add_and_take_leaves_a_held_place_and_a_redelivery_alone(
    store: ConversationStore,
) -> None:
    """Another owner's place is recorded into, not taken; a redelivery takes nothing."""
    await store.journal_add(entry("discord:1", key=DISCORD, position="1"))
    assert await take(store, DISCORD, owner="p2") is not None
    _, created, taken = await add_and_take(store, entry("discord:2", key=DISCORD, position="2"))
    assert (created, taken) == (True, None)
    recorded = await store.journal_get(entry_id="discord:2")
    assert recorded is not None
    assert recorded.attempts == 0
    _, created, _ = await add_and_take(store, entry("slack:1", key=SLACK), owner="p3")
    assert created is True
    before = await store.journal_get(entry_id="slack:1")
    again, created, taken = await add_and_take(store, entry("slack:1", key=SLACK), owner="p4")
    assert (again, created, taken) == (before, False, None)


# states ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "requested"), list(itertools.product(STATES, STATES)), ids="{0[0]}-{0[1]}".format
)
async def test_states_only_move_forwards(
    store: ConversationStore, current: JournalState, requested: JournalState
) -> None:
    """Every pair of states: the update applies ``journal_state_after``, and the other
    fields are set whether the state moves or not."""
    await store.journal_add(entry("discord:1"))
    await move_to(store, "discord:1", current)
    updated = await store.journal_update(
        entry_id="discord:1", state=requested, shown_ref="1234", error="late"
    )
    expected = journal_state_after(current, requested)
    assert updated is not None
    assert updated.state == expected
    assert (updated.shown_ref, updated.error) == ("1234", "late")
    assert await store.journal_get(entry_id="discord:1") == updated
    assert await store.journal_backlog() == (1 if expected in ("received", "answered") else 0)
    head = await store.journal_next(key=SLACK)
    assert (head is not None) == updated.unfinished


def test_the_state_order() -> None:
    assert journal_state_after("received", "answered") == "answered"
    assert journal_state_after("received", "shown") == "shown"
    assert journal_state_after("answered", "received") == "answered"
    assert journal_state_after("answered", "failed") == "failed"
    assert journal_state_after("shown", "answered") == "shown"
    assert journal_state_after("shown", "failed") == "shown"
    assert journal_state_after("failed", "shown") == "failed"
    assert journal_state_after("failed", "received") == "failed"


async def test_failed_is_terminal(store: ConversationStore) -> None:
    await store.journal_add(entry("discord:1"))
    await store.journal_update(entry_id="discord:1", state="answered")
    failed = await store.journal_update(entry_id="discord:1", state="failed", error="model down")
    assert failed is not None
    assert (failed.state, failed.error, failed.unfinished) == ("failed", "model down", False)
    for state in STATES:
        again = await store.journal_update(entry_id="discord:1", state=state)
        assert again is not None
        assert again.state == "failed"
    assert await store.journal_next(key=SLACK) is None
    assert await store.journal_pending() == []


async def test_racing_updates_never_move_back(store_factory: StoreFactory) -> None:
    """Two processes finish one turn differently at once: one wins, and stays."""
    first, second = await store_factory(), await store_factory()
    await first.journal_add(entry("discord:1"))
    await first.journal_update(entry_id="discord:1", state="answered")
    results = await asyncio.gather(
        first.journal_update(entry_id="discord:1", state="shown", shown_ref="9"),
        second.journal_update(entry_id="discord:1", state="failed"),
        first.journal_update(entry_id="discord:1", state="received"),
        second.journal_update(entry_id="discord:1", state="answered"),
    )
    final = await second.journal_get(entry_id="discord:1")
    assert final is not None
    assert final.state in ("shown", "failed")
    assert all(result is not None for result in results)
    # Once finished, every later result shows the same final state.
    finished = [result.state for result in results if result and not result.unfinished]
    assert set(finished) == {final.state}


async def test_update_sets_only_the_given_fields(
    store: ConversationStore, clock: FakeClock
) -> None:
    added, _ = await store.journal_add(entry("discord:1", message=MESSAGE))
    clock.advance(2)
    started = await store.journal_update(
        entry_id="discord:1", conversation_id=CONVERSATION_ID, add_attempt=True
    )
    assert started is not None
    assert started.state == "received"
    assert started.attempts == 1
    assert started.conversation_id == CONVERSATION_ID
    assert started.updated_at == clock.now
    assert started.created_at == added.created_at
    assert started.message == MESSAGE

    clock.advance(2)
    answered = await store.journal_update(
        entry_id="discord:1",
        state="answered",
        user_message_id=USER_MESSAGE_ID,
        reply_message_id=REPLY_MESSAGE_ID,
        error="repaired JSON",
    )
    assert answered is not None
    assert answered.model_dump(exclude={"updated_at"}) == started.model_copy(
        update={
            "state": "answered",
            "user_message_id": USER_MESSAGE_ID,
            "reply_message_id": REPLY_MESSAGE_ID,
            "error": "repaired JSON",
        }
    ).model_dump(exclude={"updated_at"})
    assert answered.updated_at == clock.now

    clock.advance(2)
    heartbeat = await store.journal_update(entry_id="discord:1")
    assert heartbeat is not None
    assert heartbeat.model_copy(update={"updated_at": answered.updated_at}) == answered
    assert heartbeat.updated_at == clock.now

    cleared = await store.journal_update(entry_id="discord:1", error=None, add_attempt=True)
    assert cleared is not None
    assert (cleared.error, cleared.attempts) == (None, 2)
    assert cleared.conversation_id == CONVERSATION_ID


async def test_attempts_add_up_under_concurrency(store_factory: StoreFactory) -> None:
    first, second = await store_factory(), await store_factory()
    await first.journal_add(entry("discord:1"))
    await asyncio.gather(
        *(
            store.journal_update(entry_id="discord:1", add_attempt=True)
            for store in [first, second] * 10
        )
    )
    found = await first.journal_get(entry_id="discord:1")
    assert found is not None
    assert found.attempts == 20


async def test_update_values_are_literal(store: ConversationStore) -> None:
    """Values that look like field paths or operators are stored as they are."""
    await store.journal_add(entry("discord:1"))
    updated = await store.journal_update(
        entry_id="discord:1", shown_ref="$state", error='$attempts {"$gt": ""}'
    )
    assert updated is not None
    assert (updated.shown_ref, updated.error) == ("$state", '$attempts {"$gt": ""}')
    assert updated.state == "received"
    assert updated.attempts == 0


async def test_error_is_cut_to_its_limit(store: ConversationStore) -> None:
    await store.journal_add(entry("discord:1"))
    updated = await store.journal_update(entry_id="discord:1", error="x" * 10_000)
    assert updated is not None
    assert updated.error == "x" * MAX_JOURNAL_ERROR


# pending places, backlog, pruning --------------------------------------------------------


async def test_pending_places_oldest_first(store: ConversationStore, clock: FakeClock) -> None:
    assert await store.journal_pending() == []
    await store.journal_add(entry("discord:1", key=DISCORD, position="5"))
    clock.advance(1)
    await store.journal_add(entry("slack:1", key=SLACK, position="9"))
    clock.advance(1)
    await store.journal_add(entry("discord:2", key=DISCORD, position="1"))
    clock.advance(1)
    await store.journal_add(entry("api:1", key=API))
    assert await store.journal_pending() == [DISCORD, SLACK, API]
    assert await store.journal_pending(limit=2) == [DISCORD, SLACK]
    assert await store.journal_pending(limit=0) == []

    await move_to(store, "discord:1", "shown")
    # Discord's oldest unfinished entry is now discord:2, added after slack:1.
    assert await store.journal_pending() == [SLACK, DISCORD, API]
    await move_to(store, "slack:1", "answered")
    assert await store.journal_pending() == [SLACK, DISCORD, API]
    await move_to(store, "slack:1", "failed")
    assert await store.journal_pending() == [DISCORD, API]


async def test_pending_places_updated_before(store: ConversationStore, clock: FakeClock) -> None:
    """The sweeper's question: which places' oldest unfinished turn has not moved lately."""
    start = clock.now
    await store.journal_add(entry("discord:1", key=DISCORD))
    await store.journal_add(entry("slack:1", key=SLACK))
    clock.advance(10)
    await store.journal_add(entry("api:1", key=API))
    await store.journal_add(entry("slack:2", key=SLACK, position="0002"))
    assert await store.journal_pending(updated_before=start) == []
    assert await store.journal_pending(updated_before=start + timedelta(microseconds=1)) == [
        DISCORD,
        SLACK,
    ]
    assert await store.journal_pending(updated_before=clock.now) == [DISCORD, SLACK]
    assert await store.journal_pending(updated_before=clock.now + timedelta(seconds=1)) == [
        DISCORD,
        SLACK,
        API,
    ]

    # A live owner touches its turn: the place is no longer stale, its order is unchanged.
    clock.advance(10)
    await store.journal_update(entry_id="slack:1", add_attempt=True)
    assert await store.journal_pending(updated_before=clock.now) == [DISCORD, API]
    assert await store.journal_pending() == [DISCORD, SLACK, API]
    assert await store.journal_pending(updated_before=clock.now, limit=1) == [DISCORD]


async def test_backlog_counts_unfinished_entries(store: ConversationStore) -> None:
    assert await store.journal_backlog() == 0
    for n, state in enumerate(("received", "answered", "shown", "failed", "received")):
        await store.journal_add(entry(f"discord:{n}", key=DISCORD, position=f"{n:04}"))
        await move_to(store, f"discord:{n}", state)  # type: ignore[arg-type]
    assert await store.journal_backlog() == 3


async def test_prune_deletes_old_finished_entries(
    store: ConversationStore, clock: FakeClock
) -> None:
    start = clock.now
    for n, state in enumerate(("received", "answered", "shown", "failed")):
        await store.journal_add(entry(f"old:{n}"))
        await move_to(store, f"old:{n}", state)  # type: ignore[arg-type]
    clock.advance(60)
    cutoff = clock.now
    await store.journal_add(entry("new:shown"))
    await move_to(store, "new:shown", "shown")

    assert await store.journal_prune(finished_before=start) == 0
    assert await store.journal_prune(finished_before=cutoff) == 2
    assert await store.journal_get(entry_id="old:2") is None
    assert await store.journal_get(entry_id="old:3") is None
    for kept in ("old:0", "old:1", "new:shown"):
        assert await store.journal_get(entry_id=kept) is not None
    assert await store.journal_backlog() == 2
    assert await store.journal_prune(finished_before=cutoff) == 0

    # A redelivery after pruning is a new entry.
    again, created = await store.journal_add(entry("old:2"))
    assert created is True
    assert again.state == "received"


# unknown and invalid arguments -----------------------------------------------------------

INVALID_IDS: list[Any] = ["", "a\x1fb", "line\nbreak", "\x00", "x" * (MAX_JOURNAL_ID + 1), None]


@pytest.mark.parametrize("entry_id", ['{"$gt": ""}', "$where", ".*", "' OR 1=1 --", "%"])
async def test_unknown_ids(store: ConversationStore, entry_id: str) -> None:
    await store.journal_add(entry("discord:1"))
    assert await store.journal_get(entry_id=entry_id) is None
    assert await store.journal_update(entry_id=entry_id, state="shown") is None
    found = await store.journal_get(entry_id="discord:1")
    assert found is not None
    assert found.state == "received"


@pytest.mark.parametrize("entry_id", [*INVALID_IDS, {"$gt": ""}], ids=repr)
async def test_invalid_ids_find_nothing(store: ConversationStore, entry_id: Any) -> None:
    await store.journal_add(entry("discord:1"))
    assert await store.journal_get(entry_id=entry_id) is None
    assert await store.journal_update(entry_id=entry_id, state="failed", add_attempt=True) is None
    assert await store.journal_backlog() == 1


@pytest.mark.parametrize("entry_id", INVALID_IDS, ids=repr)
def test_new_entries_refuse_bad_ids(entry_id: Any) -> None:
    with pytest.raises(ValidationError, match="id"):
        entry(entry_id)


def test_new_entries_refuse_bad_positions_and_messages() -> None:
    for position in ("", " 1", "1 2", "x" * 65, "é", "1\x1f2"):
        with pytest.raises(ValidationError, match="position"):
            entry("discord:1", position=position)
    with pytest.raises(ValidationError, match="message"):
        entry("discord:1", message={"text": "x" * MAX_JOURNAL_MESSAGE})
    with pytest.raises(ValidationError, match="message"):
        entry("discord:1", message={"score": float("nan")})
    assert entry("x" * MAX_JOURNAL_ID, position="~" * 64).position == "~" * 64
    assert entry("slack:T1:C1:1700000000.000100 ünï", position="!").id.endswith("ünï")


@pytest.mark.parametrize(
    "arguments",
    [
        {"state": "done"},
        {"state": None},
        {"conversation_id": "not-an-id"},
        {"conversation_id": "A" * 32},
        {"user_message_id": {"$gt": ""}},
        {"reply_message_id": ""},
        {"shown_ref": ""},
        {"shown_ref": "a\x1fb"},
        {"error": 42},
    ],
    ids=repr,
)
async def test_update_refuses_bad_values(
    store: ConversationStore, arguments: dict[str, Any]
) -> None:
    """Refused alike by every store, known entry or not, and nothing is written."""
    added, _ = await store.journal_add(entry("discord:1"))
    for entry_id in ("discord:1", "discord:unknown"):
        with pytest.raises(ValueError, match=next(iter(arguments))):
            await store.journal_update(entry_id=entry_id, add_attempt=True, **arguments)
    assert await store.journal_get(entry_id="discord:1") == added


# sharing ---------------------------------------------------------------------------------


async def test_two_stores_share_one_journal(store_factory: StoreFactory, clock: FakeClock) -> None:
    """Two processes on one SQLite file or one MongoDB database see one journal."""
    receiver, worker = await store_factory(), await store_factory()
    added, _ = await receiver.journal_add(entry("slack:1", position="1", message=MESSAGE))
    assert await worker.journal_get(entry_id="slack:1") == added
    assert await worker.journal_pending() == [SLACK]
    assert await worker.journal_backlog() == 1
    assert await worker.journal_next(key=SLACK) == added

    _, created = await worker.journal_add(entry("slack:1"))
    assert created is False
    clock.advance(1)
    answered = await worker.journal_update(
        entry_id="slack:1", state="answered", conversation_id=CONVERSATION_ID, add_attempt=True
    )
    assert await receiver.journal_get(entry_id="slack:1") == answered
    await worker.journal_update(entry_id="slack:1", state="shown", shown_ref="1700000001.000100")
    assert await receiver.journal_next(key=SLACK) is None
    assert await receiver.journal_backlog() == 0
    clock.advance(1)
    assert await receiver.journal_prune(finished_before=clock.now) == 1
    assert await worker.journal_get(entry_id="slack:1") is None


async def test_the_journal_survives_a_reopen(store_factory: StoreFactory) -> None:
    store = await store_factory()
    added, _ = await store.journal_add(entry("discord:1", message=MESSAGE))
    await store.close()
    reopened = await store_factory()
    assert await reopened.journal_get(entry_id="discord:1") == added
    assert await reopened.journal_pending() == [SLACK]


# SQLite: schema and query plans ----------------------------------------------------------


async def test_sqlite_file_from_before_the_journal_gains_it(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "old.sqlite3"
    store = SqliteStore(path=path, clock=clock)
    await store.open()
    await store.close()
    old = sqlite3.connect(path)
    try:
        old.execute("DROP TABLE journal")
        old.execute("PRAGMA user_version = 0")  # as files from before numbered migrations
    finally:
        old.close()
    store = SqliteStore(path=path, clock=clock)
    await store.open()
    try:
        _, created = await store.journal_add(entry("discord:1"))
        assert created is True
        assert await store.journal_backlog() == 1
    finally:
        await store.close()


async def _journal_plans(tmp_path: Path, clock: FakeClock) -> dict[str, str]:
    """The query plan of each statement the journal's reads and prune run, on a file with
    finished and unfinished entries in several places."""
    path = tmp_path / "plans.sqlite3"
    store = SqliteStore(path=path, clock=clock)
    await store.open()
    try:
        for n in range(30):
            key = (SLACK, DISCORD, API)[n % 3]
            await store.journal_add(entry(f"e:{n}", key=key, position=f"{n:04}"))
            if n % 2:
                await move_to(store, f"e:{n}", "shown")
        db = store._db
        assert db is not None
        plans: dict[str, str] = {}
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "next": lambda: store.journal_next(key=SLACK),
            "take": lambda: take(store, SLACK),
            "pending": store.journal_pending,
            "stale": lambda: store.journal_pending(updated_before=clock.now),
            "backlog": store.journal_backlog,
            "prune": lambda: store.journal_prune(finished_before=clock.now),
        }
        for name, call in calls.items():
            statements: list[str] = []
            await db.set_trace_callback(statements.append)
            try:
                await call()
            finally:
                await db.set_trace_callback(None)
            if name == "take":  # one transaction: finding the head, then taking it
                (head,) = [sql for sql in statements if "SELECT id, updated_at" in sql]
                statements = [sql for sql in statements if "attempts = attempts + 1" in sql]
                plans["head"] = head
            (sql,) = statements
            plans[name] = sql
    finally:
        await store.close()
    check = sqlite3.connect(path)
    try:
        return {
            name: " | ".join(row[3] for row in check.execute(f"EXPLAIN QUERY PLAN {sql}"))
            for name, sql in plans.items()
        }
    finally:
        check.close()


async def test_sqlite_records_and_takes_in_one_write(tmp_path: Path, clock: FakeClock) -> None:
    """SQLite makes the add and the take one transaction: the entry comes back taken, the
    newcomer behind an older entry leaves the older one taken, and nothing is read back."""
    store = SqliteStore(path=tmp_path / "take.sqlite3", clock=clock)
    await store.open()
    try:
        added, created, taken = await add_and_take(store, entry("discord:1", key=DISCORD))
        assert created
        assert taken is not None
        assert added is taken
        assert (taken.attempts, taken.prior_touch) == (1, clock.now)
        await store.journal_add(entry("slack:1", key=SLACK, position="1"))
        _, _, older = await add_and_take(store, entry("slack:2", key=SLACK, position="2"))
        assert older is not None
        assert (older.id, older.attempts) == ("slack:1", 1)
    finally:
        await store.close()


async def test_sqlite_journal_reads_indexes(tmp_path: Path, clock: FakeClock) -> None:
    """Each read goes through a partial index of unfinished entries (prune through the one of
    finished entries): the journal table itself is never scanned, and nothing but the places
    found is sorted."""
    plans = await _journal_plans(tmp_path, clock)
    assert plans["next"] == "SEARCH journal USING INDEX journal_next (place=?)", plans
    assert plans["head"] == "SEARCH journal USING INDEX journal_next (place=?)", plans
    assert plans["take"] == "SEARCH journal USING INDEX sqlite_autoindex_journal_1 (id=?)", plans
    assert plans["backlog"] == "SCAN journal USING COVERING INDEX journal_unfinished", plans
    assert plans["prune"] == "SEARCH journal USING INDEX journal_finished (updated_at<?)", plans
    for name in ("pending", "stale"):
        steps = plans[name].split(" | ")
        assert "SCAN journal USING INDEX journal_unfinished" in steps, plans
        # The window reads the index in (place, created_at, id) order; only places are sorted.
        assert [step for step in steps if "TEMP B-TREE" in step] == [
            "USE TEMP B-TREE FOR ORDER BY"
        ], plans
    for name in ("next", "backlog", "prune"):
        assert "TEMP B-TREE" not in plans[name], plans
