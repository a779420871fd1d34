"""The SQLite store's one connection: opening (migrations, then the search queue), closing,
and the lock that keeps one coroutine's statements out of another's transaction.

Every record type's class derives from :class:`SqliteConnection`; :class:`SqliteStore`
composes them, so all of them share this connection and a write may span record types in one
transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import aiosqlite

from bot.errors import StoreError, StoreUnavailable
from memory.base import Clock
from memory.rules import truncate_ms, utc_now
from memory.sqlite import schema, search
from memory.sqlite.sql import change, fetch, to_ms, transaction

_PRAGMAS = (
    "PRAGMA busy_timeout = 5000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
)


async def prune_expired(db: aiosqlite.Connection, now_ms: int) -> None:
    """Keep the event and claim tables bounded: expired rows mean nothing any more."""
    await change(db, "DELETE FROM processed_events WHERE expires_at <= ?", (now_ms,))
    await change(db, "DELETE FROM claims WHERE expires_at <= ?", (now_ms,))


class SqliteConnection:
    """One aiosqlite connection to one file, shared by every coroutine of a process.

    Multi-statement writes run in ``BEGIN IMMEDIATE`` transactions, which take SQLite's write
    lock up front: a second process on the same file then waits (``busy_timeout``) instead of
    failing half-way through.
    """

    def __init__(self, *, path: Path, clock: Clock = utc_now) -> None:
        self._path = path
        self._clock = clock
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        self._events_marked = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(path={str(self._path)!r})"

    @property
    def description(self) -> str:
        return f"SQLite ({self._path})"

    async def open(self) -> None:
        """Connect, bring the schema up to date (:mod:`memory.sqlite.schema`) and fold what
        the search queue holds. Idempotent."""
        async with self._lock:
            if self._db is not None:
                return
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                db = await aiosqlite.connect(self._path, isolation_level=None)
            except (OSError, sqlite3.Error) as error:
                raise StoreUnavailable(f"cannot open {self.description}: {error}") from error
            try:
                db.row_factory = sqlite3.Row
                await db.create_function("parley_fold", 1, search.fold_or_none, deterministic=True)
                await change(db, search.MATCHES_TABLE)
                for pragma in _PRAGMAS:
                    await fetch(db, pragma)
                async with transaction(db):
                    await schema.migrate(db)
                    await prune_expired(db, self._now_ms())
                await search.index_all_queued(db)
            except BaseException:
                await db.close()
                raise
            self._db = db

    async def close(self) -> None:
        async with self._lock:
            db, self._db = self._db, None
            if db is not None:
                await db.close()

    async def ping(self) -> bool:
        try:
            async with self._connection() as db:
                await fetch(db, "SELECT 1")
        except StoreError:
            return False
        return True

    def _now(self) -> datetime:
        return truncate_ms(self._clock())

    def _now_ms(self) -> int:
        return to_ms(self._clock())

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[aiosqlite.Connection]:
        """The shared connection, held alone.

        Reads take the lock too: on a shared connection they would otherwise see another
        coroutine's unfinished (and possibly rolled back) transaction.
        """
        async with self._lock:
            if self._db is None:
                raise StoreUnavailable(f"{self.description} is not open")
            yield self._db

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._connection() as db, transaction(db):
            yield db
