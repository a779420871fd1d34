"""Stored agents in SQLite: their definitions as JSON text."""

from __future__ import annotations

import json
import sqlite3

from pydantic import JsonValue

from bot.errors import Conflict
from memory.base import (
    StoredAgent,
)
from memory.rules import wants_rows
from memory.sqlite.connection import SqliteConnection
from memory.sqlite.sql import (
    change,
    dumps,
    fetch,
    from_ms,
    to_ms,
)

_INSERT_AGENT = """
INSERT INTO agents (id, definition, created_at, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (id) DO NOTHING
"""


class SqliteAgents(SqliteConnection):
    """Agents created through the API."""

    async def create_agent(self, *, agent_id: str, definition: dict[str, JsonValue]) -> StoredAgent:
        now = self._now()
        row = (agent_id, dumps(definition), to_ms(now), to_ms(now))
        async with self._connection() as db:
            created = await change(db, _INSERT_AGENT, row) == 1
        if not created:
            raise Conflict(f"agent {agent_id!r} already exists")
        return StoredAgent(id=agent_id, definition=definition, created_at=now, updated_at=now)

    async def replace_agent(
        self, *, agent_id: str, definition: dict[str, JsonValue]
    ) -> StoredAgent | None:
        async with self._connection() as db:
            rows = await fetch(
                db,
                "UPDATE agents SET definition = ?, updated_at = ? WHERE id = ? RETURNING *",
                (dumps(definition), self._now_ms(), agent_id),
            )
        return _agent(rows[0]) if rows else None

    async def get_agent(self, *, agent_id: str) -> StoredAgent | None:
        async with self._connection() as db:
            rows = await fetch(db, "SELECT * FROM agents WHERE id = ?", (agent_id,))
        return _agent(rows[0]) if rows else None

    async def list_agents(self, *, limit: int = 1000) -> list[StoredAgent]:
        if not wants_rows(limit):
            return []
        async with self._connection() as db:
            rows = await fetch(db, "SELECT * FROM agents ORDER BY id LIMIT ?", (limit,))
        return [_agent(row) for row in rows]

    async def delete_agent(self, *, agent_id: str) -> bool:
        async with self._connection() as db:
            deleted = await change(db, "DELETE FROM agents WHERE id = ?", (agent_id,))
        return deleted == 1


def _agent(row: sqlite3.Row) -> StoredAgent:
    return StoredAgent(
        id=row["id"],
        definition=json.loads(row["definition"]),
        created_at=from_ms(row["created_at"]),
        updated_at=from_ms(row["updated_at"]),
    )
