"""Processed platform events and claims in MongoDB: upserts on ``_id`` that only match an
expired (or own) record, expired by TTL indexes; and small shared values by ``_id``."""

from __future__ import annotations

import logging
from datetime import timedelta

from pymongo.errors import DuplicateKeyError

from memory.mongo.connection import (
    Document,
    MongoConnection,
)
from memory.mongo.schema import (
    CLAIMS,
    EVENTS,
    KEY_VALUES,
)
from memory.rules import (
    truncate_ms,
)

logger = logging.getLogger(__name__)


class MongoCoordination(MongoConnection):
    """Processed platform events, expiring claims and shared values."""

    async def mark_event_processed(self, *, event_id: str, ttl_seconds: int = 86_400) -> bool:
        now = self._now()
        expires_at = truncate_ms(now + timedelta(seconds=ttl_seconds))
        return await self._take(
            EVENTS,
            {"_id": event_id, "expires_at": {"$lte": now}},
            {"expires_at": expires_at},
            action="record an event",
        )

    async def claim(self, *, key: str, owner: str, ttl_seconds: float) -> bool:
        now = self._now()
        expires_at = truncate_ms(now + timedelta(seconds=ttl_seconds))
        return await self._take(
            CLAIMS,
            {"_id": key, "$or": [{"owner": owner}, {"expires_at": {"$lte": now}}]},
            {"owner": owner, "expires_at": expires_at},
            action="claim a key",
        )

    async def release_claim(self, *, key: str, owner: str) -> bool:
        with self._errors("release a claim"):
            result = await self._collection(CLAIMS).delete_one({"_id": key, "owner": owner})
        return result.deleted_count == 1

    async def get_value(self, *, name: str) -> str | None:
        with self._errors("read a value"):
            found = await self._collection(KEY_VALUES).find_one({"_id": name})
        return None if found is None else str(found["value"])

    async def set_value(self, *, name: str, value: str) -> None:
        with self._errors("write a value"):
            await self._collection(KEY_VALUES).update_one(
                {"_id": name},
                {"$set": {"value": value, "updated_at": truncate_ms(self._now())}},
                upsert=True,
            )

    async def _take(
        self, collection: str, conditions: Document, fields: Document, *, action: str
    ) -> bool:
        """Upsert the record ``conditions`` selects by ``_id``; False if another one holds it.

        When a record with that ``_id`` exists but does not match, the upsert tries to insert
        a second one and the ``_id`` index refuses it: the check and the write are one atomic
        operation, so of any number of racing callers exactly one wins.
        """
        with self._errors(action):
            try:
                result = await self._collection(collection).update_one(
                    conditions, {"$set": fields}, upsert=True
                )
            except DuplicateKeyError:
                return False
        return result.upserted_id is not None or result.matched_count == 1
