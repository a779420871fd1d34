"""Model usage in SQLite: one row per model call, summed per group on request."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import date, timedelta

from memory.base import (
    MAX_USAGE_BATCH,
    USAGE_GROUPS,
    NewUsage,
    UsageGroup,
    UsageQuery,
    UsageTotal,
)
from memory.rules import ceil_ms, wants_rows
from memory.sqlite.connection import SqliteConnection
from memory.sqlite.sql import fetch, to_ms

_INSERT = """
INSERT INTO usage (
    at, day, agent_id, conversation_id, purpose, model, input_tokens, cached_input_tokens,
    output_tokens, estimated
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""

_COLUMNS: dict[UsageGroup, str] = {
    "agent": "agent_id",
    "conversation": "conversation_id",
    "purpose": "purpose",
    "model": "model",
    "day": "day",
}
_MS_PER_DAY = 86_400_000
_EPOCH_DAY = date(1970, 1, 1)


class SqliteUsage(SqliteConnection):
    """Tokens used per model call."""

    async def add_usage(self, records: Sequence[NewUsage]) -> int:
        if len(records) > MAX_USAGE_BATCH:
            raise ValueError(f"at most {MAX_USAGE_BATCH} usage records at once")
        rows = [
            (
                to_ms(record.at),
                to_ms(record.at) // _MS_PER_DAY,
                record.agent_id,
                record.conversation_id,
                record.purpose,
                record.model,
                record.input_tokens,
                record.cached_input_tokens,
                record.output_tokens,
                int(record.estimated),
            )
            for record in records
        ]
        if not rows:
            return 0

        def write(db: sqlite3.Connection) -> None:
            db.executemany(_INSERT, rows)

        await self._grouped(write, "record model usage")
        return len(rows)

    async def usage_totals(self, query: UsageQuery) -> list[UsageTotal]:
        if not wants_rows(query.limit):
            return []
        filters: list[str] = []
        params: list[object] = []
        if query.agent_id is not None:
            filters.append("agent_id = ?")
            params.append(query.agent_id)
        if query.agent_ids:
            filters.append(f"agent_id IN ({', '.join('?' * len(query.agent_ids))})")
            params.extend(query.agent_ids)
        if query.conversation_id is not None:
            filters.append("conversation_id = ?")
            params.append(query.conversation_id)
        if query.since is not None:
            filters.append("at >= ?")
            params.append(to_ms(ceil_ms(query.since)))
        if query.until is not None:
            filters.append("at < ?")
            params.append(to_ms(ceil_ms(query.until)))
        groups = [group for group in USAGE_GROUPS if group in query.group_by]
        columns = [_COLUMNS[group] for group in groups]
        # Only fixed fragments reach the SQL text; every value is a bound parameter.
        sql = "SELECT " + ", ".join(
            [
                *columns,
                "COUNT(*) AS calls",
                "SUM(input_tokens) AS input_tokens",
                "SUM(cached_input_tokens) AS cached_input_tokens",
                "SUM(output_tokens) AS output_tokens",
                "SUM(estimated) AS estimated_calls",
            ]
        )
        sql += " FROM usage"
        if filters:
            sql += " WHERE " + " AND ".join(filters)
        if columns:
            listed = ", ".join(columns)
            sql += f" GROUP BY {listed} ORDER BY {listed}"
        sql += " LIMIT ?"
        async with self._connection() as db:
            rows = await fetch(db, sql, [*params, query.limit])
        return [_total(row, groups) for row in rows if row["calls"]]


def _total(row: sqlite3.Row, groups: list[UsageGroup]) -> UsageTotal:
    values: dict[str, object] = {
        "calls": row["calls"],
        "input_tokens": row["input_tokens"] or 0,
        "cached_input_tokens": row["cached_input_tokens"] or 0,
        "output_tokens": row["output_tokens"] or 0,
        "estimated_calls": row["estimated_calls"] or 0,
    }
    for group in groups:
        value = row[_COLUMNS[group]]
        if group == "day":
            values["day"] = _EPOCH_DAY + timedelta(days=int(value))
        else:
            values[_COLUMNS[group]] = value
    return UsageTotal.model_validate(values)
