"""API keys in MongoDB; only unrevoked keys carry ``active_name``, unique and sparse."""

from __future__ import annotations

import logging
from uuid import uuid4

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from bot.errors import Conflict
from memory.base import (
    ApiKeyRecord,
    NewApiKey,
)
from memory.mongo.connection import (
    Document,
    MongoConnection,
    literal,
    utc,
    utc_or_none,
)
from memory.mongo.schema import (
    API_KEYS,
)
from memory.rules import (
    is_valid_id,
)

logger = logging.getLogger(__name__)


class MongoApiKeys(MongoConnection):
    """API keys, kept as SHA-256 hashes."""

    async def add_api_key(self, key: NewApiKey) -> ApiKeyRecord:
        """Insert unless the hash or an unrevoked name is taken (the unique indexes decide)."""
        doc: Document = {
            "_id": uuid4().hex,
            "name": key.name,
            "active_name": key.name,
            "scope": key.scope,
            "agents": list(key.agents),
            "platforms": list(key.platforms),
            "workspaces": list(key.workspaces),
            "key_hash": key.key_hash,
            "hint": key.hint,
            "created_at": self._now(),
            "last_used_at": None,
            "revoked_at": None,
        }
        with self._errors("add an API key"):
            try:
                await self._collection(API_KEYS).insert_one(doc)
            except DuplicateKeyError:
                raise Conflict(
                    f"an API key named {key.name!r} (or with that hash) already exists"
                ) from None
        return _api_key(doc)

    async def find_api_key(self, *, key_hash: str) -> ApiKeyRecord | None:
        with self._errors("find an API key"):
            doc = await self._collection(API_KEYS).find_one({"key_hash": literal(key_hash)})
        return None if doc is None else _api_key(doc)

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        with self._errors("list API keys"):
            cursor = self._collection(API_KEYS).find(
                {}, sort=[("created_at", ASCENDING), ("_id", ASCENDING)]
            )
            return [_api_key(doc) async for doc in cursor]

    async def revoke_api_key(self, *, key_id: str) -> bool:
        if not is_valid_id(key_id):
            return False
        with self._errors("revoke an API key"):
            result = await self._collection(API_KEYS).update_one(
                {"_id": key_id, "revoked_at": None},
                {"$set": {"revoked_at": self._now()}, "$unset": {"active_name": ""}},
            )
        return result.matched_count == 1

    async def touch_api_key(self, *, key_id: str) -> None:
        if not is_valid_id(key_id):
            return
        with self._errors("record an API key's use"):
            await self._collection(API_KEYS).update_one(
                {"_id": key_id}, {"$set": {"last_used_at": self._now()}}
            )


def _api_key(doc: Document) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=doc["_id"],
        name=doc["name"],
        scope=doc["scope"],
        agents=tuple(doc.get("agents", ())),
        platforms=tuple(doc.get("platforms", ())),
        workspaces=tuple(doc.get("workspaces", ())),
        key_hash=doc["key_hash"],
        hint=doc.get("hint", ""),
        created_at=utc(doc["created_at"]),
        last_used_at=utc_or_none(doc.get("last_used_at")),
        revoked_at=utc_or_none(doc.get("revoked_at")),
    )
