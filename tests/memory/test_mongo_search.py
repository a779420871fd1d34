"""MongoDB search documents: written only when a conversation's folded text changes, never on
the per-message path, newest text winning over racing writers; and many matches page as few do.

Asserted through the stored documents and the commands the store sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import MongoClient, monitoring

import memory.mongo.conversations
from memory.base import ConversationQuery
from memory.mongo import MongoStore
from memory.rules import fold, search_grams
from tests.memory.helpers import reply, user
from tests.memory.test_search import QUERIES, add, key
from tests.support.clock import FakeClock

Document = dict[str, Any]


class _Writes(monitoring.CommandListener):
    """The write commands one database receives while ``on``, by collection."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.on = False
        self.commands: list[Document] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.on and event.database_name == self.database:
            self.commands.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def to(self, collection: str) -> list[Document]:
        return [
            command
            for command in self.commands
            if collection
            in (command.get("update"), command.get("findAndModify"), command.get("delete"))
        ]


@pytest.fixture
async def mongo(
    secantus_uri: str, mongo_database: str, clock: FakeClock
) -> AsyncIterator[tuple[MongoStore, _Writes, Any]]:
    writes = _Writes(mongo_database)
    monitoring.register(writes)
    store = MongoStore(uri=secantus_uri, database=mongo_database, clock=clock)
    await store.open()
    client: MongoClient[Document] = MongoClient(secantus_uri)
    try:
        yield store, writes, client[mongo_database]
    finally:
        writes.on = False
        await store.close()
        client.close()


def _search_doc(db: Any, conversation_id: str) -> Document | None:
    doc: Document | None = db.conversation_search.find_one({"_id": conversation_id})
    return doc


def _expected(seq: int, title: str, summary: str, source: str | None) -> Document:
    text = {"title": fold(title), "summary": fold(summary), "source": source and fold(source)}
    return {"search_seq": seq, "search_text": text, "search_grams": search_grams(text.values())}


async def test_messages_do_not_touch_the_search_text(
    mongo: tuple[MongoStore, _Writes, Any],
) -> None:
    """A message append updates the conversation only; its grams are in their own document,
    whose index entries that update cannot rewrite."""
    store, writes, db = mongo
    conversation_id = await add(store, 1, "Weekly dinners", "Ada cooks on Mondays")
    before = _search_doc(db, conversation_id)
    assert before is not None
    assert {k: v for k, v in before.items() if k != "_id"} == _expected(
        1, "Weekly dinners", "Ada cooks on Mondays", None
    )
    writes.on = True
    for n in range(3):
        await store.append_message(conversation_id=conversation_id, message=user(f"hi {n}"))
        await store.append_message(conversation_id=conversation_id, message=reply(f"ho {n}"))
    writes.on = False
    assert writes.to("conversation_search") == []
    assert _search_doc(db, conversation_id) == before
    conversation = db.conversations.find_one({"_id": conversation_id})
    assert conversation["message_count"] == 6
    assert "search_grams" not in conversation
    assert "search_text" not in conversation
    assert "search_grams" not in db.conversations.index_information()


async def test_unchanged_folded_text_is_not_written_again(
    mongo: tuple[MongoStore, _Writes, Any],
) -> None:
    """A summary, title or source whose folded text is the same as before (``DINNER`` after
    ``Dinner``), or an update of other fields, leaves the search document alone."""
    store, writes, db = mongo
    conversation_id = await add(store, 1, "Dinner", "Plans for Straße 5", "crm")
    stored = _search_doc(db, conversation_id)
    writes.on = True
    assert await store.set_summary(
        conversation_id=conversation_id, summary="PLANS FOR STRASSE 5", summary_seq=2
    )
    await store.update_conversation(conversation_id=conversation_id, title="DINNER")
    await store.update_conversation(conversation_id=conversation_id, source="CRM")
    await store.update_conversation(conversation_id=conversation_id, tags=["vip"], data={"a": 1})
    writes.on = False
    assert writes.to("conversation_search") == []
    assert _search_doc(db, conversation_id) == stored
    conversation = await store.get_conversation(conversation_id=conversation_id)
    assert conversation is not None
    assert (conversation.title, conversation.summary, conversation.source) == (
        "DINNER",
        "PLANS FOR STRASSE 5",
        "CRM",
    )
    assert conversation.tags == ("vip",)
    assert conversation.data == {"a": 1}


