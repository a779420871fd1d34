"""SQLite's write path: grouped writes share one trip and one commit yet fail alone, and WAL
checkpoints run beside the writes instead of inside one of them."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiosqlite
import pytest

from bot.errors import StoreError
from memory.base import NewJournalEntry, PlatformKey
from memory.sqlite import SqliteStore
from memory.sqlite.checkpoint import BACKSTOP_PAGES, Checkpointer

KEY = PlatformKey(platform="slack", workspace="T1", channel="C1", thread="1700000000.000100")


def entry(n: int) -> NewJournalEntry:
    return NewJournalEntry(id=f"slack:{n}", key=KEY, position=f"{n:04}", message={"text": "x"})


@pytest.fixture
async def store(tmp_path: Path) -> SqliteStore:
    opened = SqliteStore(path=tmp_path / "writes.sqlite3")
    await opened.open()
    yield opened  # type: ignore[misc]
    await opened.close()


async def test_concurrent_journal_writes_share_trips(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fifty acknowledgements waiting at once are recorded in far fewer trips to SQLite's
    thread than fifty, and each gets its own answer."""
    trips = 0
    execute = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: object, *args: object) -> object:
        nonlocal trips
        trips += 1
        return await execute(self, fn, *args)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    results = await asyncio.gather(*(store.journal_add(entry(n)) for n in range(50)))
    assert [created for _, created in results] == [True] * 50
    assert [added.id for added, _ in results] == [f"slack:{n}" for n in range(50)]
    assert trips < 10, trips
    again = await asyncio.gather(*(store.journal_add(entry(n)) for n in (3, 60)))
    assert [created for _, created in again] == [False, True]
    assert await store.journal_backlog() == 51


async def test_a_failing_grouped_write_fails_alone(store: SqliteStore) -> None:
    def good(n: int) -> object:
        def write(db: sqlite3.Connection) -> object:
            db.execute(
                "INSERT INTO claims (key, owner, expires_at) VALUES (?, 'p1', 4000000000000)",
                (f"k{n}",),
            )
            return n

        return write

    def bad(db: sqlite3.Connection) -> object:
        db.execute("INSERT INTO claims (key, owner, expires_at) VALUES ('k-bad', 'p1', 1)")
        db.execute("INSERT INTO claims (key, owner, expires_at) VALUES ('k-bad', 'p1', 1)")
        return "never"

    outcomes = await asyncio.gather(
        store._grouped(good(1), "write one"),
        store._grouped(bad, "write the bad one"),
        store._grouped(good(2), "write two"),
        return_exceptions=True,
    )
    assert outcomes[0] == 1
    assert outcomes[2] == 2
    assert isinstance(outcomes[1], StoreError)
    assert "UNIQUE" in str(outcomes[1])
    assert await store.claim(key="k-bad", owner="p2", ttl_seconds=30), "rolled back alone"
    assert not await store.claim(key="k1", owner="p2", ttl_seconds=30), "kept"


async def test_a_cancelled_writer_leaves_the_others_their_outcomes(store: SqliteStore) -> None:
    first = asyncio.create_task(store.journal_add(entry(1)))
    rest = [asyncio.create_task(store.journal_add(entry(n))) for n in (2, 3)]
    await asyncio.sleep(0)
    first.cancel()
    results = await asyncio.gather(*rest)
    assert [created for _, created in results] == [True, True]
    assert (await store.journal_get(entry_id="slack:2")) is not None


async def test_checkpoints_run_outside_the_writes(tmp_path: Path) -> None:
    path = tmp_path / "wal.sqlite3"
    store = SqliteStore(path=path)
    await store.open()
    try:
        assert store._db is not None
        pages = await store._db.execute_fetchall("PRAGMA wal_autocheckpoint")
        assert next(iter(pages))[0] == BACKSTOP_PAGES
        for n in range(20):
            await store.journal_add(entry(n))
        busy, frames, copied = Checkpointer(path).checkpoint()
        assert busy == 0
        assert frames > 0
        assert copied == frames, "every frame written so far is in the database file"
    finally:
        await store.close()


async def test_the_store_checkpoints_in_the_background(tmp_path: Path) -> None:
    """Written pages reach the database file with no checkpoint from a write (the backstop is
    far away): the store's own checkpointer copied them."""
    path = tmp_path / "wal.sqlite3"
    store = SqliteStore(path=path, checkpoint_every=0.05)
    await store.open()
    try:
        await asyncio.sleep(0.2)  # the schema's pages are in the file
        size = path.stat().st_size
        for n in range(200):
            await store.journal_add(entry(n))
        for _ in range(100):
            if path.stat().st_size > size:
                break
            await asyncio.sleep(0.05)
        assert path.stat().st_size > size
    finally:
        await store.close()
