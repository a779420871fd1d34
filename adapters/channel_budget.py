"""One budget of platform calls per channel, shared by every reply shown there.

Slack and Discord limit how often a bot may post and edit in one channel, however many replies
it is writing there at once. Each adapter owns one :class:`ChannelBudget`, handed to every
reply it shows. Per channel the budget keeps the times of its latest calls, never allowing
more than :attr:`ChannelLimit.calls` in any :attr:`ChannelLimit.per` seconds (a sliding
window, kept :attr:`ChannelLimit.margin` longer so that no window of that length holds more
even as the platform sees the calls), and a pause set by a 429's ``Retry-After``, which holds back
every reply in the channel. Before each platform call the streaming code asks it:

* an intermediate call (the next edit of a growing reply) goes only if a slot is free now
  (:meth:`ChannelBudget.try_take`); otherwise it is skipped and its text shown by a later call,
  so more replies in a channel mean fewer intermediate edits each;
* a final call (the complete reply) waits for a slot (:meth:`ChannelBudget.take`), first come
  first served and ahead of intermediate calls, so complete replies are never skipped.

The budget is per process: several processes on one token each get the whole budget.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from bot.lru import BoundedLRU

LATENCY_MARGIN = 0.1
"""Seconds added to each window: calls reach the platform after network delays that vary, so
two calls exactly a window apart here could arrive closer together there."""
CHANNELS_KEPT = 10_000
"""Channels whose recent calls are remembered; a channel forgotten has a full budget again,
which only happens after thousands of other channels were used since."""


@dataclass(frozen=True, slots=True)
class ChannelLimit:
    """At most ``calls`` platform calls in any ``per`` seconds, in one channel; the budget
    keeps its windows ``margin`` seconds longer."""

    calls: int
    per: float
    margin: float = LATENCY_MARGIN

    def __post_init__(self) -> None:
        if self.calls < 1 or self.per < 0 or self.margin < 0:
            raise ValueError("a channel limit needs at least one call and windows of 0 s or more")

    @property
    def sustained(self) -> float:
        """Calls per second, in the long run."""
        return self.calls / self.per if self.per else float("inf")

    def paced(self, interval: float) -> ChannelLimit:
        """The same burst with one call per ``interval`` seconds sustained, the margin scaled
        alike (``interval`` 1.0 is this limit when it allows one call a second, as both
        platforms' do; tests that speed replies up speed their budget up too)."""
        scale = self.calls * interval / self.per if self.per else 1.0
        return ChannelLimit(calls=self.calls, per=self.calls * interval, margin=self.margin * scale)


SLACK_CHANNEL_LIMIT = ChannelLimit(calls=3, per=3.0)
"""Slack: one call a second per channel sustained, bursts of three.

Slack's published limits (https://api.slack.com/docs/rate-limits): ``chat.postMessage`` has a
special limit of "1 per second" per channel, "short bursts >1 allowed"; ``chat.update`` is Tier
3 ("50+ per minute", per method and workspace); the streaming methods are limited per method
and workspace too. One budget for every call that shows a reply in a channel (post, update,
delete, start/append/stop stream) keeps each channel within the posting limit whichever
methods a reply uses; the workspace-wide tiers are left to the 429s, whose ``Retry-After``
then pauses the channel.
"""

DISCORD_CHANNEL_LIMIT = ChannelLimit(calls=5, per=5.0)
"""Discord: five calls in any five seconds per channel.

Discord limits per route and top-level resource, the channel for messages
(https://discord.com/developers/docs/topics/rate-limits); creating messages in a channel is
5 per 5 s (its ``X-RateLimit-Limit: 5``, ``X-RateLimit-Reset-After: 5``), and edits and deletes
have per-channel buckets of their own. One budget of 5 per 5 s for posts, edits and deletes
together stays within each of them; discord.py also follows the headers and waits out any 429.
"""


class BudgetShort(Exception):
    """No call may go to the channel now; an intermediate update is skipped (a later one
    shows its text)."""


@dataclass(slots=True)
class _Channel:
    calls: list[float] = field(default_factory=list)
    """When the latest calls went, oldest first; at most the limit's ``calls``."""
    paused_until: float = 0.0
    finals: asyncio.Lock | None = None
    """Held by the final call being admitted; the others queue on it in order. There only
    while final calls wait: a budget remembers thousands of channels, most of them idle."""
    finalists: int = 0
    """Final calls being admitted or queued."""

    def took(self, when: float, most: int) -> None:
        self.calls.append(when)
        if len(self.calls) > most:
            del self.calls[0]


class ChannelBudget:
    """Per-channel call budgets for one adapter (see the module's docstring).

    Channel keys are whatever the adapter names channels by (Slack's and Discord's ids are
    unique per platform); a budget serves one platform.
    """

    def __init__(
        self,
        limit: ChannelLimit,
        *,
        capacity: int = CHANNELS_KEPT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limit = limit
        self._window = limit.per + limit.margin
        self._clock = clock
        self._sleep = sleep
        self._channels: BoundedLRU[str, _Channel] = BoundedLRU(capacity)

    def try_take(self, channel: str) -> bool:
        """Take a slot for an intermediate call if one is free now and no final call waits."""
        state = self._state(channel)
        if state.finalists or self._wait(state) > 0:
            return False
        state.took(self._clock(), self.limit.calls)
        return True

    async def take(self, channel: str) -> None:
        """Wait for a slot for a final call (and for any pause to end), then take it."""
        state = self._state(channel)
        if state.finals is None:
            state.finals = asyncio.Lock()
        state.finalists += 1
        try:
            async with state.finals:
                while (wait := self._wait(state)) > 0:
                    await self._sleep(wait)
                state.took(self._clock(), self.limit.calls)
        finally:
            state.finalists -= 1
            if not state.finalists:
                state.finals = None

    def pause(self, channel: str, seconds: float) -> None:
        """The platform said to wait ``seconds`` (a 429's ``Retry-After``): no call goes to the
        channel before then, from any reply."""
        state = self._state(channel)
        state.paused_until = max(state.paused_until, self._clock() + max(0.0, seconds))

    def wait_time(self, channel: str) -> float:
        """Seconds until a call may go to the channel (0: now)."""
        state = self._channels.get(channel)
        return 0.0 if state is None else self._wait(state)

    def _state(self, channel: str) -> _Channel:
        state = self._channels.get(channel)
        if state is None:
            state = _Channel()
            self._channels.put(channel, state)
        return state

    def _wait(self, state: _Channel) -> float:
        now = self._clock()
        wait = state.paused_until - now
        if len(state.calls) >= self.limit.calls:
            wait = max(wait, state.calls[0] + self._window - now)
        return max(0.0, wait)


def retry_after(headers: Mapping[str, object] | None, *, default: float = 1.0) -> float:
    """Seconds a 429 asks to wait: Discord's precise ``X-RateLimit-Reset-After`` when given,
    else ``Retry-After`` (whole seconds), else ``default``."""
    if headers:
        lowered = {str(name).lower(): value for name, value in headers.items()}
        for name in ("x-ratelimit-reset-after", "retry-after"):
            value = lowered.get(name)
            if isinstance(value, list):  # slack_sdk's retry requests keep headers as lists
                value = value[0] if value else None
            if not isinstance(value, str | int | float):
                continue
            try:
                return max(0.0, float(value))
            except ValueError:
                continue
    return default
