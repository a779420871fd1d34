"""The measured scenarios for one store.

Every turn goes through ``Engine.reply(IncomingMessage(...))`` and ``await turn.result()``,
timed with ``time.perf_counter()`` from the call to the stored reply. The engine is built as
the product builds it; a fresh one runs each phase and is closed (``aclose`` lets background
summaries finish) between phases, so one phase's summaries do not land in the next one's
figures.

Concurrency (1,000 conversations, each warmed with a few turns first), three phases so that
queueing is not mistaken for overhead (growth runs on a fresh store afterwards, so these
conversations do not weigh on it):

* in flight 1: turns one at a time, round-robin over the conversations: pure overhead;
* in flight 50: the same order through a pool of 50 workers;
* in flight 1,000: every conversation sends its messages at once (each waits for its reply
  before sending the next): throughput, and wall time / messages as the amortised cost.

Growth: at each checkpoint (10, 100, 1,000, 10,000 messages) a number of engine turns and
naive turns (``bench.naive``) are timed. Where the turns would grow the conversation by more
than a tenth, each turn runs on its own conversation pre-filled to exactly the checkpoint
(engine and naive conversations hold the same texts); otherwise both approaches share one
conversation that keeps growing (pre-filled between checkpoints), the engine's turns first
and the naive ones right after. Prompt tokens are counted after the timed turns from the
messages the fake model received.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from time import perf_counter, process_time

from bench.fake_model import InstantModel, Messages, history_tokens, prompt_tokens
from bench.naive import EVERYTHING, naive_turn
from bench.plan import Plan
from bench.stats import Row, median_int, summarise
from bench.workload import (
    MODEL,
    History,
    TextSource,
    open_history,
    prefill,
    slack_key,
)
from bot.engine import Engine, IncomingMessage
from bot.prompt import MESSAGE_OVERHEAD_TOKENS
from bot.tokens import TokenCounter
from config.agents import AgentsFile
from memory.base import ConversationStore, PlatformKey

_PROMPT_SAMPLES = 500
"""How many prompts of a concurrency phase have their tokens counted."""
_TEXT_POOL = 257
_PREFILL_WORKERS = 8


@dataclass
class Bench:
    """Everything one store's scenarios share."""

    store_name: str
    store: ConversationStore
    agents: AgentsFile
    model: InstantModel
    tokens: TokenCounter
    plan: Plan
    progress: Callable[[str], None]
    naive_tokens: list[int] = field(default_factory=list, init=False)
    """Prompt tokens of the naive turns of the current checkpoint."""

    def __post_init__(self) -> None:
        texts = TextSource(seed=7)
        self._texts = [(texts.author(), texts.user_text()) for _ in range(_TEXT_POOL)]
        self._next_text = 0

    def incoming(self, key: PlatformKey) -> IncomingMessage:
        author, text = self._texts[self._next_text]
        self._next_text = (self._next_text + 1) % _TEXT_POOL
        return IncomingMessage(
            key=key, text=text, author_id=f"U{author.upper()}", author_name=author
        )

    @asynccontextmanager
    async def engine(self) -> AsyncIterator[Engine]:
        engine = Engine(
            store=self.store,
            agents=self.agents,
            model=self.model,
            tokens=self.tokens,
            default_model=MODEL,
        )
        try:
            yield engine
        finally:
            await engine.aclose()


async def timed_turn(engine: Engine, incoming: IncomingMessage) -> float:
    """Seconds from ``reply`` to the stored reply; refuses to time a failed turn."""
    start = perf_counter()
    result = await engine.reply(incoming).result()
    elapsed = perf_counter() - start
    if result.failed or result.data is None:
        raise RuntimeError(f"a benchmark turn did not produce a valid reply: {result.text!r}")
    return elapsed


async def run_pool(
    engine: Engine, messages: Iterable[IncomingMessage], workers: int
) -> list[float]:
    """Run the messages in order with at most ``workers`` turns in flight."""
    latencies: list[float] = []
    queue: Iterator[IncomingMessage] = iter(messages)

    async def worker() -> None:
        for incoming in queue:
            latencies.append(await timed_turn(engine, incoming))

    await asyncio.gather(*(worker() for _ in range(workers)))
    return latencies


async def run_all_at_once(
    engine: Engine, per_key: Sequence[Sequence[IncomingMessage]]
) -> list[float]:
    """Every conversation sends its messages at once, each waiting for its previous reply."""
    latencies: list[float] = []

    async def conversation(messages: Sequence[IncomingMessage]) -> None:
        for incoming in messages:
            latencies.append(await timed_turn(engine, incoming))

    await asyncio.gather(*(conversation(messages) for messages in per_key))
    return latencies


# concurrency ---------------------------------------------------------------------------------


