"""Messages in SQLite, read in windows through the (conversation, seq) index."""

from __future__ import annotations

import json
import sqlite3
import uuid

from bot.errors import NotFound
from memory.base import (
    Message,
    NewMessage,
    unchecked,
)
from memory.rules import (
    is_valid_id,
    wants_rows,
)
from memory.sqlite.connection import SqliteConnection
from memory.sqlite.sql import (
    MAX_INT64,
    MIN_INT64,
    dumps,
    fetch,
    from_ms,
    to_ms,
)

_COUNT_MESSAGE = """
UPDATE conversations
SET message_count = message_count + 1, updated_at = ?, last_message_at = ?, goal_pending = 1
WHERE id = ?
RETURNING message_count
"""

_INSERT_MESSAGE = """
INSERT INTO messages (
    id, conversation_id, seq, role, author_id, author_name, text, data,
    platform_message_id, created_at, token_count, error, sources
)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

_MESSAGES_WINDOW = """
SELECT * FROM messages
WHERE conversation_id = ? AND seq > ? AND seq < ?
ORDER BY seq
LIMIT ?
"""

_NEWEST_MESSAGES_WINDOW = """
SELECT * FROM messages
WHERE conversation_id = ? AND seq > ? AND seq < ?
ORDER BY seq DESC
LIMIT ?
"""


class SqliteMessages(SqliteConnection):
    """Messages, numbered per conversation by its ``message_count``."""

    async def append_message(self, *, conversation_id: str, message: NewMessage) -> Message:
        if not is_valid_id(conversation_id):
            raise NotFound(f"conversation {conversation_id!r} not found")
        now = self._now()
        now_ms = to_ms(now)
        message_id = uuid.uuid4().hex
        row = (
            message_id,
            conversation_id,
            0,  # the seq, counted in the transaction
            message.role,
            message.author_id,
            message.author_name,
            message.text,
            None if message.data is None else dumps(message.data),
            message.platform_message_id,
            now_ms,
            message.token_count,
            message.error,
            dumps(list(message.sources)) if message.sources else None,
        )

        def append(db: sqlite3.Connection) -> int | None:
            counted = db.execute(_COUNT_MESSAGE, (now_ms, now_ms, conversation_id)).fetchone()
            if counted is None:
                return None
            db.execute(_INSERT_MESSAGE, (*row[:2], counted[0], *row[3:]))
            return int(counted[0])

        # One trip to SQLite's thread, shared with the other writes waiting (group commit).
        seq = await self._grouped(append, "append a message")
        if seq is None:
            raise NotFound(f"conversation {conversation_id} not found")
        return unchecked(
            Message,
            id=message_id,
            conversation_id=conversation_id,
            seq=seq,
            created_at=now,
            **dict(message),
        )

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
        window = (
            conversation_id,
            MIN_INT64 if after_seq is None else after_seq,
            MAX_INT64 if before_seq is None else before_seq,
            limit,
        )
        sql = _NEWEST_MESSAGES_WINDOW if newest_first else _MESSAGES_WINDOW
        async with self._connection() as db:
            rows = await fetch(db, sql, window)
        return [_message(row) for row in rows]


def _message(row: sqlite3.Row) -> Message:
    return unchecked(
        Message,
        id=row["id"],
        conversation_id=row["conversation_id"],
        seq=row["seq"],
        role=row["role"],
        author_id=row["author_id"],
        author_name=row["author_name"],
        text=row["text"],
        data=None if row["data"] is None else json.loads(row["data"]),
        platform_message_id=row["platform_message_id"],
        created_at=from_ms(row["created_at"]),
        token_count=row["token_count"],
        error=row["error"],
        sources=() if row["sources"] is None else tuple(json.loads(row["sources"])),
    )
