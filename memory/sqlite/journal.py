"""The turn journal in SQLite.

``place`` is the PlatformKey's canonical string; ``pending`` is 1 while the state is received
or answered, and the partial indexes hold only such entries (or, for pruning, only the others).
"""

from __future__ import annotations

import enum
import functools
import json
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from memory.base import (
    JournalEntry,
    JournalFinish,
    NewJournalEntry,
    PlatformKey,
    unchecked,
)
from memory.rules import (
    JOURNAL_FIELDS,
    JOURNAL_RANK,
    JOURNAL_UNFINISHED,
    UNSET,
    JournalState,
    ceil_ms,
    dump_compact,
    is_valid_journal_id,
    journal_changes,
    wants_rows,
)
from memory.sqlite.connection import SqliteConnection
from memory.sqlite.coordination import CLAIM, RELEASE
from memory.sqlite.sql import (
    MAX_INT64,
    change,
    fetch,
    from_ms,
    to_ms,
)

_INSERT_JOURNAL = """
INSERT INTO journal (id, place, position, message, state, pending, created_at, updated_at)
VALUES (?, ?, ?, ?, 'received', 1, ?, ?)
ON CONFLICT (id) DO NOTHING
RETURNING 1
"""

_JOURNAL_NEXT = """
SELECT * FROM journal
WHERE place = ? AND pending = 1
ORDER BY position, created_at, id
LIMIT 1
"""

_JOURNAL_HEAD = _JOURNAL_NEXT.replace("SELECT *", "SELECT id, updated_at", 1)

_JOURNAL_TAKE = """
UPDATE journal SET attempts = attempts + 1, updated_at = ?
WHERE id = ?
RETURNING *
"""

_JOURNAL_TAKE_FRESH = _JOURNAL_TAKE.replace("RETURNING *", "")

_MOVES = "pending = 1 AND ?1 > CASE state WHEN 'received' THEN 0 ELSE 1 END"
"""The requested state (of rank ?1) applies (see ``memory.base.journal_state_after``); SET
expressions all read the row as it was, so ``state`` and ``pending`` move together."""


@functools.cache
def _update_sql(fields: tuple[str, ...], *, moves: bool, add_attempt: bool, returning: bool) -> str:
    """An UPDATE of one entry (``?5``) setting ``fields`` (``?6`` on), the state when it
    ``moves`` (to ``?2``, rank ``?1``, pending ``?3``) and ``updated_at`` (``?4``): one
    statement per combination, so SQLite's statement cache keeps each prepared."""
    sets = []
    if moves:
        sets += [
            f"state = CASE WHEN {_MOVES} THEN ?2 ELSE state END",
            f"pending = CASE WHEN {_MOVES} THEN ?3 ELSE pending END",
        ]
    sets += [f"{name} = ?{n}" for n, name in enumerate(fields, start=6)]
    if add_attempt:
        sets.append("attempts = attempts + 1")
    sets.append("updated_at = ?4")
    tail = " RETURNING *" if returning else ""
    return f"UPDATE journal SET {', '.join(sets)} WHERE id = ?5{tail}"  # noqa: S608


_JOURNAL_PENDING = """
SELECT place FROM (
    SELECT place, created_at, id, updated_at,
        row_number() OVER (PARTITION BY place ORDER BY created_at, id) AS n
    FROM journal
    WHERE pending = 1
)
WHERE n = 1 AND updated_at < ?
ORDER BY created_at, id
LIMIT ?
"""
"""Each place's oldest unfinished entry (read in order from ``journal_unfinished``), oldest
first: only unfinished entries are read, and only the places are sorted."""


