"""The SQLite store's one connection: opening (migrations, then the search queue), closing,
and the lock that keeps one coroutine's statements out of another's transaction.

Every record type's class derives from :class:`SqliteConnection`; :class:`SqliteStore`
composes them, so all of them share this connection and a write may span record types in one
transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.errors import StoreError, StoreUnavailable
from memory.base import Clock
from memory.rules import truncate_ms, utc_now
from memory.sqlite import schema, search
from memory.sqlite.checkpoint import BACKSTOP_PAGES, CHECKPOINT_EVERY, Checkpointer
from memory.sqlite.sql import (
    change,
    fetch,
    in_one_trip,
    in_savepoints,
    to_ms,
    transaction,
)

T = TypeVar("T")

_PRAGMAS = (
    "PRAGMA busy_timeout = 5000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
    f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}",
)


async def prune_expired(db: aiosqlite.Connection, now_ms: int) -> None:
    """Keep the event and claim tables bounded: expired rows mean nothing any more."""
    await change(db, "DELETE FROM processed_events WHERE expires_at <= ?", (now_ms,))
    await change(db, "DELETE FROM claims WHERE expires_at <= ?", (now_ms,))


@dataclass(slots=True)
class _Grouped:
    """A write waiting for a group commit (``SqliteConnection._grouped``)."""

    work: Callable[[sqlite3.Connection], Any]
    what: str
    outcome: asyncio.Future[Any]


def _settle(batch: list[_Grouped], outcomes: list[Any]) -> None:
    """Hand every write of a finished group its own outcome (a waiter gone is skipped)."""
    for each, outcome in zip(batch, outcomes, strict=True):
        if each.outcome.done():
            continue
        if isinstance(outcome, sqlite3.Error):
            each.outcome.set_exception(StoreError(f"SQLite could not {each.what}: {outcome}"))
        elif isinstance(outcome, BaseException):
            each.outcome.set_exception(outcome)
        else:
            each.outcome.set_result(outcome)


class SqliteConnection:
    """One aiosqlite connection to one file, shared by every coroutine of a process.

    Multi-statement writes run in ``BEGIN IMMEDIATE`` transactions, which take SQLite's write
    lock up front: a second process on the same file then waits (``busy_timeout``) instead of
    failing half-way through.
    """

    def __init__(
        self, *, path: Path, clock: Clock = utc_now, checkpoint_every: float = CHECKPOINT_EVERY
    ) -> None:
        self._path = path
        self._clock = clock
        self._db: aiosqlite.Connection | None = None
        self._checkpointer = Checkpointer(path, every=checkpoint_every)
        self._lock = asyncio.Lock()
        self._group: list[_Grouped] = []
        self._flusher: asyncio.Task[None] | None = None
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
            self._checkpointer.start()

    async def close(self) -> None:
        async with self._lock:
            await self._checkpointer.stop()
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

    async def _grouped(self, work: Callable[[sqlite3.Connection], T], what: str) -> T:
        """Run ``work`` (a few statements on the sqlite3 connection) atomically, in one
        transaction with every other grouped write waiting meanwhile: one trip to SQLite's
        thread and one commit for all of them (group commit), each in a savepoint of its own,
        so a SQLite error undoes and fails only its own write.

        One flusher task per connection takes the connection for each group in turn, so a
        waiter costs a future and no turn at the lock; a waiter cancelled before its group
        left is dropped from it, one cancelled after it left does not stop the trip.
        """
        waiter = _Grouped(work, what, asyncio.get_running_loop().create_future())
        self._group.append(waiter)
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="sqlite group commit")
        try:
            result: T = await waiter.outcome
        except asyncio.CancelledError:
            if waiter in self._group:  # not taken: nobody will run it
                self._group.remove(waiter)
            raise
        return result

    async def _flush(self) -> None:
        """Run the waiting groups, one trip each, until none waits."""
        try:
            while self._group:
                try:
                    async with self._connection() as db:
                        batch, self._group = self._group, []
                        works = [each.work for each in batch]
                        try:
                            outcomes: list[Any] = await in_one_trip(
                                db, partial(in_savepoints, works=works), batch[0].what
                            )
                        except Exception as failed:  # noqa: BLE001 - each waiter gets it
                            outcomes = [failed] * len(batch)
                        except BaseException:  # the loop is going away: fail, then go
                            _settle(batch, [StoreError("SQLite write cancelled")] * len(batch))
                            raise
                        _settle(batch, outcomes)
                except StoreError as unavailable:  # the store closed while the group waited
                    batch, self._group = self._group, []
                    _settle(batch, [unavailable] * len(batch))
        finally:
            self._flusher = None

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._connection() as db, transaction(db):
            yield db
