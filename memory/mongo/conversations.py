"""Conversations in MongoDB: one document each, keyed by id; ``key_id`` (the place) is set
only while open, under a unique sparse index."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from uuid import uuid4

from pydantic import JsonValue
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from bot.errors import StoreError
from memory.base import (
    Conversation,
    ConversationOrder,
    ConversationPage,
    ConversationQuery,
    GoalState,
    PlatformKey,
)
from memory.mongo import search
from memory.mongo.connection import (
    UPSERT_ATTEMPTS,
    Document,
    MongoConnection,
    dump_json,
    literal,
    load_json,
    utc,
    utc_or_none,
)
from memory.mongo.schema import (
    CONVERSATIONS,
    GOAL_CHECKS,
    MESSAGES,
)
from memory.rules import (
    UNSET,
    is_valid_id,
)

logger = logging.getLogger(__name__)

_SORTS: dict[ConversationOrder, list[tuple[str, int]]] = {
    "updated_desc": [("updated_at", DESCENDING), ("_id", DESCENDING)],
    "updated_asc": [("updated_at", ASCENDING), ("_id", ASCENDING)],
    "created_desc": [("created_at", DESCENDING), ("_id", DESCENDING)],
    "created_asc": [("created_at", ASCENDING), ("_id", ASCENDING)],
}

_FEW_MATCHES = 2000
"""Up to this many text matches, a page reads them through the grams index and sorts them;
beyond, it walks the order's index and checks each conversation against the search."""


