"""The memory records' contract (facts about people), run unchanged against each store."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from memory.base import (
    MAX_MEMORY_TEXT,
    ConversationStore,
    Memory,
    MemoryQuery,
    MemoryScope,
    NewMemory,
)
from memory.recall import terms
from tests.support.clock import FakeClock
from tests.support.stores import StoreFactory

ADA = MemoryScope(platform="slack", workspace="T1", person="U_ADA", agent_id="chef")
CONVERSATION = "a" * 32
REPLY = "b" * 32


def fact(text: str, scope: MemoryScope = ADA, **fields: object) -> NewMemory:
    return NewMemory(scope=scope, text=text, **fields)  # type: ignore[arg-type]


async def remember(store: ConversationStore, clock: FakeClock, *facts: NewMemory) -> list[Memory]:
    kept = []
    for one in facts:  # one second apart: newest is well defined
        clock.advance(1)
        kept += await store.add_memories([one])
    return kept


async def recall(
    store: ConversationStore,
    query: str = "",
    scope: MemoryScope = ADA,
    *,
    private: bool = False,
    limit: int = 10,
) -> list[str]:
    found = await store.recall_memories(scope, query=query, include_private=private, limit=limit)
    return [memory.text for memory in found]


async def test_a_memory_is_kept_with_where_it_was_learned(
    store_factory: StoreFactory, clock: FakeClock
) -> None:
    store = await store_factory()
    (kept,) = await store.add_memories(
        [fact("  Allergic to peanuts ", conversation_id=CONVERSATION, message_id=REPLY)]
    )
    assert (kept.text, kept.scope, kept.private) == ("Allergic to peanuts", ADA, False)
    assert (kept.conversation_id, kept.message_id) == (CONVERSATION, REPLY)
    assert kept.created_at == clock.now
    assert kept.superseded_by is None
    other_process = await store_factory()
    assert await other_process.get_memory(memory_id=kept.id) == kept
    assert await store.get_memory(memory_id="f" * 32) is None
    assert await store.get_memory(memory_id="not an id") is None
    assert await store.add_memories([]) == []


async def test_recall_keeps_to_its_scope(store: ConversationStore, clock: FakeClock) -> None:
    """Another person, workspace, platform or agent never sees Ada's memories."""
    elsewhere = [
        ADA.model_copy(update={"person": "U_BOB"}),
        ADA.model_copy(update={"workspace": "T2"}),
        ADA.model_copy(update={"platform": "discord"}),
        ADA.model_copy(update={"agent_id": "tutor"}),
        ADA.model_copy(update={"agent_id": ""}),
    ]
    await remember(store, clock, fact("Ada likes basil"))
    for n, scope in enumerate(elsewhere):
        await remember(store, clock, fact(f"fact {n} elsewhere", scope))
    assert await recall(store, "basil") == ["Ada likes basil"]
    for n, scope in enumerate(elsewhere):
        assert await recall(store, "basil fact", scope) == [f"fact {n} elsewhere"]


async def test_private_memories_are_recalled_only_when_allowed(
    store: ConversationStore, clock: FakeClock
) -> None:
    await remember(store, clock, fact("Told me in a DM"), fact("Said in a channel"))
    await store.add_memories([fact("Secret from a DM", private=True)])
    assert await recall(store) == ["Said in a channel", "Told me in a DM"]
    assert set(await recall(store, private=True)) == {
        "Secret from a DM",
        "Said in a channel",
        "Told me in a DM",
    }


async def test_recall_ranks_shared_words_first_then_the_newest(
    store: ConversationStore, clock: FakeClock
) -> None:
    await remember(
        store,
        clock,
        fact("Allergic to peanuts"),
        fact("Prefers vegetarian dinners"),
        fact("Has two cats"),
        fact("Cooks vegetarian curry with peanuts on Fridays"),
    )
    assert await recall(store, "Any vegetarian ideas without peanuts?") == [
        "Cooks vegetarian curry with peanuts on Fridays",
        "Prefers vegetarian dinners",
        "Allergic to peanuts",
        "Has two cats",
    ]
    assert await recall(store, "", limit=2) == [
        "Cooks vegetarian curry with peanuts on Fridays",
        "Has two cats",
    ]
    assert await recall(store, "cats", limit=1) == ["Has two cats"]
    assert await recall(store, limit=0) == []


async def test_a_newer_memory_supersedes_an_older_one(
    store: ConversationStore, clock: FakeClock
) -> None:
    (paris,) = await remember(store, clock, fact("Lives in Paris"))
    (berlin,) = await remember(store, clock, fact("Moved to Berlin", supersedes=paris.id))
    assert await recall(store, "where does Ada live") == ["Moved to Berlin"]
    old = await store.get_memory(memory_id=paris.id)
    assert old is not None
    assert old.superseded_by == berlin.id, "kept as history"
    history = await store.list_memories(MemoryQuery(person="U_ADA", include_superseded=True))
    assert [memory.text for memory in history] == ["Moved to Berlin", "Lives in Paris"]
    current = await store.list_memories(MemoryQuery(person="U_ADA"))
    assert [memory.text for memory in current] == ["Moved to Berlin"]


async def test_a_memory_supersedes_only_within_its_scope(
    store: ConversationStore, clock: FakeClock
) -> None:
    (adas,) = await remember(store, clock, fact("Lives in Paris"))
    bob = ADA.model_copy(update={"person": "U_BOB"})
    await remember(store, clock, fact("Lives in Rome", bob, supersedes=adas.id))
    assert await recall(store) == ["Lives in Paris"]


