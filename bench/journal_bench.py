"""The turn journal's cost: what a platform's acknowledgement waits for, and throughput.

A Slack message is acknowledged once its journal entry is stored (``TurnJournal.record``), so
the time of that write is the time added before the acknowledgement. Throughput compares the
same messages answered straight through the engine (``Engine.reply``, ``IN_FLIGHT`` at once)
and through the journal (``IN_FLIGHT`` messages arriving at once, as the platform SDKs hand
each event to a task of its own; each recorded, then drained per place under store leases and
shown by a platform that shows instantly), with the instant fake model, so every figure is
Parley's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import datetime
from statistics import median
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
    """Shows every reply at once (the journal's :class:`bot.journal.Shower`). While
    :attr:`answering` is clear, entries are taken but wait before their turn starts."""

    def __init__(self) -> None:
        self.answering = asyncio.Event()
        self.answering.set()

    async def incoming(self, entry: JournalEntry) -> IncomingMessage | None:
        await self.answering.wait()
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

    async def clear_leftovers(self, entry: JournalEntry, since: datetime) -> None:
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
    rounds: int = 3,
) -> tuple[list[Row], list[Target]]:
    """Rows for the acknowledgement's journal write and for throughput with and without the
    journal, and the two targets. Throughput alternates the two ways ``rounds`` times, each on
    fresh threads, and compares the medians: one run of each moves by 10 to 20 points with
    whatever else the machine does."""
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

    def keys(channel: str) -> list[PlatformKey]:
        return [
            PlatformKey(platform="slack", workspace="TBENCH", channel=channel, thread=f"{n}.0")
            for n in range(places)
        ]

    texts_in_order = [(n, texts.user_text()) for n in range(per_place) for _ in range(places)]
    total = len(texts_in_order)
    direct_walls: list[float] = []
    journal_walls: list[float] = []
    direct: list[float] = []
    journal = TurnJournal(engine=engine, sweep_every=3600.0)
    platform = InstantPlatform()
    journal.register("slack", platform)
    try:
        progress(f"journal: {total // 2:,} acknowledgement writes, one at a time")
        acks: list[float] = []
        ack_keys = keys("ACK")
        platform.answering.clear()  # the write alone: each place's first is taken, not answered
        for i, (n, text) in enumerate(texts_in_order[: total // 2]):
            key = ack_keys[i % places]
            start = perf_counter()
            if await journal.record(_entry("ack", key, n, text)):
                journal.kick(key)
            acks.append(perf_counter() - start)
        platform.answering.set()  # answered too, before the rounds start
        await journal.wait_idle()

        for round_ in range(rounds):
            progress(f"journal: round {round_ + 1}/{rounds}, {total:,} messages straight through")
            direct_keys = keys(f"D{round_}")
            plain = [
                IncomingMessage(key=direct_keys[i % places], text=text, author_name="Ada")
                for i, (_, text) in enumerate(texts_in_order)
            ]
            started = perf_counter()
            direct += await run_pool(engine, plain, IN_FLIGHT)
            direct_walls.append(perf_counter() - started)

            progress(f"journal: round {round_ + 1}/{rounds}, {total:,} recorded and drained")
            journal_keys = keys(f"J{round_}")
            arrivals = iter(enumerate(texts_in_order))

            async def arrive(
                arrivals: Iterator[tuple[int, tuple[int, str]]],
                run: str = f"run{round_}",
                at: list[PlatformKey] = journal_keys,
            ) -> None:
                for i, (n, text) in arrivals:
                    key = at[i % places]
                    if await journal.record(_entry(run, key, n, text)):
                        journal.kick(key)

            started = perf_counter()
            await asyncio.gather(*(arrive(arrivals) for _ in range(IN_FLIGHT)))
            await journal.wait_idle()
            journal_walls.append(perf_counter() - started)
        backlog = await store.journal_backlog()
    finally:
        await journal.stop(grace=1.0)
        await engine.aclose()
        await model.close()
    if backlog:
        raise RuntimeError(f"{backlog} journal entries left unanswered")
    return _report(
        store_name,
        acks=acks,
        direct=direct,
        direct_walls=direct_walls,
        journal_walls=journal_walls,
        messages=total,
        places=places,
    )


def _report(
    store_name: str,
    *,
    acks: list[float],
    direct: list[float],
    direct_walls: list[float],
    journal_walls: list[float],
    messages: int,
    places: int,
) -> tuple[list[Row], list[Target]]:
    rounds, total = len(direct_walls), messages
    direct_wall, through_wall = median(direct_walls), median(journal_walls)
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
            wall=direct_wall * rounds,
            cpu=0.0,
            store=store_name,
            section="journal",
            approach="engine",
            scenario=f"engine alone, {IN_FLIGHT} in flight, {places} threads",
        ),
    ]
    journal_row = summarise(
        latencies=[through_wall / total] * total * rounds,
        wall=through_wall * rounds,
        cpu=0.0,
        store=store_name,
        section="journal",
        approach="journal",
        scenario=f"through the journal, {IN_FLIGHT} arriving at once, {places} threads",
    )
    rows.append(journal_row)
    direct_rate = total / direct_wall
    journal_rate = total / through_wall
    cost = 1.0 - journal_rate / direct_rate
    journal_row.target = (
        f"cost {cost:.0%} {'met' if cost < THROUGHPUT_TARGET else 'NOT met'} "
        f"(<{THROUGHPUT_TARGET:.0%})"
    )
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
            f"straight through the engine: {cost:.0%} less (medians of {rounds} alternating "
            f"rounds; per round {_rates(total, journal_walls)} against "
            f"{_rates(total, direct_walls)})",
        ),
    ]
    return rows, targets


def _rates(messages: int, walls: list[float]) -> str:
    return "/".join(f"{messages / wall:,.0f}" for wall in walls)
