"""Channel bindings in SQLite: one row per (platform, workspace, channel)."""

from __future__ import annotations

from memory.base import (
    ChannelBinding,
    Platform,
)
from memory.rules import wants_rows
from memory.sqlite.connection import SqliteConnection
from memory.sqlite.sql import (
    change,
    fetch,
)

_BIND = """
INSERT INTO channel_bindings (platform, workspace, channel, agent_id, updated_at)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (platform, workspace, channel)
DO UPDATE SET agent_id = excluded.agent_id, updated_at = excluded.updated_at
"""


class SqliteBindings(SqliteConnection):
    """Channels bound to an agent."""

    async def bind_channel(
        self, *, platform: Platform, workspace: str, channel: str, agent_id: str
    ) -> None:
        async with self._connection() as db:
            await change(db, _BIND, (platform, workspace, channel, agent_id, self._now_ms()))

    async def channel_agent(
        self, *, platform: Platform, workspace: str, channel: str
    ) -> str | None:
        async with self._connection() as db:
            cursor = await db.execute(
                "SELECT agent_id FROM channel_bindings"
                " WHERE platform = ? AND workspace = ? AND channel = ?",
                (platform, workspace, channel),
            )
            row = await cursor.fetchone()
        return None if row is None else str(row[0])

    async def list_channel_bindings(
        self, *, agent_id: str | None = None, limit: int = 1000
    ) -> list[ChannelBinding]:
        if not wants_rows(limit):
            return []
        columns = "SELECT platform, workspace, channel, agent_id FROM channel_bindings"
        order = "ORDER BY platform, workspace, channel LIMIT ?"
        async with self._connection() as db:
            if agent_id is None:
                rows = await fetch(db, f"{columns} {order}", (limit,))
            else:
                rows = await fetch(db, f"{columns} WHERE agent_id = ? {order}", (agent_id, limit))
        return [ChannelBinding(**dict(row)) for row in rows]
