"""Show a growing reply on a platform that can only post and edit messages.

The reply is posted when its first text arrives, then edited with the latest text at most once
per ``interval`` (platforms rate-limit edits). A reply that outgrows the platform's limit
continues in new messages, split by :func:`split_message`.

Those intermediate updates are a courtesy: each asks the channel's budget
(:mod:`adapters.channel_budget`) and is skipped when it has none (the text goes out with a
later update), or when the platform refused one (a 429 pauses the channel and streaming goes
on after it; any other refusal stops the updates of that reply). What must happen is the end:
once the source is done, its last text, which for a turn is the stored reply, is shown in full
with final calls, which wait for the budget. A refused final show is retried with backoff
(a 429's ``Retry-After`` honoured); after two refusals that were not rate limits the reply
replaces its messages with new ones. :class:`Shown` says whether that worked, and in which
messages.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from adapters.channel_budget import BudgetShort
from adapters.chunking import split_message
from bot.journal import Shown as JournalShown

logger = logging.getLogger(__name__)

Handle = TypeVar("Handle")

FINAL_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)
"""Seconds between the attempts to show a complete reply, after a refusal that was not a rate
limit (a rate limit waits its ``Retry-After`` instead): five attempts within about 8 s, the
bot's shutdown grace."""
REPOST_AFTER = 2
"""Refusals (not rate limits) of the final show before the reply is posted afresh."""