async def test_supersede_existing_memories_within_their_scope(
    store: ConversationStore, clock: FakeClock
) -> None:
    paris, berlin, again, cats = await remember(
        store,
        clock,
        fact("Lives in Paris"),
        fact("Moved to Berlin"),
        fact("Moved to Berlin!"),
        fact("Has two cats"),
    )
    bob = ADA.model_copy(update={"person": "U_BOB"})
    (bobs,) = await remember(store, clock, fact("Lives in Rome", bob))
    pairs = [
        (paris.id, berlin.id),
        (again.id, berlin.id),
        (cats.id, bobs.id),  # another scope: skipped
        (cats.id, cats.id),  # itself: skipped
        ("f" * 32, berlin.id),  # unknown: skipped
        ("nope", berlin.id),
    ]
    assert await store.supersede_memories(scope=ADA, pairs=pairs) == 2
    assert await recall(store) == ["Has two cats", "Moved to Berlin"]
    old = await store.get_memory(memory_id=paris.id)
    assert old is not None
    assert old.superseded_by == berlin.id
    assert await store.supersede_memories(scope=ADA, pairs=[(cats.id, paris.id)]) == 0, (
        "nothing is superseded by a memory that is itself superseded"
    )
    assert await store.supersede_memories(scope=ADA, pairs=[]) == 0


async def test_list_memories_filters(store: ConversationStore, clock: FakeClock) -> None:
    bob = ADA.model_copy(update={"person": "U_BOB"})
    tutor = ADA.model_copy(update={"agent_id": "tutor"})
    guild = MemoryScope(platform="discord", workspace="9001", person="42", agent_id="chef")
    await remember(
        store,
        clock,
        fact("Ada: allergic to PEANUTS", ADA),
        fact("Bob: likes peanuts", bob),
        fact("Ada studies maths", tutor),
        fact("Discord person plays chess", guild),
    )
    everything = await store.list_memories(MemoryQuery())
    assert [m.text for m in everything] == [
        "Discord person plays chess",
        "Ada studies maths",
        "Bob: likes peanuts",
        "Ada: allergic to PEANUTS",
    ]

    async def texts(**filters: object) -> list[str]:
        found = await store.list_memories(MemoryQuery(**filters))  # type: ignore[arg-type]
        return [memory.text for memory in found]

    assert await texts(platform="discord") == ["Discord person plays chess"]
    assert await texts(workspace="T1", person="U_ADA") == [
        "Ada studies maths",
        "Ada: allergic to PEANUTS",
    ]
    assert await texts(agent_id="tutor") == ["Ada studies maths"]
    assert await texts(text="peanuts") == ["Bob: likes peanuts", "Ada: allergic to PEANUTS"]
    assert await texts(text="(.*)") == [], "the text is a plain substring, not a pattern"
    assert await texts(limit=1) == ["Discord person plays chess"]
    assert await texts(limit=0) == []


async def test_forget_by_id_and_by_scope(store: ConversationStore, clock: FakeClock) -> None:
    bob = ADA.model_copy(update={"person": "U_BOB"})
    kept = await remember(store, clock, fact("one"), fact("two"), fact("three"), fact("Bob's", bob))
    assert await store.forget_memories(ids=[kept[0].id, "f" * 32, "nope"]) == 1
    assert await recall(store) == ["three", "two"]
    assert await store.forget_memories(scope=ADA) == 2
    assert await recall(store) == []
    assert await recall(store, scope=bob) == ["Bob's"], "another person's are untouched"
    assert await store.forget_memories() == 0


async def test_forgetting_a_fact_forgets_its_history(
    store: ConversationStore, clock: FakeClock
) -> None:
    paris, lyon, berlin, cats = await remember(
        store,
        clock,
        fact("Lives in Paris"),
        fact("Lives in Lyon"),
        fact("Moved to Berlin"),
        fact("Has cats"),
    )
    await store.supersede_memories(scope=ADA, pairs=[(paris.id, lyon.id)])
    await store.supersede_memories(scope=ADA, pairs=[(lyon.id, berlin.id)])
    assert await store.forget_memories(ids=[berlin.id]) == 3
    left = await store.list_memories(MemoryQuery(person="U_ADA", include_superseded=True))
    assert [memory.id for memory in left] == [cats.id], "nothing of the forgotten fact stays"


def test_memory_values_are_checked() -> None:
    with pytest.raises(ValidationError):
        fact("   ")
    with pytest.raises(ValidationError):
        fact("x" * (MAX_MEMORY_TEXT + 1))
    with pytest.raises(ValidationError):
        MemoryScope(platform="slack", workspace="T1", person="")
    with pytest.raises(ValidationError):
        fact("ok", conversation_id="not an id")


def test_terms_fold_and_drop_common_words() -> None:
    assert terms("The CATS are allergic to Peanuts!") == {"cat", "allergic", "peanut"}
    assert terms("Straße") == terms("STRASSE")


async def test_memories_keep_their_vectors(store: ConversationStore, clock: FakeClock) -> None:
    clock.advance(1)
    first, second = await store.add_memories(
        [fact("Likes basil"), fact("A secret", private=True)], [b"\x01" * 8, b"\x02" * 8]
    )
    clock.advance(1)
    await store.add_memories([fact("No vector")])
    bob = ADA.model_copy(update={"person": "U_BOB"})
    await store.add_memories([fact("Bob's", bob)], [b"\x03" * 8])
    public = await store.memory_vectors(ADA, include_private=False, limit=10)
    assert public == [(first.id, b"\x01" * 8)]
    every = await store.memory_vectors(ADA, include_private=True, limit=10)
    assert sorted(every) == sorted([(first.id, b"\x01" * 8), (second.id, b"\x02" * 8)])
    with pytest.raises(ValueError, match="one per memory"):
        await store.add_memories([fact("x"), fact("y")], [b"\x01" * 8])
