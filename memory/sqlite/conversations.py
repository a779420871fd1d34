"""Conversations in SQLite: one row each, their tags in ``conversation_tags``."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from typing import Any

from pydantic import JsonValue

from memory.base import (
    Conversation,
    ConversationOrder,
    ConversationPage,
    ConversationQuery,
    GoalState,
    PlatformKey,
)
from memory.rules import (
    UNSET,
    is_valid_id,
)
from memory.sqlite.connection import SqliteConnection
from memory.sqlite.search import index_queued, match_text
from memory.sqlite.sql import (
    change,
    change_many,
    dumps,
    fetch,
    from_ms,
    optional_time,
    transaction,
)

_INSERT_CONVERSATION = """
INSERT INTO conversations
    (id, key_id, platform, workspace, channel, thread, agent_id, created_at, updated_at, title)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key_id) DO NOTHING
"""

_UPDATE_CONVERSATION = """
UPDATE conversations SET
    updated_at = :updated_at,
    data = CASE WHEN :set_data THEN :data ELSE data END,
    source = CASE WHEN :set_source THEN :source ELSE source END,
    tags = CASE WHEN :set_tags THEN :tags ELSE tags END,
    agent_id = CASE WHEN :set_agent_id THEN :agent_id ELSE agent_id END,
    title = CASE WHEN :set_title THEN :title ELSE title END,
    user = CASE WHEN :set_user THEN :user ELSE user END
