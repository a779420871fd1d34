"""Store fixtures: every store the product ships, behind one parametrised fixture."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient

from memory.base import ConversationStore
from tests.support.clock import FakeClock

StoreFactory = Callable[[], Awaitable[ConversationStore]]

STORE_KINDS = ["sqlite", "mongo"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def mongo_database(secantus_uri: str) -> Iterator[str]:
    """A fresh database name on the session's SecantusDB, dropped afterwards."""
    name = f"parley_test_{uuid.uuid4().hex[:12]}"
    yield name
    client: MongoClient[dict[str, object]] = MongoClient(secantus_uri)
    try:
        client.drop_database(name)
    finally:
        client.close()


@pytest.fixture(params=STORE_KINDS)
async def store_factory(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[StoreFactory]:
    """Opens stores of one kind that share their data (one file, one database).

    Calling it twice gives two stores on the same data: a reopen after close, or a second
    process's view.
    """
    opened: list[ConversationStore] = []
    if request.param == "sqlite":
        from memory.sqlite import SqliteStore

        path = tmp_path / "parley.sqlite3"

        def make() -> ConversationStore:
            return SqliteStore(path=path, clock=clock)
    else:
        from memory.mongo import MongoStore

        uri: str = request.getfixturevalue("secantus_uri")
        database: str = request.getfixturevalue("mongo_database")

        def make() -> ConversationStore:
            return MongoStore(uri=uri, database=database, clock=clock)

    async def factory() -> ConversationStore:
        store = make()
        await store.open()
        opened.append(store)
        return store

    yield factory
    for store in opened:
        await store.close()


@pytest.fixture
async def store(store_factory: StoreFactory) -> ConversationStore:
    return await store_factory()
