"""Goal checks in SQLite; a successful one also sets its conversation's goal state."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from datetime import datetime

from bot.errors import NotFound
from memory.base import (
    Conversation,
    GoalCheck,
    NewGoalCheck,
    Platform,
)
from memory.rules import (
    ceil_ms,
    is_valid_id,
    wants_rows,
)
from memory.sqlite.connection import SqliteConnection
from memory.sqlite.conversations import conversation_from_row
from memory.sqlite.sql import (
    change,
    dumps,
    fetch,
    from_ms,
    optional_time,
    to_ms,
)

_INSERT_GOAL_CHECK = """
INSERT INTO goal_checks (
    id, conversation_id, agent_id, checked_at, reached, summary, missing, covered_seq, error
)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

_DUE_FOR_GOAL_CHECK = """
SELECT * FROM conversations
WHERE agent_id = ? AND goal_pending = 1 AND closed_at IS NULL
ORDER BY last_message_at, id
LIMIT ?
"""


class SqliteGoalChecks(SqliteConnection):
    """Goal checks, and the conversations due for one."""

    async def add_goal_check(self, check: NewGoalCheck) -> GoalCheck:
        """Store the check; a successful one also becomes the conversation's goal state.

        The conversation stays pending while it has messages beyond what the check covered.
        """
        if not is_valid_id(check.conversation_id):
            raise NotFound(f"conversation {check.conversation_id!r} not found")
        record = GoalCheck(
            id=uuid.uuid4().hex, checked_at=self._now(), **check.model_dump(mode="python")
        )
        async with self._write() as db:
            found = await fetch(
                db, "SELECT 1 FROM conversations WHERE id = ?", (record.conversation_id,)
            )
            if not found:
                raise NotFound(f"conversation {record.conversation_id} not found")
            await change(
                db,
                _INSERT_GOAL_CHECK,
                (
                    record.id,
                    record.conversation_id,
                    record.agent_id,
                    to_ms(record.checked_at),
                    record.reached,
                    record.summary,
                    dumps(list(record.missing)),
                    record.covered_seq,
                    record.error,
                ),
            )
            if record.error is None:
                await change(
                    db,
                    "UPDATE conversations SET goal = ?, goal_pending = message_count > ?"
                    " WHERE id = ?",
                    (_goal_json(record), record.covered_seq, record.conversation_id),
                )
        return record

    async def list_goal_checks(self, *, conversation_id: str, limit: int = 50) -> list[GoalCheck]:
        """Newest first; checks made in the same millisecond come newest-inserted first."""
        if not wants_rows(limit) or not is_valid_id(conversation_id):
            return []
        async with self._connection() as db:
            rows = await fetch(
                db,
                "SELECT * FROM goal_checks WHERE conversation_id = ?"
                " ORDER BY checked_at DESC, rowid DESC LIMIT ?",
                (conversation_id, limit),
            )
        return [_goal_check(row) for row in rows]

    async def mark_goal_check_posted(self, *, check_id: str) -> bool:
        if not is_valid_id(check_id):
            return False
        async with self._connection() as db:
            changed = await change(
                db, "UPDATE goal_checks SET posted_at = ? WHERE id = ?", (self._now_ms(), check_id)
            )
        return changed == 1

    async def goal_checks_to_post(self, *, agent_id: str, limit: int = 100) -> list[GoalCheck]:
        if not wants_rows(limit):
            return []
        async with self._connection() as db:
            rows = await fetch(
                db,
                "SELECT * FROM goal_checks"
                " WHERE agent_id = ? AND posted_at IS NULL AND error IS NULL"
                " ORDER BY checked_at, rowid LIMIT ?",
                (agent_id, limit),
            )
        return [_goal_check(row) for row in rows]

    async def conversations_due_for_goal_check(
        self, *, agent_id: str, limit: int = 100
    ) -> list[Conversation]:
        if not wants_rows(limit):
            return []
        async with self._connection() as db:
            rows = await fetch(db, _DUE_FOR_GOAL_CHECK, (agent_id, limit))
        return [conversation_from_row(row) for row in rows]

    async def list_agent_goal_checks(
        self,
        *,
        agent_id: str,
        since: datetime,
        limit: int = 5000,
        platforms: Sequence[Platform] = (),
        workspaces: Sequence[str] = (),
    ) -> list[GoalCheck]:
        """Oldest first; checks made in the same millisecond come oldest-inserted first.

        With place limits, each check in the window finds its conversation by primary key.
        """
        if not wants_rows(limit):
            return []
        sql = "SELECT g.* FROM goal_checks AS g"
        filters = ["g.agent_id = ?", "g.checked_at >= ?"]
        params: list[object] = [agent_id, to_ms(ceil_ms(since))]
        if platforms or workspaces:
            sql += " CROSS JOIN conversations AS c ON c.id = g.conversation_id"
            for column, limits in (("c.platform", platforms), ("c.workspace", workspaces)):
                if limits:
                    filters.append(f"{column} IN ({', '.join('?' * len(limits))})")
                    params.extend(limits)
        # Only fixed fragments reach the SQL text; every value is a bound parameter.
        where = " AND ".join(filters)
        async with self._connection() as db:
            rows = await fetch(
                db, f"{sql} WHERE {where} ORDER BY g.checked_at, g.rowid LIMIT ?", [*params, limit]
            )
        return [_goal_check(row) for row in rows]


def _goal_json(check: GoalCheck) -> str:
    return dumps(
        {
            "reached": check.reached,
            "checked_at": to_ms(check.checked_at),
            "covered_seq": check.covered_seq,
            "summary": check.summary,
            "missing": list(check.missing),
        }
    )


def _goal_check(row: sqlite3.Row) -> GoalCheck:
    return GoalCheck(
        id=row["id"],
        conversation_id=row["conversation_id"],
        agent_id=row["agent_id"],
        checked_at=from_ms(row["checked_at"]),
        reached=bool(row["reached"]),
        summary=row["summary"],
        missing=tuple(json.loads(row["missing"])),
        covered_seq=row["covered_seq"],
        error=row["error"],
        posted_at=optional_time(row["posted_at"]),
    )
