"""The knowledge records' contract (agents' documents and their chunks), run unchanged
against each store."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from memory.base import ConversationStore, NewChunk, NewDocument
from memory.recall import MAX_QUERY_TERMS, query_terms
from tests.support.clock import FakeClock
from tests.support.stores import StoreFactory


def document(name: str, agent_id: str = "chef", content: str = "v1") -> NewDocument:
    return NewDocument(
        agent_id=agent_id,
        name=name,
        source="file",
        content_hash=hashlib.sha256(content.encode()).hexdigest(),
        size=len(content),
    )


def chunks(*texts: str) -> list[NewChunk]:
    return [NewChunk(text=text, tokens=len(text.split())) for text in texts]


async def found(store: ConversationStore, query: str, agent_id: str = "chef") -> list[str]:
    hits = await store.search_knowledge(agent_id=agent_id, query=query, limit=10)
    return [hit.text for hit in hits]


async def test_a_document_is_kept_with_its_chunks(
    store_factory: StoreFactory, clock: FakeClock
) -> None:
    store = await store_factory()
    kept = await store.put_document(
        document("recipes/pasta.md"),
        chunks("Boil the pasta in salted water.", "Toss it with basil pesto."),
    )
    assert (kept.agent_id, kept.name, kept.chunks, kept.source) == (
        "chef",
        "recipes/pasta.md",
        2,
        "file",
    )
    assert kept.created_at == kept.updated_at == clock.now
    other_process = await store_factory()
    assert await other_process.get_document(agent_id="chef", name="recipes/pasta.md") == kept
    assert await other_process.get_document(agent_id="tutor", name="recipes/pasta.md") is None
    hits = await other_process.search_knowledge(agent_id="chef", query="pesto?", limit=5)
    assert [(hit.text, hit.n, hit.document_name) for hit in hits] == [
        ("Toss it with basil pesto.", 1, "recipes/pasta.md")
    ]
    assert hits[0].document_id == kept.id
    assert await other_process.get_chunks(ids=[hits[0].id, "f" * 32, "nope"]) == hits


async def test_a_new_version_replaces_the_chunks(
    store: ConversationStore, clock: FakeClock
) -> None:
    first = await store.put_document(document("pasta.md"), chunks("Boil the spaghetti."))
    clock.advance(5)
    second = await store.put_document(
        document("pasta.md", content="v2"), chunks("Bake the lasagne.", "Rest it.")
    )
    assert second.id == first.id, "the same document"
    assert (second.chunks, second.created_at, second.updated_at) == (
        2,
        first.created_at,
        clock.now,
    )
    assert second.content_hash != first.content_hash
    assert await found(store, "spaghetti") == []
    assert await found(store, "lasagne") == ["Bake the lasagne."]
    assert [d.name for d in await store.list_documents(agent_id="chef")] == ["pasta.md"]


async def test_search_ranks_by_shared_words_then_document_order(
    store: ConversationStore,
) -> None:
    await store.put_document(
        document("b.md"),
        chunks("Tomato sauce with garlic.", "Garlic bread.", "Nothing relevant here."),
    )
    await store.put_document(document("a.md"), chunks("Garlic, tomato and basil salad."))
    assert await found(store, "tomato garlic basil") == [
        "Garlic, tomato and basil salad.",
        "Tomato sauce with garlic.",
        "Garlic bread.",
    ]
    assert await found(store, "garlic") == [
        "Garlic, tomato and basil salad.",
        "Tomato sauce with garlic.",
        "Garlic bread.",
    ]
    assert await found(store, "the and of") == [], "common words find nothing"
    assert await found(store, "") == []
    limited = await store.search_knowledge(agent_id="chef", query="garlic", limit=1)
    assert [hit.text for hit in limited] == ["Garlic, tomato and basil salad."]


async def test_documents_belong_to_their_agent(store: ConversationStore) -> None:
    await store.put_document(document("notes.md", "chef"), chunks("Saffron risotto."))
    await store.put_document(document("notes.md", "tutor"), chunks("Saffron is a crocus."))
    assert await found(store, "saffron", "chef") == ["Saffron risotto."]
    assert await found(store, "saffron", "tutor") == ["Saffron is a crocus."]
    assert [(d.agent_id, d.name) for d in await store.list_documents()] == [
        ("chef", "notes.md"),
        ("tutor", "notes.md"),
    ]


async def test_delete_a_document_and_its_chunks(store: ConversationStore) -> None:
    await store.put_document(document("a.md"), chunks("Polenta with mushrooms."))
    hits = await store.search_knowledge(agent_id="chef", query="polenta", limit=5)
    assert await store.delete_document(agent_id="chef", name="a.md")
    assert not await store.delete_document(agent_id="chef", name="a.md")
    assert await found(store, "polenta") == []
    assert await store.get_chunks(ids=[hits[0].id]) == []
    assert await store.list_documents(agent_id="chef") == []


async def test_an_empty_document_keeps_no_chunks(store: ConversationStore) -> None:
    kept = await store.put_document(document("empty.md"), [])
    assert kept.chunks == 0
    assert await store.get_document(agent_id="chef", name="empty.md") == kept


def test_query_terms_are_bounded_and_longest_first() -> None:
    words = " ".join(f"word{n:03d}" for n in range(100))
    assert len(query_terms(words)) == MAX_QUERY_TERMS
    assert query_terms("basil and saffron") == ["saffron", "basil"]


def test_document_values_are_checked() -> None:
    with pytest.raises(ValidationError):
        NewDocument(agent_id="chef", name="", source="file", content_hash="0" * 64, size=0)
    with pytest.raises(ValidationError):
        NewDocument(agent_id="chef", name="a", source="file", content_hash="nothex", size=0)
    with pytest.raises(ValidationError):
        NewChunk(text="", tokens=0)


async def test_chunks_keep_their_vectors(store: ConversationStore) -> None:
    await store.put_document(document("b.md"), chunks("two", "three"), [b"\x02" * 8, None])
    await store.put_document(document("a.md"), chunks("one"), [b"\x01" * 8])
    await store.put_document(document("c.md", "tutor"), chunks("other"), [b"\x09" * 8])
    found = await store.chunk_vectors(agent_id="chef", limit=10)
    hits = await store.get_chunks(ids=[chunk_id for chunk_id, _ in found])
    assert [(hit.text, vector) for hit, (_, vector) in zip(hits, found, strict=True)] == [
        ("one", b"\x01" * 8),
        ("two", b"\x02" * 8),
    ]
    await store.put_document(document("a.md", content="v2"), chunks("uno"), [b"\x05" * 8])
    again = await store.chunk_vectors(agent_id="chef", limit=10)
    assert [vector for _, vector in again] == [b"\x05" * 8, b"\x02" * 8], "the old version goes"
    assert len(await store.chunk_vectors(agent_id="chef", limit=1)) == 1
    with pytest.raises(ValueError, match="one per chunk"):
        await store.put_document(document("d.md"), chunks("x", "y"), [None])
