"""Stored agents in MongoDB, keyed by the agent id; definitions as JSON text."""

from __future__ import annotations

import logging

from pydantic import JsonValue
from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from bot.errors import Conflict
from memory.base import (
    StoredAgent,
)
from memory.mongo.connection import (
    Document,
    MongoConnection,
    dump_json,
    literal,
    load_json,
    utc,
)
from memory.mongo.schema import (
    AGENTS,
)
from memory.rules import wants_rows

logger = logging.getLogger(__name__)


class MongoAgents(MongoConnection):
    """Agents created through the API."""

    async def create_agent(self, *, agent_id: str, definition: dict[str, JsonValue]) -> StoredAgent:
        now = self._now()
        doc: Document = {
            "_id": literal(agent_id),
            "definition": dump_json(definition),
            "created_at": now,
            "updated_at": now,
        }
        with self._errors("create an agent"):
            try:
                await self._collection(AGENTS).insert_one(doc)
            except DuplicateKeyError:
                raise Conflict(f"agent {agent_id!r} already exists") from None
        return _stored_agent(doc)

    async def replace_agent(
        self, *, agent_id: str, definition: dict[str, JsonValue]
    ) -> StoredAgent | None:
        with self._errors("replace an agent"):
            doc = await self._collection(AGENTS).find_one_and_update(
                {"_id": literal(agent_id)},
                {"$set": {"definition": dump_json(definition), "updated_at": self._now()}},
                return_document=ReturnDocument.AFTER,
            )
        return None if doc is None else _stored_agent(doc)

    async def get_agent(self, *, agent_id: str) -> StoredAgent | None:
        with self._errors("read an agent"):
            doc = await self._collection(AGENTS).find_one({"_id": literal(agent_id)})
        return None if doc is None else _stored_agent(doc)

    async def list_agents(self, *, limit: int = 1000) -> list[StoredAgent]:
        if not wants_rows(limit):
            return []
        with self._errors("list agents"):
            cursor = self._collection(AGENTS).find({}, sort=[("_id", ASCENDING)], limit=limit)
            return [_stored_agent(doc) async for doc in cursor]

    async def delete_agent(self, *, agent_id: str) -> bool:
        with self._errors("delete an agent"):
            result = await self._collection(AGENTS).delete_one({"_id": literal(agent_id)})
        return result.deleted_count == 1


def _stored_agent(doc: Document) -> StoredAgent:
    return StoredAgent(
        id=doc["_id"],
        definition=load_json(doc["definition"]),
        created_at=utc(doc["created_at"]),
        updated_at=utc(doc["updated_at"]),
    )
