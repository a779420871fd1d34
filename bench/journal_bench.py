"""The turn journal's cost: what a platform's acknowledgement waits for, and throughput.

A Slack message is acknowledged once its journal entry is stored (``TurnJournal.record``), so
the time of that write is the time added before the acknowledgement. Throughput compares the
same messages answered straight through the engine (``Engine.reply``, many in flight) and
through the journal (recorded, then drained per place under store leases and shown by a
platform that shows instantly), with the instant fake model, so every figure is Parley's own.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter

from bench.engine_bench import run_pool
from bench.fake_model import InstantModel
from bench.report import Target
from bench.stats import Row, summarise
from bench.workload import MODEL, TextSource, bench_agents
from bot.engine import Engine, IncomingMessage, Turn
from bot.journal import Shown, TurnJournal
from bot.tokens import TokenCounter
from memory.base import ConversationStore, JournalEntry, NewJournalEntry, PlatformKey

IN_FLIGHT = 50
THROUGHPUT_TARGET = 0.20
"""The journal may cost at most this share of throughput."""
ACK_TARGET_MS = 100.0
"""What the acknowledgement may wait for, at p99 (Slack wants one within 3 s)."""


class InstantPlatform:
    """Shows every reply at once (the journal's :class:`bot.journal.Shower`)."""

    async def incoming(self, entry: JournalEntry) -> IncomingMessage | None:
        return IncomingMessage(
            key=entry.key,
            text=str(entry.message["text"]),
            author_name="Ada",
            platform_message_id=entry.id,
        )

    async def show_live(self, entry: JournalEntry, turn: Turn) -> Shown:
        result = await turn.result()
        return Shown(complete=True, ref=result.reply.id)

    async def show_stored(self, entry: JournalEntry, text: str) -> Shown:
        return Shown(complete=True)

    async def tell(self, entry: JournalEntry, line: str) -> None:
        return None


def _entry(run: str, place: PlatformKey, n: int, text: str) -> NewJournalEntry:
    return NewJournalEntry(
        id=f"bench:{run}:{place.thread}:{n}",
        key=place,
        position=f"{n:012d}",
        message={"text": text},
    )


async def run_journal(
    store: ConversationStore,
    *,
    store_name: str,
    tokens: TokenCounter,
    places: int,
    per_place: int,
    progress: Callable[[str], None],
) -> tuple[list[Row], list[Target]]:
    """Rows for the acknowledgement's journal write and for throughput with and without the
    journal, and the two targets."""
    texts = TextSource(seed=7)
    model = InstantModel()
    engine = Engine(
        store=store,
        agents=bench_agents(),
        model=model,
        tokens=tokens,
        default_model=MODEL,
        max_queued_per_conversation=per_place + 1,
    )
    keys = [
        PlatformKey(platform="slack", workspace="TBENCH", channel="C1", thread=f"{n}.0")
        for n in range(places)
    ]
    messages = [(k, n, texts.user_text()) for n in range(per_place) for k in keys]
    try:
        progress(f"journal: {len(messages):,} messages straight through the engine")
        direct_keys = [k.model_copy(update={"channel": "C2"}) for k in keys]
        plain = [
            IncomingMessage(key=direct_keys[i % places], text=t, author_name="Ada")
            for i, (_, _, t) in enumerate(messages)
        ]
        started = perf_counter()
        direct = await run_pool(engine, plain, IN_FLIGHT)
        direct_wall = perf_counter() - started

        progress(f"journal: {len(messages):,} acknowledgement writes, one at a time")
        journal = TurnJournal(engine=engine, sweep_every=3600.0)
        journal.register("slack", InstantPlatform())
        acks: list[float] = []
        for key, n, text in messages[: len(messages) // 2]:
            start = perf_counter()
            await journal.record(_entry("ack", key.model_copy(update={"channel": "C3"}), n, text))
            acks.append(perf_counter() - start)

        progress(f"journal: {len(messages):,} messages recorded and drained")
        started = perf_counter()
        for key, n, text in messages:
            await journal.record(_entry("run", key, n, text))
            journal.kick(key)
        await journal.wait_idle()
        through_wall = perf_counter() - started
        for key in keys:  # the entries of the acknowledgement phase are answered too
            journal.kick(key.model_copy(update={"channel": "C3"}))
        await journal.wait_idle()
        backlog = await store.journal_backlog()
        await journal.stop(grace=1.0)
    finally:
        await engine.aclose()
        await model.close()
    rows = [
        summarise(
            latencies=acks,
            wall=sum(acks),
            cpu=0.0,
            store=store_name,
            section="journal",
            approach="ack",
            scenario="journal write before the acknowledgement, one at a time",
        ),
        summarise(
            latencies=direct,
            wall=direct_wall,
            cpu=0.0,
            store=store_name,
            section="journal",
            approach="engine",
            scenario=f"engine alone, {IN_FLIGHT} in flight, {places} threads",
        ),
    ]
    journal_row = summarise(
        latencies=[through_wall / len(messages)] * len(messages),
        wall=through_wall,
        cpu=0.0,
        store=store_name,
        section="journal",
        approach="journal",
        scenario=f"through the journal, all recorded at once, {places} threads",
    )
    rows.append(journal_row)
    direct_rate = len(messages) / direct_wall
    journal_rate = len(messages) / through_wall
    cost = 1.0 - journal_rate / direct_rate
    journal_row.target = (
        f"cost {cost:.0%} {'met' if cost < THROUGHPUT_TARGET else 'NOT met'} "
        f"(<{THROUGHPUT_TARGET:.0%})"
    )
    if backlog:
        raise RuntimeError(f"{backlog} journal entries left unanswered")
    ack = rows[0]
    targets = [
        Target(
            store=store_name,
            name=f"the journal write before an acknowledgement p99 < {ACK_TARGET_MS:g} ms",
            met=ack.p99_ms < ACK_TARGET_MS,
            detail=f"p50 {ack.p50_ms:.2f} ms, p99 {ack.p99_ms:.2f} ms over {ack.samples:,} writes",
        ),
        Target(
            store=store_name,
            name=f"the journal costs under {THROUGHPUT_TARGET:.0%} of throughput",
            met=cost < THROUGHPUT_TARGET,
            detail=f"{journal_rate:,.0f} msgs/s through the journal against {direct_rate:,.0f} "
            f"straight through the engine: {cost:.0%} less",
        ),
    ]
    return rows, targets