class ShowRefused(Exception):
    """The platform refused a call that shows a reply (an error, a 429, no connection)."""

    def __init__(self, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        """Seconds the platform asked to wait (a 429); None for any other refusal."""

    @property
    def rate_limited(self) -> bool:
        return self.retry_after is not None


class MessageSink(Protocol, Generic[Handle]):
    """Where a reply is shown: post a message, edit it, delete it.

    ``final`` says whether the call shows the complete reply: a final call waits for the
    channel's budget, an intermediate one raises :class:`adapters.channel_budget.BudgetShort`
    when there is none. The platform's refusals are raised as :class:`ShowRefused`.
    """

    async def send(self, text: str, *, final: bool) -> Handle: ...

    async def edit(self, handle: Handle, text: str, *, final: bool) -> None: ...

    async def delete(self, handle: Handle, *, final: bool) -> None: ...

    async def settle(self) -> None:
        """The text shown is complete: end whatever is still open (Slack's streams)."""
        ...


@dataclass(frozen=True, slots=True)
class Shown(Generic[Handle]):
    """How a reply ended up on the platform."""

    text: str
    """The source's last text: what was to be shown."""
    handles: tuple[Handle, ...]
    """The messages showing it, in order."""
    complete: bool
    """All of ``text`` is visible in ``handles``."""


@dataclass(frozen=True, slots=True)
class ReplyShown:
    """How a stored reply ended up on a platform: the in-process half of the journal's
    "shown" step."""

    complete: bool
    """The whole reply is visible."""
    message_ids: tuple[str, ...]
    """The platform's ids of the messages showing it, in order (Slack ``ts``, Discord ids)."""


def as_shown(shown: ReplyShown | None) -> JournalShown:
    """What the journal records of how a reply was shown (nothing known: not complete)."""
    if shown is None:
        return JournalShown(complete=False)
    first = shown.message_ids[0] if shown.message_ids else None
    return JournalShown(complete=shown.complete, ref=first)


class ReplyNotShown(Exception):
    """The turn's reply is stored, but the platform refused to show it in full, even after
    retries and a fresh post. The adapter's edge tells the person in one short line."""

    def __init__(self, shown: ReplyShown, reason: str) -> None:
        super().__init__(f"the stored reply could not be shown in full: {reason}")
        self.shown = shown


class _Shown(Generic[Handle]):
    """The messages of one reply, and the text each shows."""

    def __init__(
        self,
        sink: MessageSink[Handle],
        limit: int,
        posted: Callable[[Handle], Awaitable[None]] | None = None,
    ) -> None:
        self.sink = sink
        self.limit = limit
        self.posted = posted
        self.handles: list[Handle] = []
        self.texts: list[str] = []
        self.text = ""
        """The last text shown in full."""
        self.reposted = False

    async def show(self, text: str, *, final: bool) -> None:
        """Make the messages say ``text``. A call that raises leaves the others as they were,
        and what is recorded here as what the platform shows."""
        parts = split_message(text, self.limit) or [text]
        for index, part in enumerate(parts):
            if index < len(self.handles):
                if self.texts[index] != part:
                    await self.sink.edit(self.handles[index], part, final=final)
                    self.texts[index] = part
            else:
                handle = await self.sink.send(part, final=final)
                self.handles.append(handle)
                self.texts.append(part)
                if index == 0 and self.posted is not None:
                    await self.posted(handle)
        while len(self.handles) > len(parts):
            await self.sink.delete(self.handles[-1], final=final)
            self.handles.pop()
            self.texts.pop()
        self.text = text

    async def repost(self, text: str) -> None:
        """Show ``text`` in new messages, the old ones deleted first (so that a truncated
        message never stays beside the complete one; one that cannot be deleted stays)."""
        if not self.reposted:
            while self.handles:
                try:
                    await self.sink.delete(self.handles[-1], final=True)
                except ShowRefused as exc:
                    if exc.rate_limited:
                        raise
                    logger.info("an incomplete message of a reply stays: %s", exc.reason)
                self.handles.pop()
                self.texts.pop()
            self.text = ""
            self.reposted = True
        await self.show(text, final=True)


async def stream_by_edits(
    updates: AsyncIterable[str],
    sink: MessageSink[Handle],
    *,
    limit: int,
    interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    retry_delays: Sequence[float] = FINAL_RETRY_DELAYS,
    posted: Callable[[Handle], Awaitable[None]] | None = None,
) -> Shown[Handle]:
    """Show ``updates`` (snapshots of the whole text) in ``sink``; says how it ended.

    An exception from ``updates`` propagates after one attempt to show its last text; what
    was shown before stays shown. ``posted`` is awaited with the reply's first message each
    time one is posted (the first update, a fresh post after refusals).
    """
    latest = ""
    finished = False
    changed = asyncio.Event()

    async def pump() -> None:
        nonlocal latest, finished
        try:
            async for text in updates:
                latest = text
                changed.set()
        finally:
            finished = True
            changed.set()

    shown = _Shown(sink, limit, posted)
    growing = True  # intermediate updates wanted: none after a refusal that was no rate limit
    pump_task = asyncio.create_task(pump())
    try:
        while True:
            await changed.wait()
            changed.clear()
            if finished:
                break
            if not growing or not latest or latest == shown.text:
                continue
            started = clock()
            try:
                await shown.show(latest, final=False)
            except BudgetShort:
                changed.set()  # again after the interval, with whatever arrived meanwhile
            except ShowRefused as exc:
                if exc.rate_limited:
                    changed.set()
                else:
                    growing = False
                    logger.warning("a growing reply stops growing (%s); shown when complete", exc)
            if not finished:
                await sleep(max(0.0, interval - (clock() - started)))
    finally:
        if not pump_task.done():
            pump_task.cancel()
        results = await asyncio.gather(pump_task, return_exceptions=True)
    error = results[0]
    if isinstance(error, BaseException) and not isinstance(error, asyncio.CancelledError):
        await _show_in_full(shown, latest, sleep=sleep, retry_delays=())
        raise error
    complete = await _show_in_full(shown, latest, sleep=sleep, retry_delays=retry_delays)
    return Shown(text=latest, handles=tuple(shown.handles), complete=complete)


async def show_complete(
    text: str,
    sink: MessageSink[Handle],
    *,
    limit: int,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    retry_delays: Sequence[float] = FINAL_RETRY_DELAYS,
) -> Shown[Handle]:
    """Show a text known to be complete (a stored reply) in new messages, as the end of a
    stream is shown: final calls, refusals retried, posted afresh after repeated refusals."""
    shown = _Shown(sink, limit)
    complete = await _show_in_full(shown, text, sleep=sleep, retry_delays=retry_delays)
    return Shown(text=text, handles=tuple(shown.handles), complete=complete)


async def _show_in_full(
    shown: _Shown[Handle],
    text: str,
    *,
    sleep: Callable[[float], Awaitable[None]],
    retry_delays: Sequence[float],
) -> bool:
    """Show ``text`` with final calls, retrying refusals; True once it is all visible."""
    if not text:
        return not shown.handles
    refusals = 0
    for attempt in range(len(retry_delays) + 1):
        try:
            if refusals >= REPOST_AFTER:
                await shown.repost(text)
            else:
                await shown.show(text, final=True)
            await shown.sink.settle()
        except ShowRefused as exc:
            last = attempt == len(retry_delays)
            logger.warning(
                "the complete reply was refused (%s)%s",
                exc.reason,
                "; giving up" if last else "; trying again",
            )
            if last:
                break
            if exc.retry_after is not None:
                await sleep(exc.retry_after)
            else:
                refusals += 1
                await sleep(retry_delays[attempt])
        else:
            return True
    return False
