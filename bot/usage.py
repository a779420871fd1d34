"""Token usage of model calls: recorded off the reply path, summed and priced on request.

The model client tells a :class:`UsageSink` what each call used (what the server reported,
or ``None``); :class:`UsageRecorder` turns that into a usage record (counting the tokens
itself, marked estimated, when the server reported none) and stores records in batches from
a background task, so no turn waits on a usage write. Its buffer is bounded: past it records
are dropped, and the log says how many.

:func:`usage_report` is the one place totals get their cost (:mod:`config.pricing`): the API,
the console, ``/agent usage`` and ``python -m bot usage`` all read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING, Any, Protocol

from bot.errors import ParleyError
from config.pricing import NO_PRICES, Prices
from memory.base import (
    MAX_USAGE_BATCH,
    USAGE_GROUPS,
    NewUsage,
    UsageGroup,
    UsageQuery,
    UsageRecords,
    UsageTotal,
    utc_now,
)

if TYPE_CHECKING:
    from bot.llm import ChatRequest

logger = logging.getLogger(__name__)

PURPOSES = ("reply", "summary", "goal_check", "memory")
"""What model calls are for (``ChatRequest.metadata["purpose"]``); others count as ``other``."""
_OTHER = "other"


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """What the server said one call used. ``cached_input_tokens`` are part of the input."""

    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0


def reported_usage(usage: Any) -> TokenUsage | None:
    """The counts of an OpenAI ``CompletionUsage`` (``prompt_tokens``, ``completion_tokens``,
    ``prompt_tokens_details.cached_tokens``); None when absent or not numbers."""
    if usage is None:
        return None
    prompt = getattr(usage, "prompt_tokens", None)
    completion = getattr(usage, "completion_tokens", None)
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) if details is not None else None
    return TokenUsage(
        input_tokens=max(0, prompt),
        output_tokens=max(0, completion),
        cached_input_tokens=max(0, cached) if isinstance(cached, int) else 0,
    )


class UsageSink(Protocol):
    """Told once per finished model call; must not block (it runs on the event loop)."""

    def record(self, request: ChatRequest, usage: TokenUsage | None, output: str) -> None: ...


Counter = Callable[[str, str], int]
"""Tokens of a text for a model: :meth:`bot.tokens.TokenCounter.count`."""


class UsageRecorder:
    """A :class:`UsageSink` that stores records in batches from a background task.

    ``record`` never waits: it appends to a buffer of at most ``limit`` records and wakes the
    writer. :meth:`flush` stores what is buffered now; :meth:`aclose` flushes and stops.
    """

    def __init__(
        self,
        *,
        store: UsageRecords,
        count: Counter,
        limit: int = 10_000,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._store = store
        self._count = count
        self._limit = limit
        self._clock = clock
        self._buffer: deque[NewUsage] = deque()
        self._writing: list[NewUsage] = []
        self._dropped = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    @property
    def dropped(self) -> int:
        """Records dropped since start because the buffer was full."""
        return self._dropped

    def record(self, request: ChatRequest, usage: TokenUsage | None, output: str) -> None:
        meta = request.metadata
        purpose = meta.get("purpose", _OTHER)
        conversation_id = meta.get("conversation_id") or None
        if usage is None:
            usage = TokenUsage(
                input_tokens=sum(self._count(m.content, request.model) for m in request.messages),
                output_tokens=self._count(output, request.model) if output else 0,
            )
            estimated = True
        else:
            estimated = False
        if len(self._buffer) >= self._limit:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                logger.warning(
                    "usage buffer full (%d records): %d usage records dropped so far;"
                    " the store is slow or down",
                    self._limit,
                    self._dropped,
                )
            return
        try:
            record = NewUsage(
                at=self._clock(),
                agent_id=meta.get("agent_id", ""),
                conversation_id=conversation_id,
                purpose=purpose if purpose in PURPOSES else _OTHER,
                model=request.model,
                input_tokens=usage.input_tokens,
                cached_input_tokens=min(usage.cached_input_tokens, usage.input_tokens),
                output_tokens=usage.output_tokens,
                estimated=estimated,
            )
        except ValueError as exc:  # a label past its bound: say so, never fail the call
            logger.warning("usage not recorded: %s", exc.__class__.__name__)
            return
        self._buffer.append(record)
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="usage")

    def unstored_tokens(self, agent_id: str, since: datetime) -> int:
        """Tokens of ``agent_id`` recorded at or after ``since`` and not stored yet."""
        return sum(
            r.input_tokens + r.output_tokens
            for r in (*self._writing, *self._buffer)
            if r.agent_id == agent_id and r.at >= since
        )

    async def flush(self) -> None:
        """Store every record buffered now (in batches)."""
        async with self._lock:
            while self._buffer:
                count = min(len(self._buffer), MAX_USAGE_BATCH)
                self._writing = [self._buffer.popleft() for _ in range(count)]
                try:
                    await self._store.add_usage(self._writing)
                except ParleyError as exc:
                    logger.warning(
                        "%d usage records lost: the store failed (%s)", len(self._writing), exc
                    )
                except Exception:  # the writer's edge: say what was lost, keep recording
                    logger.exception("%d usage records lost", len(self._writing))
                finally:
                    self._writing = []

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def aclose(self) -> None:
        """Store what is buffered, then stop the writer."""
        await self.flush()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class UsageLedger:
    """What the surfaces ask about usage: priced reports, and what an agent used today (UTC:
    stored totals plus what the recorder has not stored yet) for its daily budget."""

    def __init__(
        self,
        *,
        store: UsageRecords,
        prices: Prices = NO_PRICES,
        recorder: UsageRecorder | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._store = store
        self.prices = prices
        self._recorder = recorder
        self._clock = clock

    async def report(self, query: UsageQuery) -> UsageReport:
        """Stored usage only: call :meth:`flush` first to include what is buffered."""
        return await usage_report(self._store, self.prices, query)

    async def flush(self) -> None:
        if self._recorder is not None:
            await self._recorder.flush()

    async def spent_today(self, agent_id: str) -> int:
        since = utc_midnight(self._clock())
        totals = await self._store.usage_totals(UsageQuery(agent_id=agent_id, since=since))
        stored = sum(total.tokens for total in totals)
        pending = self._recorder.unstored_tokens(agent_id, since) if self._recorder else 0
        return stored + pending


def utc_midnight(moment: datetime) -> datetime:
    """The start of ``moment``'s UTC day."""
    utc = moment.astimezone(UTC)
    return datetime.combine(utc.date(), time.min, tzinfo=UTC)


