"""Messages in MongoDB, numbered by an ``$inc`` of their conversation's ``message_count``."""

from __future__ import annotations

import logging
from uuid import uuid4

from pymongo import ASCENDING, DESCENDING, ReturnDocument

from bot.errors import NotFound
from memory.base import (
    Message,
    NewMessage,
    unchecked,
)
from memory.mongo.connection import (
    Document,
    MongoConnection,
    dump_json,
    load_json,
    utc,
)
from memory.mongo.schema import (
    CONVERSATIONS,
    MESSAGES,
)
from memory.rules import (
    is_valid_id,
    wants_rows,
)

logger = logging.getLogger(__name__)


class MongoMessages(MongoConnection):
    """Messages, read in windows through the (conversation_id, seq) index."""

    async def append_message(self, *, conversation_id: str, message: NewMessage) -> Message:
        if not is_valid_id(conversation_id):
            raise NotFound(f"conversation {conversation_id!r} not found")
        now = self._now()
        with self._errors("append a message"):
            conversation = await self._collection(CONVERSATIONS).find_one_and_update(
                {"_id": conversation_id},
                {
                    "$inc": {"message_count": 1},
                    "$set": {"updated_at": now, "last_message_at": now, "goal_pending": True},
                },
                projection={"message_count": True},
                return_document=ReturnDocument.AFTER,
            )
            if conversation is None:
                raise NotFound(f"conversation {conversation_id} not found")
            doc: Document = {
                "_id": uuid4().hex,
                "conversation_id": conversation_id,
                "seq": conversation["message_count"],
                "role": message.role,
                "author_id": message.author_id,
                "author_name": message.author_name,
                "text": message.text,
                "data": dump_json(message.data),
                "platform_message_id": message.platform_message_id,
                "created_at": now,
                "token_count": message.token_count,
                "error": message.error,
            }
            if message.sources:
                doc["sources"] = list(message.sources)
            await self._collection(MESSAGES).insert_one(doc)
        return _message(doc)

    async def list_messages(
        self,
        *,
        conversation_id: str,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[Message]:
        if not wants_rows(limit) or not is_valid_id(conversation_id):
            return []
        conditions: Document = {"conversation_id": conversation_id}
        seq: Document = {}
        if after_seq is not None:
            seq["$gt"] = after_seq
        if before_seq is not None:
            seq["$lt"] = before_seq
        if seq:
            conditions["seq"] = seq
        direction = DESCENDING if newest_first else ASCENDING
        with self._errors("list messages"):
            cursor = self._collection(MESSAGES).find(
                conditions, sort=[("seq", direction)], limit=limit
            )
            return [_message(doc) async for doc in cursor]


def _message(doc: Document) -> Message:
    return unchecked(
        Message,
        id=doc["_id"],
        conversation_id=doc["conversation_id"],
        seq=doc["seq"],
        role=doc["role"],
        author_id=doc.get("author_id", ""),
        author_name=doc.get("author_name", ""),
        text=doc["text"],
        data=load_json(doc.get("data")),
        platform_message_id=doc.get("platform_message_id"),
        created_at=utc(doc["created_at"]),
        token_count=doc.get("token_count", 0),
        error=doc.get("error"),
        sources=tuple(doc.get("sources") or ()),
    )
