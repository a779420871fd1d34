"""Remembered facts about people in SQLite: one row per memory; a scope's current memories are
read newest first through a partial index and ranked by :mod:`memory.recall`."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Sequence

from memory.base import Memory, MemoryQuery, MemoryScope, NewMemory
from memory.recall import MAX_HISTORY, MAX_RECALL_SCAN, rank
from memory.rules import fold, is_valid_id, paired_vectors, wants_rows
from memory.sqlite.connection import SqliteConnection
from memory.sqlite.sql import fetch, from_ms, to_ms

_INSERT = """
INSERT INTO memories (
    id, platform, workspace, person, agent_id, text, folded, private, conversation_id,
    message_id, supersedes, created_at, embedding
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

_SUPERSEDE = """
UPDATE memories SET superseded_by = ?
WHERE id = ? AND platform = ? AND workspace = ? AND person = ? AND agent_id = ?
    AND superseded_by IS NULL
"""

_SCOPE = "platform = ? AND workspace = ? AND person = ? AND agent_id = ?"

_RECALL = f"""
SELECT * FROM memories
WHERE {_SCOPE} AND superseded_by IS NULL AND (private = 0 OR ?)
ORDER BY created_at DESC, id DESC
LIMIT ?
"""  # noqa: S608 - constant fragments only


class SqliteMemories(SqliteConnection):
    """Facts about people."""

    async def add_memories(
        self, memories: Sequence[NewMemory], vectors: Sequence[bytes | None] = ()
    ) -> list[Memory]:
        if not memories:
            return []
        embeddings = paired_vectors(len(memories), vectors, "memory")
        now = self._now()
        added = [
            Memory(**memory.model_dump(), id=uuid.uuid4().hex, created_at=now)
            for memory in memories
        ]

        def write(db: sqlite3.Connection) -> None:
            for memory, embedding in zip(added, embeddings, strict=True):
                scope = memory.scope
                db.execute(
                    _INSERT,
                    (
                        memory.id,
                        scope.platform,
                        scope.workspace,
                        scope.person,
                        scope.agent_id,
                        memory.text,
                        fold(memory.text),
                        int(memory.private),
                        memory.conversation_id,
                        memory.message_id,
                        memory.supersedes,
                        to_ms(now),
                        embedding,
                    ),
                )
                if memory.supersedes is not None:
                    db.execute(_SUPERSEDE, (memory.id, memory.supersedes, *_scope(scope)))

        await self._grouped(write, "keep memories")
        return added

    async def recall_memories(
        self, scope: MemoryScope, *, query: str, include_private: bool, limit: int
    ) -> list[Memory]:
        if not wants_rows(limit):
            return []
        async with self._connection() as db:
            rows = await fetch(db, _RECALL, (*_scope(scope), include_private, MAX_RECALL_SCAN))
        return rank((_memory(row) for row in rows), query, limit)

    async def memory_vectors(
        self, scope: MemoryScope, *, include_private: bool, limit: int
    ) -> list[tuple[str, bytes]]:
        if not wants_rows(limit):
            return []
        async with self._connection() as db:
            rows = await fetch(
                db,
                f"SELECT id, embedding FROM memories WHERE {_SCOPE} AND superseded_by IS NULL"  # noqa: S608
                " AND (private = 0 OR ?) AND embedding IS NOT NULL"
                " ORDER BY created_at DESC, id DESC LIMIT ?",
                (*_scope(scope), include_private, min(limit, MAX_RECALL_SCAN)),
            )
        return [(row["id"], bytes(row["embedding"])) for row in rows]

    async def list_memories(self, query: MemoryQuery) -> list[Memory]:
        if not wants_rows(query.limit):
            return []
        where: list[str] = []
        params: list[object] = []
        for column in ("platform", "workspace", "person", "agent_id"):
            value = getattr(query, column)
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if not query.include_superseded:
            where.append("superseded_by IS NULL")
        if query.text:
            where.append("instr(folded, ?) > 0")
            params.append(fold(query.text))
        sql = "SELECT * FROM memories"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        async with self._connection() as db:
            rows = await fetch(db, sql, (*params, query.limit))
        return [_memory(row) for row in rows]

    async def get_memory(self, *, memory_id: str) -> Memory | None:
        if not is_valid_id(memory_id):
            return None
        async with self._connection() as db:
            rows = await fetch(db, "SELECT * FROM memories WHERE id = ?", (memory_id,))
        return _memory(rows[0]) if rows else None

    async def supersede_memories(
        self, *, scope: MemoryScope, pairs: Sequence[tuple[str, str]]
    ) -> int:
        valid = [(old, new) for old, new in pairs if is_valid_id(old) and is_valid_id(new)]

        def mark(db: sqlite3.Connection) -> int:
            marked = 0
            for old, new in valid:
                current = db.execute(
                    f"SELECT 1 FROM memories WHERE id = ? AND {_SCOPE}"  # noqa: S608
                    " AND superseded_by IS NULL",
                    (new, *_scope(scope)),
                ).fetchone()
                if current is not None and old != new:
                    marked += db.execute(_SUPERSEDE, (new, old, *_scope(scope))).rowcount
            return marked

        if not valid:
            return 0
        return await self._grouped(mark, "supersede memories")

    async def forget_memories(
        self, *, ids: Sequence[str] = (), scope: MemoryScope | None = None
    ) -> int:
        wanted = [memory_id for memory_id in ids if is_valid_id(memory_id)]

        def delete(db: sqlite3.Connection) -> int:
            gone = 0
            for memory_id in wanted:
                gone += db.execute("DELETE FROM memories WHERE id = ?", (memory_id,)).rowcount
            # and the history each replaced, so nothing of a forgotten fact stays behind
            replaced = list(wanted)
            for _ in range(MAX_HISTORY):
                if not replaced:
                    break
                marks = ", ".join("?" * len(replaced))
                rows = db.execute(
                    f"DELETE FROM memories WHERE superseded_by IN ({marks}) RETURNING id",  # noqa: S608
                    replaced,
                ).fetchall()
                gone += len(rows)
                replaced = [row["id"] for row in rows]
            if scope is not None:
                gone += db.execute(f"DELETE FROM memories WHERE {_SCOPE}", _scope(scope)).rowcount  # noqa: S608
            return gone

        if not wanted and scope is None:
            return 0
        return await self._grouped(delete, "forget memories")


def _scope(scope: MemoryScope) -> tuple[str, str, str, str]:
    return scope.platform, scope.workspace, scope.person, scope.agent_id


def _memory(row: sqlite3.Row) -> Memory:
    return Memory(
        id=row["id"],
        scope=MemoryScope(
            platform=row["platform"],
            workspace=row["workspace"],
            person=row["person"],
            agent_id=row["agent_id"],
        ),
        text=row["text"],
        private=bool(row["private"]),
        conversation_id=row["conversation_id"],
        message_id=row["message_id"],
        supersedes=row["supersedes"],
        created_at=from_ms(row["created_at"]),
        superseded_by=row["superseded_by"],
    )
