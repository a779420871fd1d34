"""The MongoDB collections, their indexes, and numbered migrations applied at ``open``.

A version document (``{_id: "schema", version: n}`` in ``parley_schema``) says how many
migrations the database has had. MongoDB has no schema transactions, so every migration is
idempotent: processes opening one database at once may run the same migration together, and
one that stops half-way is run again by the next ``open``. The version only ever grows
(``$max``). Databases from before numbered migrations have no version document (version 0). A
database with a version this release does not know was migrated by a newer release: it is
refused rather than guessed at.

To change the schema, append a migration; never edit one that has shipped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from bot.errors import StoreError
from memory.mongo import search
from memory.rules import search_grams

Document = dict[str, Any]
Migration = Callable[[AsyncDatabase[Document]], Awaitable[None]]

CONVERSATIONS = "conversations"
MESSAGES = "messages"
EVENTS = "processed_events"
GOAL_CHECKS = "goal_checks"
CLAIMS = "claims"
BINDINGS = "channel_bindings"
AGENTS = "agents"
API_KEYS = "api_keys"
JOURNAL = "journal"
SEARCH = "conversation_search"
MEMORIES = "memories"
KNOWLEDGE_DOCUMENTS = "knowledge_documents"
KNOWLEDGE_CHUNKS = "knowledge_chunks"
USAGE = "usage"
KEY_VALUES = "key_values"
"""Small values processes share, by ``_id`` (no index beyond it, so no migration)."""
FEEDBACK = "feedback"
VERSIONS = "parley_schema"

_BACKFILL_BATCH = 500
"""Conversations read per batch when a migration rewrites their search fields."""

_INDEXES_1: dict[str, list[IndexModel]] = {
    CONVERSATIONS: [
        IndexModel([("key_id", ASCENDING)], unique=True, sparse=True),
        # Listing pages read an index in the page's order (either direction): (filter, sort
        # time, _id) for every filter and order the console offers.
        *(
            IndexModel([*filter_field, (time_field, ASCENDING), ("_id", ASCENDING)])
            for filter_field in (
                [],
                [("agent_id", ASCENDING)],
                [("key.platform", ASCENDING)],
                [("key.workspace", ASCENDING)],
            )
            for time_field in ("updated_at", "created_at")
        ),
        *(
            IndexModel([("tags", ASCENDING), (time_field, ASCENDING), ("_id", ASCENDING)])
            for time_field in ("updated_at", "created_at")
        ),
        IndexModel(
            [("agent_id", ASCENDING), ("goal_pending", ASCENDING), ("last_message_at", ASCENDING)]
        ),
    ],
    MESSAGES: [IndexModel([("conversation_id", ASCENDING), ("seq", ASCENDING)], unique=True)],
    EVENTS: [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)],
    GOAL_CHECKS: [
        IndexModel([("conversation_id", ASCENDING), ("checked_at", DESCENDING), ("n", DESCENDING)]),
        IndexModel([("agent_id", ASCENDING), ("posted_at", ASCENDING)]),
        IndexModel([("agent_id", ASCENDING), ("checked_at", ASCENDING), ("n", ASCENDING)]),
    ],
    CLAIMS: [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)],
    BINDINGS: [IndexModel([("agent_id", ASCENDING), ("_id", ASCENDING)])],
    # Agents are keyed by ``_id`` (the agent id), which is unique already.
    API_KEYS: [
        IndexModel([("key_hash", ASCENDING)], unique=True),
        # Only unrevoked keys carry ``active_name`` (revoking unsets it), so a name is unique
        # among them and free again once its key is revoked.
        IndexModel([("active_name", ASCENDING)], unique=True, sparse=True),
        IndexModel([("created_at", ASCENDING), ("_id", ASCENDING)]),
    ],
    # Entries are keyed by ``_id`` (the platform's message id); ``place`` is the key's
    # canonical string and ``pending`` is true while the state is received or answered.
    JOURNAL: [
        IndexModel(
            [
                ("place", ASCENDING),
                ("pending", ASCENDING),
                ("position", ASCENDING),
                ("created_at", ASCENDING),
                ("_id", ASCENDING),
            ]
        ),
        IndexModel([("pending", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]),
        IndexModel([("pending", ASCENDING), ("updated_at", ASCENDING)]),
    ],
}
"""Version 1: every collection's indexes as they stood before numbered migrations."""


async def _indexes(db: AsyncDatabase[Document]) -> None:
    for name, indexes in _INDEXES_1.items():
        await db[name].create_indexes(indexes)


async def _search_grams(db: AsyncDatabase[Document]) -> None:
    """Version 2: text search through the multikey index on ``search_grams``.

    Each conversation gains its folded fields and grams (:mod:`memory.mongo.search`), and
    loses the ``lower()``-ed ``search`` string that a regex scanned before.
    """
    conversations = db[CONVERSATIONS]
    await conversations.create_indexes([search.GRAMS_INDEX])
    cursor = conversations.find(
        {}, projection={"title": True, "summary": True, "source": True}, sort=[("_id", ASCENDING)]
    ).batch_size(_BACKFILL_BATCH)
    async for doc in cursor:
        title, summary, source = doc.get("title", ""), doc.get("summary", ""), doc.get("source")
        await conversations.update_one(
            {"_id": doc["_id"], "title": title, "summary": summary, "source": source},
            {"$set": _fields_2(title, summary, source), "$unset": {"search": ""}},
        )