async def test_changed_text_writes_the_search_document_once(
    mongo: tuple[MongoStore, _Writes, Any],
) -> None:
    store, writes, db = mongo
    conversation_id = await add(store, 1, "Dinner")
    writes.on = True
    assert await store.set_summary(conversation_id=conversation_id, summary="Paella", summary_seq=1)
    writes.on = False
    assert len(writes.to("conversation_search")) == 1
    doc = _search_doc(db, conversation_id)
    assert doc is not None
    assert {k: v for k, v in doc.items() if k != "_id"} == _expected(1, "Dinner", "Paella", None)
    page = await store.list_conversations(ConversationQuery(text="paell"))
    assert [item.id for item in page.items] == [conversation_id]


async def test_a_conversation_without_text_has_no_search_document(
    mongo: tuple[MongoStore, _Writes, Any],
) -> None:
    store, _, db = mongo
    conversation, _ = await store.get_or_create_conversation(key=key(1), agent_id="chef")
    assert _search_doc(db, conversation.id) is None
    await store.update_conversation(conversation_id=conversation.id, title="Tapas")
    assert _search_doc(db, conversation.id) is not None
    assert await store.delete_conversation(conversation_id=conversation.id)
    assert _search_doc(db, conversation.id) is None


async def test_racing_writers_leave_the_newest_text(
    mongo: tuple[MongoStore, _Writes, Any],
) -> None:
    """Whatever order their search writes land in, the text of the last change stays, and
    the search document carries the conversation's count of changes."""
    store, _, db = mongo
    conversation_id = await add(store, 1, "start")
    for round_ in range(5):
        await asyncio.gather(
            *(
                store.update_conversation(conversation_id=conversation_id, title=f"t{round_}-{n}")
                for n in range(8)
            ),
            *(
                store.set_summary(
                    conversation_id=conversation_id, summary=f"s{round_}-{n}", summary_seq=n
                )
                for n in range(8)
            ),
        )
        conversation = db.conversations.find_one({"_id": conversation_id})
        doc = _search_doc(db, conversation_id)
        assert doc is not None
        assert doc["search_seq"] == conversation["search_seq"]
        assert doc["search_text"] == {
            "title": fold(conversation["title"]),
            "summary": fold(conversation["summary"]),
            "source": None,
        }


async def test_an_older_search_write_does_not_replace_a_newer_one(
    mongo: tuple[MongoStore, _Writes, Any],
) -> None:
    """A writer whose update came earlier but whose search write comes later loses."""
    store, _, db = mongo
    conversation_id = await add(store, 1, "first")
    newer = {"search_seq": 99, "search_text": {"title": "x"}, "search_grams": ["x"]}
    db.conversation_search.update_one({"_id": conversation_id}, {"$set": newer})
    await store.update_conversation(conversation_id=conversation_id, title="second")
    doc = _search_doc(db, conversation_id)
    assert doc is not None
    assert {k: v for k, v in doc.items() if k != "_id"} == newer


async def test_mongo_many_matches_page_alike(
    mongo: tuple[MongoStore, _Writes, Any],
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Many matches are counted in batches of ids and paged along the order's index, few are
    read by id and sorted: same pages. Search documents of deleted conversations match
    nothing either way."""
    store, _, db = mongo
    for n in range(24):
        clock.advance(1)
        conversation_id = await add(
            store, n, f"Order {n}" if n % 3 else "misc", agent_id=("chef", "tutor")[n % 2]
        )
        if n % 4 == 0:
            await store.update_conversation(conversation_id=conversation_id, tags=["vip"])
        if n % 5 == 0:
            await store.close_conversation(conversation_id=conversation_id)
        if n == 7:
            # As a search write racing the delete would leave it.
            orphan = db.conversation_search.find_one({"_id": conversation_id})
            await store.delete_conversation(conversation_id=conversation_id)
            db.conversation_search.insert_one(orphan)
    few = [await store.list_conversations(query) for query in QUERIES]
    monkeypatch.setattr(memory.mongo.conversations, "_FEW_MATCHES", 0)
    monkeypatch.setattr(memory.mongo.conversations, "_ID_BATCH", 3)
    many = [await store.list_conversations(query) for query in QUERIES]
    assert many == few
    assert any(page.total > 10 for page in few)
