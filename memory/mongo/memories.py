"""Remembered facts about people in MongoDB: one document per memory; a scope's current
memories are read newest first through an index and ranked by :mod:`memory.recall`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from uuid import uuid4

from pymongo import DESCENDING

from memory.base import Memory, MemoryQuery, MemoryScope, NewMemory
from memory.mongo.connection import Document, MongoConnection, utc
from memory.mongo.schema import MEMORIES
from memory.recall import MAX_HISTORY, MAX_RECALL_SCAN, rank
from memory.rules import fold, is_valid_id, paired_vectors, wants_rows

_NEWEST = [("created_at", DESCENDING), ("_id", DESCENDING)]


class MongoMemories(MongoConnection):
    """Facts about people."""

    async def add_memories(
        self, memories: Sequence[NewMemory], vectors: Sequence[bytes | None] = ()
    ) -> list[Memory]:
        if not memories:
            return []
        embeddings = paired_vectors(len(memories), vectors, "memory")
        now = self._now()
        added = [
            Memory(**memory.model_dump(), id=uuid4().hex, created_at=now) for memory in memories
        ]
        collection = self._collection(MEMORIES)
        with self._errors("keep memories"):
            await collection.insert_many(
                [
                    _document(memory, embedding)
                    for memory, embedding in zip(added, embeddings, strict=True)
                ]
            )
            for memory in added:
                if memory.supersedes is not None:
                    await collection.update_one(
                        {
                            "_id": memory.supersedes,
                            **_scope(memory.scope),
                            "superseded_by": None,
                        },
                        {"$set": {"superseded_by": memory.id}},
                    )
        return added

    async def recall_memories(
        self, scope: MemoryScope, *, query: str, include_private: bool, limit: int
    ) -> list[Memory]:
        if not wants_rows(limit):
            return []
        conditions: Document = {**_scope(scope), "superseded_by": None}
        if not include_private:
            conditions["private"] = False
        with self._errors("recall memories"):
            docs = await (
                self._collection(MEMORIES)
                .find(conditions, sort=_NEWEST)
                .limit(MAX_RECALL_SCAN)
                .to_list()
            )
        return rank((_memory(doc) for doc in docs), query, limit)

    async def memory_vectors(
        self, scope: MemoryScope, *, include_private: bool, limit: int
    ) -> list[tuple[str, bytes]]:
        if not wants_rows(limit):
            return []
        conditions: Document = {**_scope(scope), "superseded_by": None, "embedding": {"$ne": None}}
        if not include_private:
            conditions["private"] = False
        with self._errors("read memory vectors"):
            docs = await (
                self._collection(MEMORIES)
                .find(conditions, projection={"embedding": 1}, sort=_NEWEST)
                .limit(min(limit, MAX_RECALL_SCAN))
                .to_list()
            )
        return [(doc["_id"], bytes(doc["embedding"])) for doc in docs]

    async def list_memories(self, query: MemoryQuery) -> list[Memory]:
        if not wants_rows(query.limit):
            return []
        conditions: Document = {}
        for field in ("platform", "workspace", "person", "agent_id"):
            value = getattr(query, field)
            if value is not None:
                conditions[field] = value
        if not query.include_superseded:
            conditions["superseded_by"] = None
        if query.text:
            conditions["folded"] = {"$regex": re.escape(fold(query.text))}
        with self._errors("list memories"):
            docs = await (
                self._collection(MEMORIES)
                .find(conditions, sort=_NEWEST)
                .limit(query.limit)
                .to_list()
            )
        return [_memory(doc) for doc in docs]

    async def get_memory(self, *, memory_id: str) -> Memory | None:
        if not is_valid_id(memory_id):
            return None
        with self._errors("read a memory"):
            doc = await self._collection(MEMORIES).find_one({"_id": memory_id})
        return None if doc is None else _memory(doc)

    async def supersede_memories(
        self, *, scope: MemoryScope, pairs: Sequence[tuple[str, str]]
    ) -> int:
        collection = self._collection(MEMORIES)
        marked = 0
        with self._errors("supersede memories"):
            for old, new in pairs:
                if old == new or not (is_valid_id(old) and is_valid_id(new)):
                    continue
                current = {**_scope(scope), "superseded_by": None}
                if await collection.find_one({"_id": new, **current}, projection={"_id": 1}):
                    result = await collection.update_one(
                        {"_id": old, **current}, {"$set": {"superseded_by": new}}
                    )
                    marked += result.modified_count
        return marked

    async def forget_memories(
        self, *, ids: Sequence[str] = (), scope: MemoryScope | None = None
    ) -> int:
        wanted = [memory_id for memory_id in ids if is_valid_id(memory_id)]
        gone = 0
        collection = self._collection(MEMORIES)
        with self._errors("forget memories"):
            if wanted:
                gone += (await collection.delete_many({"_id": {"$in": wanted}})).deleted_count
            replaced = wanted  # and the history each replaced
            for _ in range(MAX_HISTORY):
                if not replaced:
                    break
                older = await collection.find(
                    {"superseded_by": {"$in": replaced}}, projection={"_id": 1}
                ).to_list()
                replaced = [doc["_id"] for doc in older]
                if replaced:
                    result = await collection.delete_many({"_id": {"$in": replaced}})
                    gone += result.deleted_count
            if scope is not None:
                gone += (await collection.delete_many(_scope(scope))).deleted_count
        return gone


def _scope(scope: MemoryScope) -> Document:
    return {
        "platform": scope.platform,
        "workspace": scope.workspace,
        "person": scope.person,
        "agent_id": scope.agent_id,
    }


def _document(memory: Memory, embedding: bytes | None = None) -> Document:
    return {
        "embedding": embedding,
        "_id": memory.id,
        **_scope(memory.scope),
        "text": memory.text,
        "folded": fold(memory.text),
        "private": memory.private,
        "conversation_id": memory.conversation_id,
        "message_id": memory.message_id,
        "supersedes": memory.supersedes,
        "superseded_by": None,
        "created_at": memory.created_at,
    }


def _memory(doc: Document) -> Memory:
    return Memory(
        id=doc["_id"],
        scope=MemoryScope(
            platform=doc["platform"],
            workspace=doc["workspace"],
            person=doc["person"],
            agent_id=doc["agent_id"],
        ),
        text=doc["text"],
        private=doc["private"],
        conversation_id=doc.get("conversation_id"),
        message_id=doc.get("message_id"),
        supersedes=doc.get("supersedes"),
        created_at=utc(doc["created_at"]),
        superseded_by=doc.get("superseded_by"),
    )
