"""API keys in SQLite; an unrevoked name is unique through a partial index."""

from __future__ import annotations

import json
import sqlite3
import uuid

from bot.errors import Conflict
from memory.base import (
    ApiKeyRecord,
    NewApiKey,
)
from memory.rules import (
    is_valid_id,
)
from memory.sqlite.connection import SqliteConnection
from memory.sqlite.sql import (
    change,
    dumps,
    fetch,
    from_ms,
    optional_time,
    to_ms,
)

_INSERT_API_KEY = """
INSERT INTO api_keys (id, name, scope, agents, platforms, workspaces, key_hash, hint, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING
"""


class SqliteApiKeys(SqliteConnection):
    """API keys, kept as SHA-256 hashes."""

    async def add_api_key(self, key: NewApiKey) -> ApiKeyRecord:
        """Insert unless the hash or an unrevoked name is taken (the unique indexes decide)."""
        record = ApiKeyRecord(id=uuid.uuid4().hex, created_at=self._now(), **key.model_dump())
        row = (
            record.id,
            record.name,
            record.scope,
            dumps(list(record.agents)),
            dumps(list(record.platforms)),
            dumps(list(record.workspaces)),
            record.key_hash,
            record.hint,
            to_ms(record.created_at),
        )
        async with self._connection() as db:
            inserted = await change(db, _INSERT_API_KEY, row) == 1
        if not inserted:
            raise Conflict(f"an API key named {key.name!r} (or with that hash) already exists")
        return record

    async def find_api_key(self, *, key_hash: str) -> ApiKeyRecord | None:
        async with self._connection() as db:
            rows = await fetch(db, "SELECT * FROM api_keys WHERE key_hash = ?", (key_hash,))
        return _api_key(rows[0]) if rows else None

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        async with self._connection() as db:
            rows = await fetch(db, "SELECT * FROM api_keys ORDER BY created_at, id")
        return [_api_key(row) for row in rows]

    async def revoke_api_key(self, *, key_id: str) -> bool:
        if not is_valid_id(key_id):
            return False
        async with self._connection() as db:
            changed = await change(
                db,
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (self._now_ms(), key_id),
            )
        return changed == 1

    async def touch_api_key(self, *, key_id: str) -> None:
        if not is_valid_id(key_id):
            return
        async with self._connection() as db:
            await change(
                db, "UPDATE api_keys SET last_used_at = ? WHERE id = ?", (self._now_ms(), key_id)
            )


def _api_key(row: sqlite3.Row) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row["id"],
        name=row["name"],
        scope=row["scope"],
        agents=tuple(json.loads(row["agents"])),
        platforms=tuple(json.loads(row["platforms"])),
        workspaces=tuple(json.loads(row["workspaces"])),
        key_hash=row["key_hash"],
        hint=row["hint"],
        created_at=from_ms(row["created_at"]),
        last_used_at=optional_time(row["last_used_at"]),
        revoked_at=optional_time(row["revoked_at"]),
    )