def _fields_2(title: str, summary: str, source: str | None) -> Document:
    """The search fields version 2 kept in each conversation."""
    text = search.folded(title, summary, source)
    return {"search_text": text, "search_grams": search_grams(text.values())}


async def _search_apart(db: AsyncDatabase[Document]) -> None:
    """Version 3: the search fields move to ``conversation_search``, one document per
    conversation with text, so that updates of a conversation (every message) no longer
    rewrite its grams' index entries; each conversation keeps a fingerprint of its folded
    fields instead (:mod:`memory.mongo.search`).

    Search documents already there were written by this release's writers, after the
    conversation: they are kept, and so are the fingerprints such a writer set (the
    conversation's text is no longer the text read). The conversations' grams index is
    dropped first, so that the updates here do not rewrite it.
    """
    conversations, found = db[CONVERSATIONS], db[SEARCH]
    await found.create_indexes([search.GRAMS_INDEX])
    if search.GRAMS_INDEX_NAME in await conversations.index_information():
        try:
            await conversations.drop_index(search.GRAMS_INDEX_NAME)
        except OperationFailure:
            # Another process running this migration at once dropped it first.
            if search.GRAMS_INDEX_NAME in await conversations.index_information():
                raise
    cursor = conversations.find(
        {},
        projection={"title": True, "summary": True, "source": True, search.SEQ: True},
        sort=[("_id", ASCENDING)],
    ).batch_size(_BACKFILL_BATCH)
    async for doc in cursor:
        title, summary, source = doc.get("title", ""), doc.get("summary", ""), doc.get("source")
        text = search.folded(title, summary, source)
        if any(text.values()):
            await found.update_one(
                {"_id": doc["_id"]},
                {"$setOnInsert": search.document(doc.get(search.SEQ, 0), text)},
                upsert=True,
            )
        await conversations.update_one(
            {
                "_id": doc["_id"],
                "title": title,
                "summary": summary,
                "source": source,
                search.HASH: {"$exists": False},
            },
            {"$set": {search.HASH: search.fingerprints(title, summary, source)}},
        )
    await conversations.update_many(
        {"$or": [{"search_grams": {"$exists": True}}, {"search_text": {"$exists": True}}]},
        {"$unset": {"search_grams": "", "search_text": ""}},
    )


async def _memories(db: AsyncDatabase[Document]) -> None:
    """Version 4: memories about people; a scope's current ones read newest first."""
    await db[MEMORIES].create_indexes(
        [
            IndexModel(
                [
                    ("platform", ASCENDING),
                    ("workspace", ASCENDING),
                    ("person", ASCENDING),
                    ("agent_id", ASCENDING),
                    ("superseded_by", ASCENDING),
                    ("created_at", DESCENDING),
                    ("_id", DESCENDING),
                ]
            ),
            IndexModel([("created_at", DESCENDING), ("_id", DESCENDING)]),
        ]
    )


async def _knowledge(db: AsyncDatabase[Document]) -> None:
    """Version 5: agents' documents; chunks found by their words (a multikey index)."""
    await db[KNOWLEDGE_DOCUMENTS].create_indexes(
        [IndexModel([("agent_id", ASCENDING), ("name", ASCENDING)], unique=True)]
    )
    await db[KNOWLEDGE_CHUNKS].create_indexes(
        [
            IndexModel([("agent_id", ASCENDING), ("terms", ASCENDING)]),
            IndexModel([("document_id", ASCENDING), ("n", ASCENDING)]),
        ]
    )


async def _usage(db: AsyncDatabase[Document]) -> None:
    """Version 6: model usage per call, summed by agent or conversation over a time range."""
    await db[USAGE].create_indexes(
        [
            IndexModel([("agent_id", ASCENDING), ("at", ASCENDING)]),
            IndexModel([("conversation_id", ASCENDING), ("at", ASCENDING)]),
            IndexModel([("at", ASCENDING)]),
        ]
    )


async def _feedback(db: AsyncDatabase[Document]) -> None:
    """Version 7: people's ratings of replies (the feedback buttons), found per reply and
    deleted per conversation."""
    await db[FEEDBACK].create_indexes(
        [
            IndexModel([("message_id", ASCENDING), ("rated_at", ASCENDING)]),
            IndexModel([("conversation_id", ASCENDING)]),
        ]
    )


MIGRATIONS: tuple[Migration, ...] = (
    _indexes,
    _search_grams,
    _search_apart,
    _memories,
    _knowledge,
    _usage,
    _feedback,
)
"""Migration ``n`` (from 1) brings a database from version ``n - 1`` to ``n``."""

LATEST = len(MIGRATIONS)


async def version(db: AsyncDatabase[Document]) -> int:
    doc = await db[VERSIONS].find_one({"_id": "schema"})
    return 0 if doc is None else int(doc["version"])


async def migrate(db: AsyncDatabase[Document]) -> int:
    """Apply the migrations the database has not had; returns the version it had.

    Raises StoreError for a database from a newer release.
    """
    found = await version(db)
    if found > LATEST:
        raise StoreError(
            f"the MongoDB database has schema version {found}, newer than this release knows"
            f" ({LATEST}): upgrade Parley or use another MONGODB_DB"
        )
    for number in range(found + 1, LATEST + 1):
        await MIGRATIONS[number - 1](db)
        await db[VERSIONS].update_one({"_id": "schema"}, {"$max": {"version": number}}, upsert=True)
    return found
