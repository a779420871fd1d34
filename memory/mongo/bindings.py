"""Channel bindings in MongoDB, keyed by the channel's canonical place."""

from __future__ import annotations

import logging

from pymongo import ASCENDING

from memory.base import (
    ChannelBinding,
    Platform,
    PlatformKey,
)
from memory.mongo.connection import (
    Document,
    MongoConnection,
    literal,
)
from memory.mongo.schema import (
    BINDINGS,
)
from memory.rules import wants_rows

logger = logging.getLogger(__name__)


class MongoBindings(MongoConnection):
    """Channels bound to an agent."""

    async def bind_channel(
        self, *, platform: Platform, workspace: str, channel: str, agent_id: str
    ) -> None:
        with self._errors("bind a channel"):
            await self._collection(BINDINGS).update_one(
                {"_id": _binding_id(platform, workspace, channel)},
                {"$set": {"agent_id": agent_id, "updated_at": self._now()}},
                upsert=True,
            )

    async def channel_agent(
        self, *, platform: Platform, workspace: str, channel: str
    ) -> str | None:
        with self._errors("read a channel binding"):
            doc = await self._collection(BINDINGS).find_one(
                {"_id": _binding_id(platform, workspace, channel)}
            )
        return None if doc is None else str(doc["agent_id"])

    async def list_channel_bindings(
        self, *, agent_id: str | None = None, limit: int = 1000
    ) -> list[ChannelBinding]:
        if not wants_rows(limit):
            return []
        conditions: Document = {} if agent_id is None else {"agent_id": literal(agent_id)}
        with self._errors("list channel bindings"):
            cursor = self._collection(BINDINGS).find(
                conditions, sort=[("_id", ASCENDING)], limit=limit
            )
            return [_binding(doc) async for doc in cursor]


def _binding_id(platform: Platform, workspace: str, channel: str) -> str:
    return PlatformKey(platform=platform, workspace=workspace, channel=channel).canonical


def _binding(doc: Document) -> ChannelBinding:
    """The binding whose ``_id`` is its canonical key (no part may hold the separator)."""
    platform, workspace, channel, _thread = str(doc["_id"]).split("\x1f")
    return ChannelBinding(
        platform=platform,
        workspace=workspace,
        channel=channel,
        agent_id=doc["agent_id"],
    )