class MongoConversations(MongoConnection):
    """Conversations: one open conversation per place, listed, searched, updated, deleted."""

    async def get_or_create_conversation(
        self, *, key: PlatformKey, agent_id: str, title: str = ""
    ) -> tuple[Conversation, bool]:
        conversations = self._collection(CONVERSATIONS)
        with self._errors("get or create a conversation"):
            for attempt in range(1, UPSERT_ATTEMPTS + 1):
                now = self._now()
                new_id = uuid4().hex
                try:
                    doc = await conversations.find_one_and_update(
                        {"key_id": key.canonical},
                        {"$setOnInsert": self._new_conversation(new_id, key, agent_id, title, now)},
                        upsert=True,
                        return_document=ReturnDocument.AFTER,
                    )
                except DuplicateKeyError:
                    # Two upserts raced to insert; the loser finds the winner's document next.
                    logger.debug("conversation upsert raced (attempt %d)", attempt)
                    continue
                if doc is not None:
                    return conversation_from_doc(doc), doc["_id"] == new_id
        raise StoreError("could not get or create the conversation: too many concurrent writers")

    @staticmethod
    def _new_conversation(
        conversation_id: str, key: PlatformKey, agent_id: str, title: str, now: datetime
    ) -> Document:
        return {
            "_id": conversation_id,
            "key": key.model_dump(),
            "agent_id": agent_id,
            "created_at": now,
            "updated_at": now,
            "closed_at": None,
            "title": title,
            "data": dump_json({}),
            "source": None,
            "tags": [],
            "summary": "",
            "summary_seq": 0,
            "message_count": 0,
            "last_message_at": None,
            "goal": None,
            "goal_pending": False,
            "goal_check_count": 0,
            **search.fields(title, "", None),
        }

    async def find_conversation(self, *, key: PlatformKey) -> Conversation | None:
        with self._errors("find a conversation"):
            doc = await self._collection(CONVERSATIONS).find_one({"key_id": key.canonical})
        return None if doc is None else conversation_from_doc(doc)

    async def get_conversation(self, *, conversation_id: str) -> Conversation | None:
        if not is_valid_id(conversation_id):
            return None
        with self._errors("read a conversation"):
            doc = await self._collection(CONVERSATIONS).find_one({"_id": conversation_id})
        return None if doc is None else conversation_from_doc(doc)

    async def close_conversation(self, *, conversation_id: str) -> bool:
        if not is_valid_id(conversation_id):
            return False
        now = self._now()
        with self._errors("close a conversation"):
            result = await self._collection(CONVERSATIONS).update_one(
                {"_id": conversation_id, "closed_at": None},
                {"$set": {"closed_at": now, "updated_at": now}, "$unset": {"key_id": ""}},
            )
        return result.matched_count == 1

    async def update_conversation(
        self,
        *,
        conversation_id: str,
        data: dict[str, JsonValue] = UNSET,
        source: str | None = UNSET,
        tags: Sequence[str] = UNSET,
        agent_id: str = UNSET,
        title: str = UNSET,
    ) -> Conversation | None:
        if not is_valid_id(conversation_id):
            return None
        changes: Document = {"updated_at": self._now()}
        if data is not UNSET:
            changes["data"] = dump_json(data)
        if source is not UNSET:
            changes["source"] = source
        if tags is not UNSET:
            changes["tags"] = list(tags)
        if agent_id is not UNSET:
            changes["agent_id"] = agent_id
        if title is not UNSET:
            changes["title"] = title
        with self._errors("update a conversation"):
            doc = await self._collection(CONVERSATIONS).find_one_and_update(
                {"_id": conversation_id},
                {"$set": changes},
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:
                return None
            await self._sync_search(doc)
        return conversation_from_doc(doc)

    async def set_summary(self, *, conversation_id: str, summary: str, summary_seq: int) -> bool:
        if not is_valid_id(conversation_id):
            return False
        with self._errors("store a summary"):
            doc = await self._collection(CONVERSATIONS).find_one_and_update(
                {"_id": conversation_id, "summary_seq": {"$lte": summary_seq}},
                {"$set": {"summary": summary, "summary_seq": summary_seq}},
                projection={"title": True, "summary": True, "source": True, "search_text": True},
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:
                return False
            await self._sync_search(doc)
        return True

    async def _sync_search(self, doc: Document) -> None:
        """Bring the search fields in line with the title, summary and source just written.

        Conditional on those three being unchanged, so a racing writer's newer values are never
        overwritten by stale text: whichever writer changed them last also sets them last.
        """
        title, summary, source = doc.get("title", ""), doc.get("summary", ""), doc.get("source")
        wanted = search.fields(title, summary, source)
        if doc.get("search_text") == wanted["search_text"]:
            return
        await self._collection(CONVERSATIONS).update_one(
            {"_id": doc["_id"], "title": title, "summary": summary, "source": source},
            {"$set": wanted},
        )
        doc.update(wanted)

    async def list_conversations(self, query: ConversationQuery) -> ConversationPage:
        conditions: Document = {}
        for field, value, limits in (
            ("agent_id", query.agent_id, query.agent_ids),
            ("key.platform", query.platform, query.platforms),
            ("key.workspace", query.workspace, query.workspaces),
        ):
            if value is not None and limits and value not in limits:
                conditions[field] = {"$in": []}
            elif value is not None:
                conditions[field] = literal(value)
            elif limits:
                conditions[field] = {"$in": [literal(limit) for limit in limits]}
        if query.tag is not None:
            conditions["tags"] = query.tag
        if not query.include_closed:
            conditions["closed_at"] = None
        conversations = self._collection(CONVERSATIONS)
        with self._errors("list conversations"):
            if not query.text:
                total = await conversations.count_documents(conditions)
                cursor = conversations.find(
                    conditions, sort=_SORTS[query.order], skip=query.offset, limit=query.limit
                )
            else:
                # Counted through the grams index; a page of few matches sorts them, one of
                # many walks the order's index instead (they come soon), as in SQLite.
                conditions.update(search.conditions(query.text))
                total = await conversations.count_documents(
                    conditions, hint=search.GRAMS_INDEX_NAME
                )
                hint = search.GRAMS_INDEX_NAME if total <= _FEW_MATCHES else None
                cursor = conversations.find(
                    conditions,
                    sort=_SORTS[query.order],
                    skip=query.offset,
                    limit=query.limit,
                    hint=hint,
                )
            items = tuple([conversation_from_doc(doc) async for doc in cursor])
        return ConversationPage(items=items, total=total)

    async def delete_conversation(self, *, conversation_id: str) -> bool:
        if not is_valid_id(conversation_id):
            return False
        with self._errors("delete a conversation"):
            result = await self._collection(CONVERSATIONS).delete_one({"_id": conversation_id})
            await self._collection(MESSAGES).delete_many({"conversation_id": conversation_id})
            await self._collection(GOAL_CHECKS).delete_many({"conversation_id": conversation_id})
        return result.deleted_count == 1


def conversation_from_doc(doc: Document) -> Conversation:
    goal = doc.get("goal")
    return Conversation(
        id=doc["_id"],
        agent_id=doc["agent_id"],
        key=PlatformKey(**doc["key"]),
        created_at=utc(doc["created_at"]),
        updated_at=utc(doc["updated_at"]),
        closed_at=utc_or_none(doc.get("closed_at")),
        title=doc.get("title", ""),
        data=load_json(doc.get("data")) or {},
        source=doc.get("source"),
        tags=tuple(doc.get("tags", ())),
        summary=doc.get("summary", ""),
        summary_seq=doc.get("summary_seq", 0),
        message_count=doc.get("message_count", 0),
        last_message_at=utc_or_none(doc.get("last_message_at")),
        goal=None if goal is None else _goal_state(goal),
        goal_pending=doc.get("goal_pending", False),
    )


def _goal_state(doc: Document) -> GoalState:
    return GoalState(
        reached=doc["reached"],
        checked_at=utc(doc["checked_at"]),
        covered_seq=doc["covered_seq"],
        summary=doc.get("summary", ""),
        missing=tuple(doc.get("missing", ())),
    )
