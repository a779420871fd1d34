"""Two replicas of ``python -m bot run`` sharing one store and one Slack app (issue #14).

Both connect to the same fake Slack in Socket Mode, and the fake spreads the envelopes over
their two connections at random, so each thread's messages land on either process. Each
thread's turns are nevertheless answered in message order, once: the journal drains a thread
under a lease in the store, in Slack's order, whichever process recorded each message.

The threads talk at once; within a thread the person's next message is sent once Slack has
the previous one acknowledged (so it is in the store). That is the order the journal can
promise: Slack itself may deliver (or redeliver) a thread's events out of order, and a message
recorded after a later one was answered is answered after it.

Store delays: on MongoDB every chunk between the bots and SecantusDB goes through
:class:`~tests.support.delay_proxy.DelayProxy`, delayed by a random 0..50 ms. SQLite has no
wire to delay: there the two processes contend for one file for real (its locks, its busy
waits), which is the concurrency a SQLite deployment has.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from memory.base import ConversationStore
from memory.mongo import MongoStore
from memory.sqlite import SqliteStore
from tests.support.delay_proxy import DelayProxy
from tests.support.fake_openai import FakeOpenAI
from tests.support.fake_slack import FakeSlack
from tests.support.slack_replicas import (
    OPENAI_KEY,
    ReplicaStarter,
    all_answered,
    answers,
    check_stored,
    converse,
    proxied,
    slack_settings,
    threads,
)

THREADS = 50
MESSAGES = 5


@pytest.fixture
async def replicas(tmp_path: Path) -> AsyncIterator[ReplicaStarter]:
    async with ReplicaStarter(tmp_path) as start:
        yield start


@dataclass
class SharedStore:
    """The store the replicas share: their settings, and the test's own way in."""

    settings: dict[str, str]
    open: Callable[[], ConversationStore]
    proxy: DelayProxy | None = None
    """Between the bots and MongoDB (None for SQLite)."""

    async def opened(self) -> ConversationStore:
        store = self.open()
        await store.open()
        return store


@pytest.fixture(params=["sqlite", "mongo"])
async def shared_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[SharedStore]:
    """One SQLite file, or one MongoDB database on SecantusDB reached through a proxy that
    delays every chunk by a random 0..50 ms."""
    if request.param == "sqlite":
        path = tmp_path / "data" / "parley.sqlite3"
        yield SharedStore({"BOT_DATA_DIR": str(path.parent)}, lambda: SqliteStore(path=path))
        return
    uri: str = request.getfixturevalue("secantus_uri")
    database: str = request.getfixturevalue("mongo_database")
    host, port = uri.removeprefix("mongodb://").split(":")
    async with DelayProxy(host, int(port), max_delay=0.05, seed=14) as proxy:
        settings = {"MONGODB_URI": proxied(proxy), "MONGODB_DB": database}
        yield SharedStore(settings, lambda: MongoStore(uri=uri, database=database), proxy)


async def test_two_replicas_answer_every_thread_in_order_once(
    shared_store: SharedStore,
    fake_slack: FakeSlack,
    fake_openai: FakeOpenAI,
    replicas: ReplicaStarter,
) -> None:
    fake_slack.spread = random.Random(14)  # noqa: S311 - which replica gets which envelope
    began = time.monotonic()  # the phases' times, shown when an assertion fails
    bots = await replicas(2, **slack_settings(fake_slack, fake_openai), **shared_store.settings)
    await fake_slack.wait_for(lambda: fake_slack.open_connections == 2, within=60)
    started = time.monotonic()

    conversations = threads(THREADS, MESSAGES)
    await asyncio.gather(*(converse(fake_slack, thread) for thread in conversations))
    await fake_slack.wait_for(lambda: all_answered(fake_slack, conversations), within=60)
    answered = time.monotonic()
    codes = await bots.stop()
    output = bots.output()
    assert codes == [0, 0], output
    timing = f"replicas up in {started - began:.1f}s, answered in {answered - started:.1f}s"

    assert {e.connection for e in fake_slack.envelopes} == {1, 2}, "both replicas had envelopes"
    assert all(e.acked_at is not None for e in fake_slack.envelopes), "every envelope acked"
    for thread in conversations:
        shown = fake_slack.thread(thread.channel, thread.root)
        assert [m.text for m in shown] == thread.replies, (thread.channel, timing)
        assert not any(m.streaming for m in shown)
    assert answers(fake_openai) == THREADS * MESSAGES, "the model was asked once a message"
    assert "Traceback" not in output, output
    assert OPENAI_KEY not in output
    if shared_store.proxy is not None:
        assert shared_store.proxy.chunks > 1000, "the bots reached the store through the proxy"

    store = await shared_store.opened()
    try:
        assert await store.journal_backlog() == 0
        for thread in conversations:
            await check_stored(store, thread, attempts=1)
    finally:
        await store.close()