async def concurrency(bench: Bench) -> list[Row]:
    plan = bench.plan
    keys = [slack_key("concurrent", index) for index in range(plan.conversations)]
    bench.progress(f"warming {plan.conversations:,} conversations, {plan.warm_turns} turns each")
    warm = [bench.incoming(key) for _ in range(plan.warm_turns) for key in keys]
    async with bench.engine() as engine:
        await run_pool(engine, warm, plan.pool)

    rows = []
    for in_flight in (1, plan.pool, plan.conversations):
        per_key = [
            [bench.incoming(key) for _ in range(plan.turns_per_conversation)] for key in keys
        ]
        everyone = in_flight >= plan.conversations
        round_robin = [
            per_key[index][turn]
            for turn in range(plan.turns_per_conversation)
            for index in range(plan.conversations)
        ]
        if not everyone and plan.sampled_turns is not None:
            round_robin = round_robin[: plan.sampled_turns]
        total = len(round_robin)
        bench.progress(f"{total:,} turns with {in_flight:,} in flight")
        async with bench.engine() as engine:
            bench.model.record(every=max(1, total // _PROMPT_SAMPLES))
            cpu, wall = process_time(), perf_counter()
            if everyone:
                latencies = await run_all_at_once(engine, per_key)
            else:
                latencies = await run_pool(engine, round_robin, in_flight)
            wall, cpu = perf_counter() - wall, process_time() - cpu
            prompts = bench.model.recorded()
        row = summarise(
            latencies=latencies,
            wall=wall,
            cpu=cpu,
            store=bench.store_name,
            section="concurrency",
            approach="engine",
            scenario=f"{plan.conversations:,} convs, in flight {in_flight:,}",
        )
        row.in_flight = in_flight
        row.prompt_tokens = median_int([prompt_tokens(p, bench.tokens) for p in prompts])
        rows.append(row)
    return rows


# growth --------------------------------------------------------------------------------------


async def _prefilled(
    bench: Bench, approach: str, messages: int, count: int
) -> list[tuple[PlatformKey, History]]:
    """``count`` new conversations, each pre-filled to exactly ``messages`` messages.

    Engine and naive conversations get the same texts (same seeds).
    """
    agent = bench.agents.default
    made: list[tuple[PlatformKey, History]] = []
    for index in range(count):
        key = slack_key(f"{approach}{messages}", index)
        made.append((key, await open_history(bench.store, key, agent)))
    slots = asyncio.Semaphore(_PREFILL_WORKERS)

    async def fill(index: int, history: History) -> None:
        async with slots:
            await prefill(
                bench.store,
                history,
                until=messages,
                texts=TextSource(seed=messages * 10_000 + index),
                tokens=bench.tokens,
                agent=agent,
                summarised=approach == "engine",
            )

    await asyncio.gather(*(fill(index, history) for index, (_, history) in enumerate(made)))
    return made


class _Grower:
    """The one conversation that grows from checkpoint to checkpoint.

    Engine and naive turns share it (engine turns first, then naive ones), so it is
    pre-filled only once; the table shows the exact size each approach's turns started at.
    """

    def __init__(self, bench: Bench) -> None:
        self._bench = bench
        self._history: History | None = None
        self._texts = TextSource(seed=99)
        self.key = slack_key("growing", 0)

    async def grow_to(self, messages: int) -> int:
        """Pre-fill up to ``messages`` (if it holds fewer); returns how many it holds."""
        bench = self._bench
        agent = bench.agents.default
        if self._history is None:
            self._history = await open_history(bench.store, self.key, agent)
        if self._history.messages < messages:
            await prefill(
                bench.store,
                self._history,
                until=messages,
                texts=self._texts,
                tokens=bench.tokens,
                agent=agent,
                summarised=True,
            )
        return self._history.messages

    async def catch_up(self) -> None:
        """Note the prompt cost of the messages the measured turns stored, so that the next
        pre-fill places the summary where the engine would."""
        assert self._history is not None  # noqa: S101 - grow_to ran first
        stored = await self._bench.store.list_messages(
            conversation_id=self._history.conversation_id,
            after_seq=self._history.messages,
            limit=EVERYTHING,
        )
        self._history.costs.extend(m.token_count + MESSAGE_OVERHEAD_TOKENS for m in stored)


async def _turn(bench: Bench, engine: Engine, approach: str, key: PlatformKey) -> float:
    if approach == "engine":
        return await timed_turn(engine, bench.incoming(key))
    incoming = bench.incoming(key)
    elapsed, tokens = await naive_turn(
        store=bench.store,
        model=bench.model,
        tokens=bench.tokens,
        agent=bench.agents.default,
        key=key,
        text=incoming.text,
        author=incoming.author_name,
    )
    bench.naive_tokens.append(tokens)
    return elapsed


async def growth(bench: Bench) -> list[Row]:
    rows: list[Row] = []
    grower = _Grower(bench)
    for messages in bench.plan.checkpoints:
        for approach in ("engine", "naive"):
            rows.append(await _checkpoint(bench, approach, messages, grower))
    return rows


async def _checkpoint(bench: Bench, approach: str, messages: int, grower: _Grower) -> Row:
    turns = bench.plan.turns_for(approach, messages)
    separate = 2 * turns * 10 > messages
    bench.progress(
        f"growth, {approach}: {turns} turns at {messages:,} messages "
        + ("(one conversation per turn)" if separate else "(one growing conversation)")
    )
    if separate:
        targets = [key for key, _ in await _prefilled(bench, approach, messages, turns)]
        start = messages
    else:
        start = await grower.grow_to(messages)
        targets = [grower.key] * turns
    bench.naive_tokens.clear()
    latencies: list[float] = []
    async with bench.engine() as engine:
        bench.model.record(every=1)
        cpu, wall = process_time(), perf_counter()
        for key in targets:
            latencies.append(await _turn(bench, engine, approach, key))
        wall, cpu = perf_counter() - wall, process_time() - cpu
        prompts: list[Messages] = bench.model.recorded()
    if not separate:
        await grower.catch_up()
    row = summarise(
        latencies=latencies,
        wall=wall,
        cpu=cpu,
        store=bench.store_name,
        section="growth",
        approach=approach,
        scenario=f"{approach}, {messages:,} msgs",
    )
    row.messages = messages
    row.span = f"{start:,}" if separate else f"{start:,}-{start + 2 * (turns - 1):,}"
    if approach == "engine":
        row.prompt_tokens = median_int([prompt_tokens(p, bench.tokens) for p in prompts])
        row.history_tokens_max = max(history_tokens(p, bench.tokens) for p in prompts)
    else:
        row.prompt_tokens = median_int(bench.naive_tokens)
    return row
