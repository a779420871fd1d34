"""What lets processes share work, in SQLite: processed events and claims, both expiring, and
small shared values."""

from __future__ import annotations

import logging

from bot.errors import StoreError
from memory.sqlite.connection import SqliteConnection, prune_expired
from memory.sqlite.sql import (
    change,
    fetch,
)

log = logging.getLogger(__name__)

_MARK_EVENT = """
INSERT INTO processed_events (event_id, expires_at) VALUES (?, ?)
ON CONFLICT (event_id) DO UPDATE SET expires_at = excluded.expires_at
WHERE processed_events.expires_at <= ?
"""

CLAIM = """
INSERT INTO claims (key, owner, expires_at) VALUES (?, ?, ?)
ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE claims.owner = excluded.owner OR claims.expires_at <= ?
RETURNING 1
"""

RELEASE = "DELETE FROM claims WHERE key = ? AND owner = ? RETURNING 1"

_GET_VALUE = "SELECT value FROM key_values WHERE name = ?"
_SET_VALUE = """
INSERT INTO key_values (name, value, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
"""

_PRUNE_EVERY = 1000
"""Delete expired events and claims once per this many ``mark_event_processed`` calls."""


class SqliteCoordination(SqliteConnection):
    """Processed platform events, expiring claims and shared values."""

    async def mark_event_processed(self, *, event_id: str, ttl_seconds: int = 86_400) -> bool:
        now = self._now_ms()
        async with self._connection() as db:
            fresh = await change(db, _MARK_EVENT, (event_id, now + ttl_seconds * 1000, now)) == 1
            self._events_marked += 1
            if self._events_marked % _PRUNE_EVERY == 0:
                try:
                    await prune_expired(db, now)
                except StoreError:
                    log.warning("could not delete expired events and claims", exc_info=True)
        return fresh

    async def claim(self, *, key: str, owner: str, ttl_seconds: float) -> bool:
        now = self._now_ms()
        expires_at = now + round(ttl_seconds * 1000)
        async with self._connection() as db:  # one statement: one trip to SQLite's thread
            return bool(await fetch(db, CLAIM, (key, owner, expires_at, now)))

    async def release_claim(self, *, key: str, owner: str) -> bool:
        async with self._connection() as db:
            released = await fetch(db, RELEASE, (key, owner))
        return bool(released)

    async def get_value(self, *, name: str) -> str | None:
        async with self._connection() as db:
            rows = await fetch(db, _GET_VALUE, (name,))
        return str(rows[0]["value"]) if rows else None

    async def set_value(self, *, name: str, value: str) -> None:
        async with self._connection() as db:
            await change(db, _SET_VALUE, (name, value, self._now_ms()))