# reports -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CostedTotal:
    """A usage total and its cost; ``cost`` is None when a model in it has no price
    (``unpriced`` names them)."""

    total: UsageTotal
    cost: float | None
    unpriced: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UsageReport:
    rows: tuple[CostedTotal, ...]
    total: CostedTotal
    currency: str
    group_by: tuple[UsageGroup, ...] = ()
    truncated: bool = False
    """More groups matched than one report holds."""
    query: UsageQuery = field(default_factory=UsageQuery)


_SUMMED = ("calls", "input_tokens", "cached_input_tokens", "output_tokens", "estimated_calls")
_GROUP_FIELDS: dict[UsageGroup, str] = {
    "agent": "agent_id",
    "conversation": "conversation_id",
    "purpose": "purpose",
    "model": "model",
    "day": "day",
}


async def usage_report(store: UsageRecords, prices: Prices, query: UsageQuery) -> UsageReport:
    """Totals per ``query.group_by`` group and overall, each with its cost.

    The store is asked per model as well (a price is per model), and the rows are summed
    back to the groups asked for.
    """
    groups = tuple(group for group in USAGE_GROUPS if group in query.group_by)
    limit = query.limit
    by_model = query.model_copy(
        update={"group_by": (*groups, "model") if "model" not in groups else groups, "limit": limit}
    )
    rows = await store.usage_totals(by_model)
    merged: dict[tuple[object, ...], list[UsageTotal]] = {}
    for row in rows:
        key = tuple(getattr(row, _GROUP_FIELDS[group]) for group in groups)
        merged.setdefault(key, []).append(row)
    costed = tuple(_costed(parts, groups, prices) for parts in merged.values())
    overall = _costed(rows, (), prices)
    return UsageReport(
        rows=costed,
        total=overall,
        currency=prices.currency,
        group_by=groups,
        truncated=len(rows) >= limit,
        query=query,
    )


def _costed(
    parts: Sequence[UsageTotal], groups: tuple[UsageGroup, ...], prices: Prices
) -> CostedTotal:
    values: dict[str, object] = {name: sum(getattr(p, name) for p in parts) for name in _SUMMED}
    if parts:
        for group in groups:
            name = _GROUP_FIELDS[group]
            values[name] = getattr(parts[0], name)
    cost = 0.0
    unpriced: list[str] = []
    for part in parts:
        price = prices.of(part.model or "")
        if price is None:
            if part.model not in unpriced:
                unpriced.append(part.model or "")
            continue
        cost += price.cost(
            input_tokens=part.input_tokens,
            cached_input_tokens=part.cached_input_tokens,
            output_tokens=part.output_tokens,
        )
    return CostedTotal(
        total=UsageTotal.model_validate(values),
        cost=None if unpriced else cost,
        unpriced=tuple(unpriced),
    )


def format_cost(cost: float | None, currency: str) -> str:
    """``0.0123 USD``, or ``unknown`` for a total with a model that has no price."""
    if cost is None:
        return "unknown"
    return f"{cost:.4f} {currency}"


def report_lines(report: UsageReport) -> list[str]:
    """The report as plain lines, one per group then the total (the CLI and commands)."""
    lines = []
    for row in report.rows:
        label = " ".join(_label(row.total, report.group_by)) or "all"
        lines.append(f"{label}: {_amounts(row, report.currency)}")
    lines.append(f"total: {_amounts(report.total, report.currency)}")
    if report.truncated:
        lines.append("(more groups matched; narrow the range)")
    return lines


def _label(total: UsageTotal, groups: tuple[UsageGroup, ...]) -> list[str]:
    words = []
    for group in groups:
        value = getattr(total, _GROUP_FIELDS[group])
        words.append(f"{group}={'-' if value in (None, '') else value}")
    return words


def calls(count: int) -> str:
    """``1 call``, ``2,000 calls``."""
    return f"{count:,} call" if count == 1 else f"{count:,} calls"


def _amounts(row: CostedTotal, currency: str) -> str:
    t = row.total
    text = (
        f"{calls(t.calls)}, {t.input_tokens:,} in ({t.cached_input_tokens:,} cached),"
        f" {t.output_tokens:,} out, cost {format_cost(row.cost, currency)}"
    )
    if t.estimated_calls:
        text += f", {t.estimated_calls:,} estimated"
    if row.unpriced:
        text += f" (no price for {', '.join(row.unpriced)})"
    return text
