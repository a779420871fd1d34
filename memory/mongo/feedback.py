"""Ratings of replies in MongoDB: one document per (reply, person)."""

from __future__ import annotations

from pymongo import ASCENDING, ReturnDocument

from memory.base import Feedback, Platform, Rating
from memory.mongo.connection import Document, MongoConnection, literal, utc
from memory.mongo.schema import FEEDBACK, MESSAGES
from memory.rules import is_valid_id


class MongoFeedback(MongoConnection):
    """Ratings of replies, deleted with their conversation."""

    async def rate_message(
        self, *, message_id: str, platform: Platform, person: str, rating: Rating
    ) -> tuple[Feedback, Rating | None] | None:
        if not is_valid_id(message_id):
            return None
        now = self._now()
        with self._errors("rate a reply"):
            reply = await self._collection(MESSAGES).find_one(
                {"_id": message_id, "role": "assistant"}, projection={"conversation_id": True}
            )
            if reply is None:
                return None
            conversation_id = str(reply["conversation_id"])
            before = await self._collection(FEEDBACK).find_one_and_update(
                {"_id": f"{message_id}:{person}"},
                {
                    "$set": {
                        "message_id": message_id,
                        "person": literal(person),
                        "conversation_id": conversation_id,
                        "platform": platform,
                        "rating": rating,
                        "rated_at": now,
                    }
                },
                upsert=True,
                return_document=ReturnDocument.BEFORE,
            )
        earlier: Rating | None = None if before is None else before["rating"]
        stored = Feedback(
            message_id=message_id,
            conversation_id=conversation_id,
            platform=platform,
            person=person,
            rating=rating,
            rated_at=now,
        )
        return stored, earlier

    async def list_feedback(self, *, message_id: str) -> list[Feedback]:
        if not is_valid_id(message_id):
            return []
        with self._errors("list ratings"):
            cursor = self._collection(FEEDBACK).find(
                {"message_id": message_id},
                sort=[("rated_at", ASCENDING), ("person", ASCENDING)],
            )
            return [_feedback(doc) async for doc in cursor]


def _feedback(doc: Document) -> Feedback:
    return Feedback(
        message_id=doc["message_id"],
        conversation_id=doc["conversation_id"],
        platform=doc["platform"],
        person=doc["person"],
        rating=doc["rating"],
        rated_at=utc(doc["rated_at"]),
    )
