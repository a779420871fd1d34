"""The SQLite store's one connection: opening (migrations, then the search queue), closing,
and the lock that keeps one coroutine's statements out of another's transaction.

Every record type's class derives from :class:`SqliteConnection`; :class:`SqliteStore`
composes them, so all of them share this connection and a write may span record types in one
transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
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
    outcome: asyncio.Future[Any]
    taken: bool = False


def _settle(batch: list[_Grouped], what: str, trip: asyncio.Future[list[Any]]) -> None:
    """Hand every write of a finished group its own outcome."""
    if trip.cancelled():
        outcomes: list[Any] = [StoreError(f"SQLite could not {what}: cancelled")] * len(batch)
    elif (failed := trip.exception()) is not None:
        outcomes = [failed] * len(batch)
    else:
        outcomes = trip.result()
    for each, outcome in zip(batch, outcomes, strict=True):
        if each.outcome.done():
            continue
        if isinstance(outcome, sqlite3.Error):
            each.outcome.set_exception(StoreError(f"SQLite could not {what}: {outcome}"))
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
        transaction with every other grouped write waiting for the connection meanwhile: one
        trip to SQLite's thread and one commit for all of them (group commit), each in a
        savepoint of its own, so a SQLite error undoes and fails only its own write.

        Whichever waiter gets the connection first runs everyone's; its cancellation does
        not stop the trip, and every waiter gets its own outcome when the trip ends.
        """
        waiter = _Grouped(work, asyncio.get_running_loop().create_future())
        self._group.append(waiter)
        try:
            async with self._connection() as db:
                if not waiter.taken:
                    batch, self._group = self._group, []
                    for each in batch:
                        each.taken = True
                    works = [each.work for each in batch]
                    trip = asyncio.ensure_future(
                        in_one_trip(db, partial(in_savepoints, works=works), what)
                    )
                    trip.add_done_callback(partial(_settle, batch, what))
                    with contextlib.suppress(StoreError):
                        await asyncio.shield(trip)
        except BaseException:
            if not waiter.taken:  # nobody ran it, and nobody will
                self._group.remove(waiter)
            raise
        result: T = await waiter.outcome
        return result

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._connection() as db, transaction(db):
            yield db