class SqliteJournal(SqliteConnection):
    """The turn journal."""

    async def journal_add(self, entry: NewJournalEntry) -> tuple[JournalEntry, bool]:
        added, created, _ = await self._add(entry, None)
        return added, created

    async def journal_add_and_take(
        self, entry: NewJournalEntry, *, lease: str, owner: str, ttl_seconds: float
    ) -> tuple[JournalEntry, bool, JournalEntry | None]:
        return await self._add(entry, (lease, owner, ttl_seconds))

    async def _add(
        self, entry: NewJournalEntry, take: tuple[str, str, float] | None
    ) -> tuple[JournalEntry, bool, JournalEntry | None]:
        now = self._now()
        now_ms = to_ms(now)
        row = (
            entry.id,
            entry.key.canonical,
            entry.position,
            dump_compact(entry.message),
            now_ms,
            now_ms,
        )
        # Grouped with the other writes waiting: the acknowledgement waits for one trip to
        # SQLite's thread at most; a redelivery (the rare case) reads the entry it found.

        def add(db: sqlite3.Connection) -> tuple[sqlite3.Row | None, _Taken | _Fresh | None]:
            if not db.execute(_INSERT_JOURNAL, row).fetchall():
                found: sqlite3.Row | None = db.execute(
                    "SELECT * FROM journal WHERE id = ?", (entry.id,)
                ).fetchone()
                return found, None
            if take is None:
                return None, None
            lease, owner, ttl_seconds = take
            return None, _take_head(
                db,
                entry.key,
                lease=lease,
                owner=owner,
                ttl_seconds=ttl_seconds,
                now=now_ms,
                fresh=entry.id,
            )

        existing, taken = await self._grouped(add, "record a journal entry")
        if existing is not None:
            return _journal_entry(existing), False, None
        if taken is FRESH:  # the usual case: a quiet place
            took = _new_entry(entry, now, taken=True)
            return took, True, took
        if taken is not None:
            return _new_entry(entry, now), True, _taken_entry(taken, entry.key, now)
        return _new_entry(entry, now), True, None

    async def journal_get(self, *, entry_id: str) -> JournalEntry | None:
        if not is_valid_journal_id(entry_id):
            return None
        async with self._connection() as db:
            rows = await fetch(db, "SELECT * FROM journal WHERE id = ?", (entry_id,))
        return _journal_entry(rows[0]) if rows else None

    async def journal_next(self, *, key: PlatformKey) -> JournalEntry | None:
        async with self._connection() as db:
            rows = await fetch(db, _JOURNAL_NEXT, (key.canonical,))
        return _journal_entry(rows[0]) if rows else None

    async def journal_advance(
        self,
        *,
        key: PlatformKey,
        lease: str,
        owner: str,
        ttl_seconds: float,
        finish: JournalFinish | None = None,
    ) -> JournalEntry | None:
        """One transaction in one trip to SQLite's thread: nothing is added at ``key``
        between finding it empty and releasing the claim."""
        now = self._now_ms()
        done = None
        if finish is not None and is_valid_journal_id(finish.entry_id):
            done = _update(finish.entry_id, finish.changes, finish.state, now=now)

        def step(db: sqlite3.Connection) -> _Taken | _Fresh | None:
            if done is not None:
                db.execute(*done)
            return _take_head(db, key, lease=lease, owner=owner, ttl_seconds=ttl_seconds, now=now)

        taken = await self._grouped(step, "advance the journal")
        if taken is None or taken is FRESH:  # (never FRESH: nothing was added here)
            return None
        return _taken_entry(taken, key, from_ms(now))

    async def journal_update(
        self,
        *,
        entry_id: str,
        state: JournalState = UNSET,
        conversation_id: str | None = UNSET,
        user_message_id: str | None = UNSET,
        reply_message_id: str | None = UNSET,
        shown_ref: str | None = UNSET,
        error: str | None = UNSET,
        add_attempt: bool = False,
    ) -> JournalEntry | None:
        changes = journal_changes(
            state=state,
            conversation_id=conversation_id,
            user_message_id=user_message_id,
            reply_message_id=reply_message_id,
            shown_ref=shown_ref,
            error=error,
        )
        if not is_valid_journal_id(entry_id):
            return None
        new_state: JournalState | None = None if state is UNSET else state
        sql, params = _update(
            entry_id,
            changes,
            new_state,
            now=self._now_ms(),
            add_attempt=add_attempt,
            returning=True,
        )
        async with self._connection() as db:
            rows = await fetch(db, sql, params)
        return _journal_entry(rows[0]) if rows else None

    async def journal_pending(
        self, *, limit: int = 100, updated_before: datetime | None = None
    ) -> list[PlatformKey]:
        if not wants_rows(limit):
            return []
        before = MAX_INT64 if updated_before is None else to_ms(ceil_ms(updated_before))
        async with self._connection() as db:
            rows = await fetch(db, _JOURNAL_PENDING, (before, limit))
        return [PlatformKey.from_canonical(row["place"]) for row in rows]

    async def journal_backlog(self) -> int:
        async with self._connection() as db:
            rows = await fetch(db, "SELECT count(*) FROM journal WHERE pending = 1")
        return int(rows[0][0])

    async def journal_prune(self, *, finished_before: datetime) -> int:
        before = to_ms(ceil_ms(finished_before))
        async with self._connection() as db:
            return await change(
                db, "DELETE FROM journal WHERE pending = 0 AND updated_at < ?", (before,)
            )


