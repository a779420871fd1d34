"""Ratings of replies in SQLite: one row per (reply, person)."""

from __future__ import annotations

import sqlite3

from memory.base import Feedback, Platform, Rating
from memory.rules import is_valid_id
from memory.sqlite.connection import SqliteConnection
from memory.sqlite.sql import change, fetch, from_ms

_RATE = """
INSERT INTO feedback (message_id, person, conversation_id, platform, rating, rated_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (message_id, person)
DO UPDATE SET rating = excluded.rating, rated_at = excluded.rated_at, platform = excluded.platform
"""


class SqliteFeedback(SqliteConnection):
    """Ratings of replies, deleted with their conversation."""

    async def rate_message(
        self, *, message_id: str, platform: Platform, person: str, rating: Rating
    ) -> tuple[Feedback, Rating | None] | None:
        if not is_valid_id(message_id):
            return None
        now = self._now_ms()
        async with self._write() as db:
            replies = await fetch(
                db,
                "SELECT conversation_id FROM messages WHERE id = ? AND role = 'assistant'",
                (message_id,),
            )
            if not replies:
                return None
            conversation_id = str(replies[0]["conversation_id"])
            before = await fetch(
                db,
                "SELECT rating FROM feedback WHERE message_id = ? AND person = ?",
                (message_id, person),
            )
            await change(db, _RATE, (message_id, person, conversation_id, platform, rating, now))
        earlier: Rating | None = before[0]["rating"] if before else None
        stored = Feedback(
            message_id=message_id,
            conversation_id=conversation_id,
            platform=platform,
            person=person,
            rating=rating,
            rated_at=from_ms(now),
        )
        return stored, earlier

    async def list_feedback(self, *, message_id: str) -> list[Feedback]:
        if not is_valid_id(message_id):
            return []
        async with self._connection() as db:
            rows = await fetch(
                db,
                "SELECT * FROM feedback WHERE message_id = ? ORDER BY rated_at, person",
                (message_id,),
            )
        return [_feedback(row) for row in rows]


def _feedback(row: sqlite3.Row) -> Feedback:
    return Feedback(
        message_id=row["message_id"],
        conversation_id=row["conversation_id"],
        platform=row["platform"],
        person=row["person"],
        rating=row["rating"],
        rated_at=from_ms(row["rated_at"]),
    )
