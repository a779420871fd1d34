"""Running SQLite statements on the store's one aiosqlite connection, and the conversions
every record type shares: times as INTEGER milliseconds since the Unix epoch (UTC),
structured values as JSON text."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import aiosqlite

from bot.errors import StoreError
from memory.rules import truncate_ms

log = logging.getLogger(__name__)

Params = Sequence[object] | Mapping[str, object]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)
MIN_INT64 = -(2**63)
MAX_INT64 = 2**63 - 1

T = TypeVar("T")


@asynccontextmanager
async def transaction(
    db: aiosqlite.Connection, begin: str = "BEGIN IMMEDIATE"
) -> AsyncIterator[None]:
    """Run the body in one transaction, rolled back on any exception, cancellation included.

    BEGIN sits inside the ``try``: a cancelled caller's BEGIN still runs on aiosqlite's thread,
    and the ROLLBACK queued behind it ends that transaction before anyone else's starts.
    """
    try:
        await change(db, begin)
        yield
        await change(db, "COMMIT")
    except BaseException:
        await rollback(db)
        raise


async def in_one_trip(
    db: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T], what: str
) -> T:
    """Run ``work`` in one transaction on aiosqlite's thread, with its sqlite3 connection: a
    write of several statements for the price of one trip to that thread (each statement of
    :func:`transaction` is a trip of its own). ``work`` commits or rolls back before the trip
    ends, so a cancelled caller leaves no transaction open.

    aiosqlite has no public call for this: ``_execute`` queues a function for its thread,
    as each of its own methods does (checked by the store contract tests on upgrades).
    """

    def atomically(conn: sqlite3.Connection) -> T:
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = work(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return done

    try:
        result: T = await db._execute(atomically, db._conn)  # type: ignore[no-untyped-call]
    except sqlite3.Error as error:
        raise StoreError(f"SQLite could not {what}: {error}") from error
    return result


def in_savepoints(
    conn: sqlite3.Connection, works: Sequence[Callable[[sqlite3.Connection], object]]
) -> list[object | sqlite3.Error]:
    """Run each of ``works`` inside the caller's ``BEGIN IMMEDIATE`` transaction so that one
    failing with a SQLite error is undone alone and its error is its outcome.

    Optimistic: a group runs straight through, each write without a savepoint (two
    statements fewer a write). Should one fail, the whole group is rolled back and run again
    with a savepoint per write: the writes are statements alone (no effect outside the
    database), so running one again after a rollback does it once."""
    try:
        return [work(conn) for work in works]
    except sqlite3.Error:
        conn.execute("ROLLBACK")
        conn.execute("BEGIN IMMEDIATE")
    outcomes: list[object | sqlite3.Error] = []
    for work in works:
        conn.execute("SAVEPOINT grouped")
        try:
            outcome = work(conn)
        except sqlite3.Error as error:
            conn.execute("ROLLBACK TO grouped")
            outcomes.append(error)
        else:
            outcomes.append(outcome)
        conn.execute("RELEASE grouped")
    return outcomes


async def rollback(db: aiosqlite.Connection) -> None:
    try:
        await db.execute("ROLLBACK")
    except sqlite3.Error:
        # No transaction left to end: BEGIN failed, or the COMMIT ran after all.
        log.debug("rollback found no transaction", exc_info=True)


async def fetch(db: aiosqlite.Connection, sql: str, params: Params = ()) -> list[sqlite3.Row]:
    try:
        return list(await db.execute_fetchall(sql, params))
    except sqlite3.Error as error:
        raise StoreError(f"SQLite query failed: {error}") from error


async def change(db: aiosqlite.Connection, sql: str, params: Params = ()) -> int:
    """Run one statement; returns how many rows it inserted, updated or deleted."""
    try:
        async with db.execute(sql, params) as cursor:
            changed = cursor.rowcount
    except sqlite3.Error as error:
        raise StoreError(f"SQLite statement failed: {error}") from error
    return changed


async def change_many(db: aiosqlite.Connection, sql: str, rows: Sequence[Sequence[object]]) -> None:
    if not rows:
        return
    try:
        async with db.executemany(sql, rows):
            pass
    except sqlite3.Error as error:
        raise StoreError(f"SQLite statement failed: {error}") from error


def to_ms(moment: datetime) -> int:
    return (truncate_ms(moment) - EPOCH) // ONE_MS


def from_ms(ms: int) -> datetime:
    return EPOCH + ms * ONE_MS


def optional_time(ms: int | None) -> datetime | None:
    return None if ms is None else from_ms(ms)


def dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)