WHERE id = :id
RETURNING *
"""

_ORDER_BY: dict[ConversationOrder, str] = {
    "updated_desc": "updated_at DESC, id DESC",
    "updated_asc": "updated_at ASC, id ASC",
    "created_desc": "created_at DESC, id DESC",
    "created_asc": "created_at ASC, id ASC",
}


class SqliteConversations(SqliteConnection):
    """Conversations: one open conversation per place, listed, searched, updated, deleted."""

    async def get_or_create_conversation(
        self, *, key: PlatformKey, agent_id: str, title: str = ""
    ) -> tuple[Conversation, bool]:
        existing = await self.find_conversation(key=key)
        if existing is not None:
            return existing, False
        now = self._now_ms()
        row = (
            uuid.uuid4().hex,
            key.canonical,
            key.platform,
            key.workspace,
            key.channel,
            key.thread,
            agent_id,
            now,
            now,
            title,
        )
        async with self._write() as db:
            created = await change(db, _INSERT_CONVERSATION, row) == 1
            rows = await fetch(db, "SELECT * FROM conversations WHERE key_id = ?", (key.canonical,))
            if created:
                await index_queued(db, conversation_id=rows[0]["id"])
        return conversation_from_row(rows[0]), created

    async def find_conversation(self, *, key: PlatformKey) -> Conversation | None:
        async with self._connection() as db:
            rows = await fetch(db, "SELECT * FROM conversations WHERE key_id = ?", (key.canonical,))
        return conversation_from_row(rows[0]) if rows else None

    async def get_conversation(self, *, conversation_id: str) -> Conversation | None:
        if not is_valid_id(conversation_id):
            return None
        async with self._connection() as db:
            rows = await fetch(db, "SELECT * FROM conversations WHERE id = ?", (conversation_id,))
        return conversation_from_row(rows[0]) if rows else None

    async def close_conversation(self, *, conversation_id: str) -> bool:
        """Set ``key_id`` to NULL, which frees the key: the unique index ignores NULLs."""
        if not is_valid_id(conversation_id):
            return False
        now = self._now_ms()
        async with self._connection() as db:
            changed = await change(
                db,
                "UPDATE conversations SET key_id = NULL, closed_at = ?, updated_at = ?"
                " WHERE id = ? AND closed_at IS NULL",
                (now, now, conversation_id),
            )
        return changed == 1

    async def update_conversation(
        self,
        *,
        conversation_id: str,
        data: dict[str, JsonValue] = UNSET,
        source: str | None = UNSET,
        tags: Sequence[str] = UNSET,
        agent_id: str = UNSET,
        title: str = UNSET,
        user: str | None = UNSET,
    ) -> Conversation | None:
        if not is_valid_id(conversation_id):
            return None
        new_tags = None if tags is UNSET else tuple(tags)
        params: dict[str, object] = {
            "id": conversation_id,
            "updated_at": self._now_ms(),
            "set_data": data is not UNSET,
            "data": None if data is UNSET else dumps(data),
            "set_source": source is not UNSET,
            "source": None if source is UNSET else source,
            "set_tags": new_tags is not None,
            "tags": None if new_tags is None else dumps(list(new_tags)),
            "set_agent_id": agent_id is not UNSET,
            "agent_id": None if agent_id is UNSET else agent_id,
            "set_title": title is not UNSET,
            "title": None if title is UNSET else title,
            "set_user": user is not UNSET,
            "user": None if user is UNSET else user,
        }
        async with self._write() as db:
            rows = await fetch(db, _UPDATE_CONVERSATION, params)
            if rows:
                await index_queued(db, conversation_id=conversation_id)
            if rows and new_tags is not None:
                await change(
                    db,
                    "DELETE FROM conversation_tags WHERE conversation_id = ?",
                    (conversation_id,),
                )
                await change_many(
                    db,
                    "INSERT OR IGNORE INTO conversation_tags (conversation_id, tag) VALUES (?, ?)",
                    [(conversation_id, tag) for tag in new_tags],
                )
        return conversation_from_row(rows[0]) if rows else None

    async def set_summary(self, *, conversation_id: str, summary: str, summary_seq: int) -> bool:
        if not is_valid_id(conversation_id):
            return False
        async with self._write() as db:
            changed = await change(
                db,
                "UPDATE conversations SET summary = ?, summary_seq = ?"
                " WHERE id = ? AND summary_seq <= ?",
                (summary, summary_seq, conversation_id, summary_seq),
            )
            if changed:
                await index_queued(db, conversation_id=conversation_id)
        return changed == 1

    async def list_conversations(self, query: ConversationQuery) -> ConversationPage:
        filters: list[str] = []
        params: list[object] = []
        for column, value, limits in (
            ("agent_id", query.agent_id, query.agent_ids),
            ("platform", query.platform, query.platforms),
            ("workspace", query.workspace, query.workspaces),
        ):
            if value is not None:
                filters.append(f"{column} = ?")
                params.append(value)
            if limits:
                filters.append(f"{column} IN ({', '.join('?' * len(limits))})")
                params.extend(limits)
        if query.tag is not None:
            filters.append("id IN (SELECT conversation_id FROM conversation_tags WHERE tag = ?)")
            params.append(query.tag)
        if not query.include_closed:
            filters.append("closed_at IS NULL")
        # Only the fixed fragments above reach the SQL text; every value is a bound parameter.
        where = f"WHERE {' AND '.join(filters)}" if filters else ""
        order = f"ORDER BY {_ORDER_BY[query.order]} LIMIT ? OFFSET ?"
        count_sql = f"SELECT count(*) FROM conversations {where}"  # noqa: S608
        page_sql = f"SELECT * FROM conversations {where} {order}"  # noqa: S608
        async with self._connection() as db, transaction(db, "BEGIN"):
            if query.text:
                count_sql, page_sql = await match_text(db, query.text, filters, order)
            total: int = (await fetch(db, count_sql, params))[0][0]
            rows = await fetch(db, page_sql, [*params, query.limit, query.offset])
            if query.text:
                await change(db, "DELETE FROM temp.search_matches")
        return ConversationPage(
            items=tuple(conversation_from_row(row) for row in rows), total=total
        )

    async def delete_conversation(self, *, conversation_id: str) -> bool:
        if not is_valid_id(conversation_id):
            return False
        async with self._write() as db:
            for table in ("conversation_tags", "messages", "goal_checks", "feedback"):
                await change(
                    db,
                    f"DELETE FROM {table} WHERE conversation_id = ?",  # noqa: S608
                    (conversation_id,),
                )
            deleted = await change(db, "DELETE FROM conversations WHERE id = ?", (conversation_id,))
        return deleted == 1


def _goal(text: str | None) -> GoalState | None:
    if text is None:
        return None
    stored: dict[str, Any] = json.loads(text)
    return GoalState(
        reached=stored["reached"],
        checked_at=from_ms(stored["checked_at"]),
        covered_seq=stored["covered_seq"],
        summary=stored["summary"],
        missing=tuple(stored["missing"]),
    )


def conversation_from_row(row: sqlite3.Row) -> Conversation:
    return Conversation(
        id=row["id"],
        agent_id=row["agent_id"],
        key=PlatformKey(
            platform=row["platform"],
            workspace=row["workspace"],
            channel=row["channel"],
            thread=row["thread"],
        ),
        created_at=from_ms(row["created_at"]),
        updated_at=from_ms(row["updated_at"]),
        closed_at=optional_time(row["closed_at"]),
        title=row["title"],
        data=json.loads(row["data"]),
        source=row["source"],
        tags=tuple(json.loads(row["tags"])),
        summary=row["summary"],
        summary_seq=row["summary_seq"],
        message_count=row["message_count"],
        last_message_at=optional_time(row["last_message_at"]),
        goal=_goal(row["goal"]),
        goal_pending=bool(row["goal_pending"]),
        user=row["user"],
    )
