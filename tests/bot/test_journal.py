"""The turn journal over both stores: order per place, once only, across processes, after
crashes and through store outages. A recording platform stands in for Slack and Discord (the
adapters' own tests show the journal through the fake servers)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from bot.engine import Engine, IncomingMessage, Turn
from bot.errors import StoreUnavailable
from bot.journal import CATCHING_UP_LINE, LEASE_PREFIX, STOPPED, Shown, TurnJournal
from memory.base import ConversationStore, JournalEntry, NewJournalEntry, NewMessage, PlatformKey
from memory.sqlite import SqliteStore
from tests.support.agents import agents_file, plain
from tests.support.clock import FakeClock
from tests.support.engines import EngineFactory
from tests.support.fake_openai import FakeOpenAI, HeldModel
from tests.support.stores import StoreFactory
from tests.support.waiting import eventually

LEASE = 30.0


@dataclass
class RecordingPlatform:
    """Shows replies in memory: what each entry showed, in the order shown."""

    shown: list[tuple[str, str]] = field(default_factory=list)
    told: list[tuple[str, str]] = field(default_factory=list)
    cut_streams: bool = False
    stored_shows: list[str] = field(default_factory=list)
    cut_refs: list[str | None] = field(default_factory=list)
    """The ``shown_ref`` each live show was given: a reply an earlier attempt left cut."""
    cleared: list[tuple[str, datetime]] = field(default_factory=list)
    """Entries whose leftovers were cleared, and since when."""

    async def incoming(self, entry: JournalEntry) -> IncomingMessage | None:
        return IncomingMessage(
            key=entry.key,
            text=str(entry.message["text"]),
            author_name="Ada",
            platform_message_id=entry.id,
        )

    async def show_live(self, entry: JournalEntry, turn: Turn) -> Shown:
        self.cut_refs.append(entry.shown_ref)
        result = await turn.result()
        if self.cut_streams:
            return Shown(complete=False, ref=f"m-{entry.id}")
        self.shown.append((entry.id, result.text))
        return Shown(complete=True, ref=f"m-{entry.id}")

    async def show_stored(self, entry: JournalEntry, text: str) -> Shown:
        self.stored_shows.append(entry.id)
        self.shown.append((entry.id, text))
        return Shown(complete=True, ref=entry.shown_ref or f"m-{entry.id}")

    async def tell(self, entry: JournalEntry, line: str) -> None:
        self.told.append((entry.id, line))

    async def clear_leftovers(self, entry: JournalEntry, since: datetime) -> None:
        self.cleared.append((entry.id, since))


def place(n: int) -> PlatformKey:
    return PlatformKey(platform="slack", workspace="T1", channel="C1", thread=f"{n}.0")


def entry(key: PlatformKey, position: int, text: str | None = None) -> NewJournalEntry:
    return NewJournalEntry(
        id=f"slack:{key.thread}:{position}",
        key=key,
        position=f"{position:012d}",
        message={"text": text or f"message {position}"},
    )


@dataclass
class Process:
    """One bot process: its store object, engine and journal."""

    store: ConversationStore
    engine: Engine
    journal: TurnJournal
    platform: RecordingPlatform


@pytest.fixture
async def processes(
    store_factory: StoreFactory, make_engine: EngineFactory, clock: FakeClock
) -> AsyncIterator[Callable[..., Any]]:
    made: list[Process] = []

    async def start(*, running: bool = True, **options: Any) -> Process:
        store = await store_factory()
        engine = make_engine(agents_file(plain()), store=store)
        settings: dict[str, Any] = {
            "lease_seconds": LEASE,
            "sweep_every": 0.05,
            "retry_seconds": 0.05,
            "clock": clock,
        }
        journal = TurnJournal(engine=engine, **(settings | options))
        platform = RecordingPlatform()
        journal.register("slack", platform)
        if running:
            await journal.start()
        made.append(Process(store, engine, journal, platform))
        return made[-1]

    yield start
    for process in made:
        await process.journal.stop(grace=1.0)


async def user_texts(store: ConversationStore, key: PlatformKey) -> list[str]:
    conversation = await store.find_conversation(key=key)
    assert conversation is not None
    messages = await store.list_messages(conversation_id=conversation.id, limit=1000)
    return [m.text for m in messages if m.role == "user"]


async def drained(store: ConversationStore, within: float = 20.0) -> None:
    async def empty() -> bool:
        return await store.journal_backlog() == 0

    await eventually(empty, within=within)


async def test_a_place_is_answered_in_platform_order_once(
    processes: Callable[..., Any],
) -> None:
    """Entries waiting at a place (recorded out of order, here by the store as a stopping
    process would leave them) are taken by position, each answered and shown once."""
    bot: Process = await processes()
    key = place(1)
    for position in (3, 1, 2):
        _, created = await bot.store.journal_add(entry(key, position))
        assert created
    assert not await bot.journal.record(entry(key, 2)), "a redelivery is the same entry"
    bot.journal.kick(key)
    await drained(bot.store)
    assert await user_texts(bot.store, key) == ["message 1", "message 2", "message 3"]
    assert [shown for shown, _ in bot.platform.shown] == [entry(key, n).id for n in (1, 2, 3)], (
        "shown once each, in order"
    )
    stored = await bot.store.journal_get(entry_id=entry(key, 3).id)
    assert stored is not None
    assert (stored.state, stored.shown_ref) == ("shown", f"m-{stored.id}")


async def test_two_processes_answer_every_message_once_in_order(
    processes: Callable[..., Any],
) -> None:
    one: Process = await processes()
    two: Process = await processes()
    chance = random.Random(7)  # noqa: S311 - which process gets which message, repeatably
    places = [place(n) for n in range(10)]
    for position in range(1, 6):
        for key in places:
            taker = chance.choice((one, two))
            await taker.journal.record(entry(key, position))
            taker.journal.kick(key)
    await drained(one.store)
    for key in places:
        assert await user_texts(one.store, key) == [f"message {n}" for n in range(1, 6)]
    shown = [entry_id for entry_id, _ in one.platform.shown + two.platform.shown]
    assert sorted(shown) == sorted(entry(k, n).id for k in places for n in range(1, 6))


async def test_a_dead_process_places_are_taken_over_once(
    processes: Callable[..., Any], clock: FakeClock
) -> None:
    """It stored the message and died holding the lease: after the lease, another process
    answers it without storing the message twice."""
    survivor: Process = await processes(running=False)
    key = place(2)
    recorded = entry(key, 1, "are you there?")
    await survivor.store.journal_add(recorded)
    await survivor.store.journal_update(entry_id=recorded.id, add_attempt=True)
    conversation, _ = await survivor.store.get_or_create_conversation(key=key, agent_id="plain")
    await survivor.store.append_message(
        conversation_id=conversation.id,
        message=NewMessage(role="user", text="are you there?", platform_message_id=recorded.id),
    )
    assert await survivor.store.claim(
        key=LEASE_PREFIX + key.canonical, owner="dead", ttl_seconds=LEASE
    )
    await survivor.journal.start()
    await asyncio.sleep(0.3)  # several sweeps: the lease still holds
    assert survivor.platform.shown == []

    clock.advance(LEASE + 1)
    await drained(survivor.store)
    assert await user_texts(survivor.store, key) == ["are you there?"]
    assert [entry_id for entry_id, _ in survivor.platform.shown] == [recorded.id]


async def test_an_answered_entry_is_shown_from_its_stored_reply(
    processes: Callable[..., Any], clock: FakeClock, fake_openai: FakeOpenAI
) -> None:
    survivor: Process = await processes()
    key = place(3)
    result = await survivor.engine.reply(
        IncomingMessage(key=key, text="hello", author_name="Ada", platform_message_id="x")
    ).result()
    recorded = entry(key, 1, "hello")
    await survivor.store.journal_add(recorded)
    await survivor.store.journal_update(
        entry_id=recorded.id,
        state="answered",
        conversation_id=result.conversation.id,
        user_message_id=result.user_message.id,
        reply_message_id=result.reply.id,
        shown_ref="1700.5",
    )
    asked = len(fake_openai.chat_requests())
    clock.advance(LEASE + 1)
    await drained(survivor.store)
    assert survivor.platform.shown == [(recorded.id, result.text)]
    assert len(fake_openai.chat_requests()) == asked, "answered once"
    shown = await survivor.store.journal_get(entry_id=recorded.id)
    assert shown is not None
    assert shown.shown_ref == "1700.5", "the cut message was completed"


async def test_a_stream_cut_short_is_shown_in_full(processes: Callable[..., Any]) -> None:
    bot: Process = await processes()
    bot.platform.cut_streams = True
    key = place(4)
    await bot.journal.record(entry(key, 1, "tell me a story"))
    bot.journal.kick(key)
    await drained(bot.store)
    assert bot.platform.stored_shows == [entry(key, 1).id]
    assert bot.platform.shown == [(entry(key, 1).id, "You said: Ada: tell me a story")]
    assert bot.platform.cleared == [], "a first attempt has nothing to clear"


async def test_a_reply_cut_by_a_dead_process_is_handed_to_the_next_attempt(
    processes: Callable[..., Any], clock: FakeClock
) -> None:
    """The dead process recorded where its reply's first message went as soon as it was
    posted: the process that takes the entry over is told, to remove it before answering."""
    survivor: Process = await processes(running=False)
    key = place(6)
    recorded, _ = await survivor.store.journal_add(entry(key, 1, "still there?"))
    started = await survivor.store.journal_update(entry_id=recorded.id, add_attempt=True)
    assert started is not None
    await survivor.journal.reply_posted(started, "1700.9")  # as the dead process did
    assert await survivor.store.claim(
        key=LEASE_PREFIX + key.canonical, owner="dead", ttl_seconds=LEASE
    )
    stump = await survivor.store.journal_get(entry_id=recorded.id)
    assert stump is not None
    assert (stump.state, stump.shown_ref) == ("received", "1700.9")

    await survivor.journal.start()
    clock.advance(LEASE + 1)
    await drained(survivor.store)
    assert survivor.platform.cut_refs == ["1700.9"]
    # What the dead attempt posted after its last write (its reply's later parts, a line)
    # is recorded nowhere: the retry clears it first.
    assert survivor.platform.cleared == [(recorded.id, stump.updated_at)]
    assert survivor.platform.shown == [(recorded.id, "You said: Ada: still there?")]
    shown = await survivor.store.journal_get(entry_id=recorded.id)
    assert shown is not None
    assert (shown.state, shown.shown_ref) == ("shown", f"m-{recorded.id}")


class FlakyStore:
    """The store, with message writes failing while ``down`` is set."""

    def __init__(self, store: ConversationStore) -> None:
        self._store = store
        self.down = False
        self.refused = 0

    async def append_message(self, **arguments: Any) -> Any:
        if self.down:
            self.refused += 1
            raise StoreUnavailable("the store is down")
        return await self._store.append_message(**arguments)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def test_a_store_outage_is_told_once_and_answered_after(
    store_factory: StoreFactory, make_engine: EngineFactory, clock: FakeClock
) -> None:
    store = FlakyStore(await store_factory())
    engine = make_engine(agents_file(plain()), store=store)
    journal = TurnJournal(engine=engine, sweep_every=0.05, retry_seconds=0.02, clock=clock)
    platform = RecordingPlatform()
    journal.register("slack", platform)
    key = place(5)
    store.down = True
    try:
        await journal.record(entry(key, 1, "still there?"))
        journal.kick(key)

        async def refused_a_few() -> bool:
            return store.refused >= 3

        await eventually(refused_a_few)
        assert platform.told == [(entry(key, 1).id, CATCHING_UP_LINE)], "told once"
        assert platform.shown == []
        store.down = False
        await drained(store._store)
        assert platform.shown == [(entry(key, 1).id, "You said: Ada: still there?")]
        assert await user_texts(store._store, key) == ["still there?"]
    finally:
        await journal.stop(grace=1.0)


async def test_a_stopped_process_leaves_unfinished_entries_for_the_next(
    processes: Callable[..., Any], fake_openai: FakeOpenAI
) -> None:
    held = HeldModel()
    fake_openai.handle(held)
    first: Process = await processes()
    key = place(6)
    await first.journal.record(entry(key, 1, "slow one"))
    first.journal.kick(key)
    await held.until(1)
    await first.journal.stop(grace=0.1)
    left = await first.store.journal_get(entry_id=entry(key, 1).id)
    assert left is not None
    assert left.unfinished, "kept for the next process"

    held.release()
    second: Process = await processes()  # at once: the first gave its lease back
    await drained(second.store)
    assert [entry_id for entry_id, _ in second.platform.shown] == [entry(key, 1).id]
    assert await user_texts(second.store, key) == ["slow one"]


class ArrivesDuringTheLastLook:
    """The store, with one more message recorded and kicked while the drain's last look for
    work (the step that finds the place empty and lets its lease go) is on its way back with
    nothing."""

    def __init__(self, store: ConversationStore, arrival: NewJournalEntry) -> None:
        self._store = store
        self.arrival: NewJournalEntry | None = arrival
        self.journal: TurnJournal | None = None

    async def journal_advance(self, **step: Any) -> JournalEntry | None:
        taken = await self._store.journal_advance(**step)
        if taken is None and self.arrival is not None and self.journal:
            arrival, self.arrival = self.arrival, None
            await self._store.journal_add(arrival)
            self.journal.kick(arrival.key)
        return taken

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def test_a_message_kicked_while_a_drain_ends_is_answered_at_once(
    store_factory: StoreFactory, make_engine: EngineFactory, clock: FakeClock
) -> None:
    """The kick finds the drain still running and leaves it a note: the drain reads the note
    after its last look, instead of leaving the message for a sweep a lease later."""
    key = place(7)
    store = ArrivesDuringTheLastLook(await store_factory(), entry(key, 2, "one more"))
    engine = make_engine(agents_file(plain()), store=store)
    journal = TurnJournal(engine=engine, sweep_every=3600.0, retry_seconds=0.02, clock=clock)
    store.journal = journal
    platform = RecordingPlatform()
    journal.register("slack", platform)
    try:
        await journal.record(entry(key, 1, "first"))
        journal.kick(key)
        await asyncio.wait_for(journal.wait_idle(), timeout=10)
        assert store.arrival is None, "the second message arrived during the last look"
        await drained(store._store, within=5)
        assert [shown for shown, _ in platform.shown] == [entry(key, n).id for n in (1, 2)]
    finally:
        await journal.stop(grace=1.0)


class CountingSteps:
    """The store, counting the drain steps (``journal_advance``) made through it and the
    records that took their entry up."""

    def __init__(self, store: ConversationStore) -> None:
        self._store = store
        self.steps = 0
        self.taken_on_add = 0

    async def journal_advance(self, **step: Any) -> JournalEntry | None:
        self.steps += 1
        return await self._store.journal_advance(**step)

    async def journal_add_and_take(
        self, new: NewJournalEntry, **lease: Any
    ) -> tuple[JournalEntry, bool, JournalEntry | None]:
        added = await self._store.journal_add_and_take(new, **lease)
        self.taken_on_add += added[2] is not None
        return added

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def test_a_message_at_a_quiet_place_is_taken_up_by_the_write_that_records_it(
    store_factory: StoreFactory, make_engine: EngineFactory, clock: FakeClock
) -> None:
    """Where no drain runs, the record takes the lease and the entry (SQLite, in its one
    write): the only drain step left is the one that writes it shown and lets the lease go
    (a store that takes nothing on the add needs one step more). Where a drain runs, the
    record leaves the message to it."""
    store = CountingSteps(await store_factory())
    engine = make_engine(agents_file(plain()), store=store)
    journal = TurnJournal(engine=engine, sweep_every=3600.0, retry_seconds=0.02, clock=clock)
    platform = RecordingPlatform()
    journal.register("slack", platform)
    key = place(11)
    try:
        assert await journal.record(entry(key, 1, "first"))
        journal.kick(key)
        await asyncio.wait_for(journal.wait_idle(), timeout=10)
        assert store.steps == 2 - store.taken_on_add
        for position in (2, 3):  # the second arrives while the first is being answered
            assert await journal.record(entry(key, position))
            journal.kick(key)
        await asyncio.wait_for(journal.wait_idle(), timeout=10)
        await drained(store._store, within=5)
        assert [shown for shown, _ in platform.shown] == [entry(key, n).id for n in (1, 2, 3)]
        assert store.steps == 5 - store.taken_on_add, "one step after each entry"
        assert store.taken_on_add == (2 if isinstance(store._store, SqliteStore) else 0)
        assert not await journal.record(entry(key, 3)), "a redelivery"
        assert journal.draining == 0
    finally:
        await journal.stop(grace=1.0)


async def test_a_message_a_stopping_process_recorded_is_answered_well_within_a_lease(
    processes: Callable[..., Any], clock: FakeClock
) -> None:
    """A rolling deploy: the stopping process still records what arrives but drains nothing
    and holds no lease for it; a process already running takes it after two quiet sweeps,
    not after a lease."""
    running: Process = await processes()
    await asyncio.sleep(0.2)  # its start-up sweep is over: only its periodic sweeps remain
    stopping: Process = await processes()
    await stopping.journal.stop(grace=0.1)
    key = place(8)
    assert await stopping.journal.record(entry(key, 1, "during the deploy"))
    stopping.journal.kick(key)  # takes nothing: it is stopping
    await asyncio.sleep(0.3)
    assert running.platform.shown == [], "touched a moment ago: left to its receiver"
    clock.advance(1)  # two sweeps' quiet, far short of the 30 s lease
    await drained(running.store, within=5)
    assert [entry_id for entry_id, _ in running.platform.shown] == [entry(key, 1).id]
    assert stopping.platform.shown == []


async def test_stop_taking_finishes_the_entry_in_hand_and_starts_nothing_new(
    processes: Callable[..., Any], fake_openai: FakeOpenAI
) -> None:
    """SIGTERM: nothing new starts from the moment the process is told, before its parts
    are stopped one by one; what arrives is recorded for the next process."""
    held = HeldModel()
    fake_openai.handle(held)
    bot: Process = await processes()
    key, other = place(9), place(10)
    for position in (1, 2):
        await bot.journal.record(entry(key, position))
    bot.journal.kick(key)
    await held.until(1)
    bot.journal.stop_taking()
    await bot.journal.record(entry(other, 1))
    bot.journal.kick(other)
    held.release()
    await asyncio.wait_for(bot.journal.wait_idle(), timeout=10)
    assert [shown for shown, _ in bot.platform.shown] == [entry(key, 1).id]
    assert await bot.store.journal_backlog() == 2, "the next entry and the late one are kept"


async def test_a_long_turn_keeps_its_lease_and_lets_it_go_after(
    processes: Callable[..., Any], fake_openai: FakeOpenAI
) -> None:
    """A turn longer than a third of the lease renews it while it runs (another process
    cannot take the place), and no renewal lands after the place is let go."""
    held = HeldModel()
    fake_openai.handle(held)
    bot: Process = await processes(lease_seconds=0.3)
    claims: list[str] = []
    claim = bot.store.claim

    async def counted(*, key: str, owner: str, ttl_seconds: float) -> bool:
        claims.append(key)
        return await claim(key=key, owner=owner, ttl_seconds=ttl_seconds)

    bot.store.claim = counted  # type: ignore[method-assign]
    key = place(11)
    lease = LEASE_PREFIX + key.canonical
    await bot.journal.record(entry(key, 1, "a long one"))
    bot.journal.kick(key)
    await held.until(1)
    await asyncio.sleep(0.35)
    assert claims.count(lease) >= 2, claims
    assert not await claim(key=lease, owner="other", ttl_seconds=30), "still held"
    held.release()
    await drained(bot.store)
    await asyncio.wait_for(bot.journal.wait_idle(), timeout=10)
    assert await claim(key=lease, owner="other", ttl_seconds=30), "let go when done"


async def test_a_stopped_turn_ends_failed_and_the_place_goes_on(
    processes: Callable[..., Any], fake_openai: FakeOpenAI
) -> None:
    """A person pressed Stop: the engine's turn is cancelled, the entry is finished as
    stopped (never answered again, by this process or another), the next entry is answered."""
    held = HeldModel()
    fake_openai.handle(held)
    bot: Process = await processes()
    key = place(12)
    assert not bot.journal.stop_turn(key), "nothing in progress"
    for position in (1, 2):
        await bot.journal.record(entry(key, position))
    bot.journal.kick(key)
    await held.until(1)

    assert bot.journal.stop_turn(key)
    assert not bot.journal.stop_turn(key), "once"
    await held.until(2)  # the place went on to message 2
    held.release()
    await drained(bot.store)
    stopped = await bot.store.journal_get(entry_id=entry(key, 1).id)
    assert stopped is not None
    assert (stopped.state, stopped.error) == ("failed", STOPPED)
    assert [shown for shown, _ in bot.platform.shown] == [entry(key, 2).id]
    conversation = await bot.store.find_conversation(key=key)
    assert conversation is not None
    messages = await bot.store.list_messages(conversation_id=conversation.id)
    assert [m.text for m in messages if m.role == "assistant"] == [bot.platform.shown[0][1]]

    other: Process = await processes()
    assert await other.journal.sweep() == 0, "nothing left for a takeover"


async def test_a_stop_requested_elsewhere_is_found_in_the_store(
    processes: Callable[..., Any], fake_openai: FakeOpenAI
) -> None:
    held = HeldModel()
    fake_openai.handle(held)
    writer: Process = await processes()
    other: Process = await processes(running=False)  # it answers nothing: it got the Stop
    key = place(13)
    assert not await other.journal.request_stop(key), "nothing waits there"
    await writer.journal.record(entry(key, 1))
    writer.journal.kick(key)
    await held.until(1)

    assert await other.journal.request_stop(key)
    answering = await writer.store.journal_get(entry_id=entry(key, 1).id)
    assert answering is not None
    assert (answering.state, answering.error) == ("failed", STOPPED)
    assert await writer.journal.stopped(answering)
    assert writer.journal.stop_turn(key)
    held.release()
    await asyncio.wait_for(writer.journal.wait_idle(), timeout=10)
    assert writer.platform.shown == []
    assert await writer.store.journal_backlog() == 0