_Taken = tuple[sqlite3.Row, int]
"""An entry taken up, and its ``updated_at`` before the take."""


class _Fresh(enum.Enum):
    FRESH = "fresh"


FRESH = _Fresh.FRESH
"""Taken: the entry the same transaction added."""


def _take_head(
    db: sqlite3.Connection,
    key: PlatformKey,
    *,
    lease: str,
    owner: str,
    ttl_seconds: float,
    now: int,
    fresh: str | None = None,
) -> _Taken | _Fresh | None:
    """Inside a transaction: claim ``lease`` and take up ``key``'s first unfinished entry, or
    release the claim when there is none (an empty place is not claimed first: the release
    is all it needs). None when nothing was taken; :data:`FRESH` when the entry taken is
    ``fresh``, one this transaction just added."""
    head = db.execute(_JOURNAL_HEAD, (key.canonical,)).fetchone()
    if head is None:
        db.execute(RELEASE, (lease, owner)).fetchall()
        return None
    expires_at = now + round(ttl_seconds * 1000)
    if not db.execute(CLAIM, (lease, owner, expires_at, now)).fetchall():
        return None
    if head["id"] == fresh:  # what the caller knows already: no row to read back
        db.execute(_JOURNAL_TAKE_FRESH, (now, fresh))
        return FRESH
    taken: sqlite3.Row = db.execute(_JOURNAL_TAKE, (now, head["id"])).fetchone()
    return taken, head["updated_at"]


def _new_entry(entry: NewJournalEntry, now: datetime, *, taken: bool = False) -> JournalEntry:
    """The entry just recorded at ``now`` (and ``taken`` then), made of what was checked as
    a NewJournalEntry."""
    return unchecked(
        JournalEntry,
        id=entry.id,
        key=entry.key,
        position=entry.position,
        message=entry.message,
        state="received",
        created_at=now,
        updated_at=now,
        attempts=1 if taken else 0,
        prior_touch=now if taken else None,
    )


def _taken_entry(taken: _Taken, key: PlatformKey, now: datetime) -> JournalEntry:
    """The entry taken at ``key`` at ``now`` (its new ``updated_at``), built unchecked: every
    value is the store's own (a drain takes one per message, on the event loop)."""
    row, prior_touch = taken
    fields = _row_fields(row)
    created_at = fields["created_at"]
    return unchecked(
        JournalEntry,
        **fields,
        key=key,
        updated_at=now,
        prior_touch=created_at if prior_touch == row["created_at"] else from_ms(prior_touch),
    )


def _update(
    entry_id: str,
    changes: Mapping[str, str | None],
    new_state: JournalState | None,
    *,
    now: int,
    add_attempt: bool = False,
    returning: bool = False,
) -> tuple[str, tuple[object, ...]]:
    """The statement and parameters of an update with changes checked by
    ``journal_changes`` (a ``state`` among them is ignored: ``new_state`` says where to
    move)."""
    fields = tuple(name for name in JOURNAL_FIELDS if name in changes)
    sql = _update_sql(
        fields, moves=new_state is not None, add_attempt=add_attempt, returning=returning
    )
    rank = -1 if new_state is None else JOURNAL_RANK[new_state]
    pending = new_state in JOURNAL_UNFINISHED
    values = tuple(changes[name] for name in fields)
    return sql, (rank, new_state, pending, now, entry_id, *values)


def _journal_entry(row: sqlite3.Row) -> JournalEntry:
    return JournalEntry(
        **_row_fields(row),
        key=PlatformKey.from_canonical(row["place"]),
        updated_at=from_ms(row["updated_at"]),
    )


def _row_fields(row: sqlite3.Row) -> dict[str, Any]:
    """A journal row's fields as an entry holds them, but for its key and ``updated_at``."""
    return {
        "id": row["id"],
        "position": row["position"],
        "message": json.loads(row["message"]),
        "state": row["state"],
        "created_at": from_ms(row["created_at"]),
        "attempts": row["attempts"],
        "conversation_id": row["conversation_id"],
        "user_message_id": row["user_message_id"],
        "reply_message_id": row["reply_message_id"],
        "shown_ref": row["shown_ref"],
        "error": row["error"],
    }
