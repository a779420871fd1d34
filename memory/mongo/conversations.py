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
    FEEDBACK,
    GOAL_CHECKS,
    MESSAGES,
    SEARCH,
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
"""Up to this many text matches, a page reads the matching conversations by id and sorts them;
beyond, it walks the order's index and keeps the conversations that match."""

_ID_BATCH = 2000
"""The most conversation ids one ``$in`` holds when many matches are counted."""

_ID_INDEX = "_id_"


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
                    created = doc["_id"] == new_id
                    if created and doc[search.CHANGED]:
                        await self._write_search(doc)
                    return conversation_from_doc(doc), created
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
            search.SEQ: 0,
            search.HASH: search.fingerprints(title, "", None),
            search.CHANGED: bool(title),
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
        user: str | None = UNSET,
    ) -> Conversation | None:
        if not is_valid_id(conversation_id):
            return None
        changes: Document = {"updated_at": self._now()}
        if user is not UNSET:
            changes["user"] = user
        if data is not UNSET:
            changes["data"] = dump_json(data)
        if tags is not UNSET:
            changes["tags"] = list(tags)
        if agent_id is not UNSET:
            changes["agent_id"] = agent_id
        searched: dict[str, str | None] = {}
        if title is not UNSET:
            searched["title"] = title
        if source is not UNSET:
            searched["source"] = source
        update: Document | list[Document] = {"$set": changes}
        if searched:
            # A pipeline, so that the folded text is compared with the stored one in the write.
            literals = {field: {"$literal": value} for field, value in changes.items()}
            update = [{"$set": {**literals, **search.changing(searched)}}]
        with self._errors("update a conversation"):
            doc = await self._collection(CONVERSATIONS).find_one_and_update(
                {"_id": conversation_id}, update, return_document=ReturnDocument.AFTER
            )
            if doc is None:
                return None
            if searched and doc[search.CHANGED]:
                await self._write_search(doc)
        return conversation_from_doc(doc)

    async def set_summary(self, *, conversation_id: str, summary: str, summary_seq: int) -> bool:
        if not is_valid_id(conversation_id):
            return False
        with self._errors("store a summary"):
            doc = await self._collection(CONVERSATIONS).find_one_and_update(
                {"_id": conversation_id, "summary_seq": {"$lte": summary_seq}},
                [
                    {
                        "$set": {
                            "summary_seq": {"$literal": summary_seq},
                            **search.changing({"summary": summary}),
                        }
                    }
                ],
                projection={
                    "title": True,
                    "summary": True,
                    "source": True,
                    search.SEQ: True,
                    search.CHANGED: True,
                },
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:
                return False
            if doc[search.CHANGED]:
                await self._write_search(doc)
        return True

    async def _write_search(self, doc: Document) -> None:
        """Write the search document of ``doc``, a conversation as an update that changed its
        folded text returned it.

        Only over an older search document (:func:`search.write_filter`): of racing writers,
        the one whose update came last wins, whatever order their search writes come in.
        """
        seq = doc[search.SEQ]
        try:
            await self._collection(SEARCH).update_one(
                search.write_filter(doc["_id"], seq),
                {"$set": search.document(seq, _folded(doc))},
                upsert=True,
            )
        except DuplicateKeyError:
            logger.debug("a newer search text is stored already")

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
                return await self._search_page(query.text, query, conditions)
            items = tuple([conversation_from_doc(doc) async for doc in cursor])
        return ConversationPage(items=items, total=total)

    async def _search_page(
        self, text: str, query: ConversationQuery, conditions: Document
    ) -> ConversationPage:
        """A page of the conversations passing ``conditions`` whose text holds ``text``.

        The matching ids come from the grams index of ``conversation_search``; a page of few
        matches reads those conversations by id and sorts them, one of many walks the order's
        index instead (they come soon), as in SQLite. Search documents of deleted
        conversations match nothing here.
        """
        conversations = self._collection(CONVERSATIONS)
        cursor = self._collection(SEARCH).find(
            search.conditions(text), projection={"_id": True}, hint=search.GRAMS_INDEX_NAME
        )
        matched: list[str] = [doc["_id"] async for doc in cursor]
        if len(matched) <= _FEW_MATCHES:
            found = {**conditions, "_id": {"$in": matched}}
            total = await conversations.count_documents(found, hint=_ID_INDEX)
            page = conversations.find(
                found,
                sort=_SORTS[query.order],
                skip=query.offset,
                limit=query.limit,
                hint=_ID_INDEX,
            )
            items = tuple([conversation_from_doc(doc) async for doc in page])
            return ConversationPage(items=items, total=total)
        total = 0
        for start in range(0, len(matched), _ID_BATCH):
            chunk = matched[start : start + _ID_BATCH]
            total += await conversations.count_documents(
                {**conditions, "_id": {"$in": chunk}}, hint=_ID_INDEX
            )
        wanted, ids = set(matched), []
        if query.offset < total:
            skip = query.offset
            walk = conversations.find(
                conditions, projection={"_id": True}, sort=_SORTS[query.order]
            )
            try:
                async for doc in walk:
                    if doc["_id"] not in wanted:
                        continue
                    if skip:
                        skip -= 1
                        continue
                    ids.append(doc["_id"])
                    if len(ids) == query.limit:
                        break
            finally:
                await walk.close()
        docs = {
            doc["_id"]: doc
            async for doc in conversations.find({"_id": {"$in": ids}}, hint=_ID_INDEX)
        }
        items = tuple(conversation_from_doc(docs[id_]) for id_ in ids if id_ in docs)
        return ConversationPage(items=items, total=total)

    async def delete_conversation(self, *, conversation_id: str) -> bool:
        if not is_valid_id(conversation_id):
            return False
        with self._errors("delete a conversation"):
            result = await self._collection(CONVERSATIONS).delete_one({"_id": conversation_id})
            await self._collection(MESSAGES).delete_many({"conversation_id": conversation_id})
            await self._collection(GOAL_CHECKS).delete_many({"conversation_id": conversation_id})
            await self._collection(FEEDBACK).delete_many({"conversation_id": conversation_id})
            await self._collection(SEARCH).delete_one({"_id": conversation_id})
        return result.deleted_count == 1


def _folded(doc: Document) -> Document:
    return search.folded(doc.get("title", ""), doc.get("summary", ""), doc.get("source"))


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
        user=doc.get("user"),
    )


def _goal_state(doc: Document) -> GoalState:
    return GoalState(
        reached=doc["reached"],
        checked_at=utc(doc["checked_at"]),
        covered_seq=doc["covered_seq"],
        summary=doc.get("summary", ""),
        missing=tuple(doc.get("missing", ())),
    )
