"""The per-channel budget of platform calls, on a fake clock: the published limits hold in any
window, final calls wait in order and ahead of intermediate ones, a 429 pauses the channel."""

from __future__ import annotations

import asyncio

import pytest

from adapters.channel_budget import (
    CHANNELS_KEPT,
    DISCORD_CHANNEL_LIMIT,
    LATENCY_MARGIN,
    SLACK_CHANNEL_LIMIT,
    ChannelBudget,
    ChannelLimit,
    retry_after,
)


class Clock:
    """Time that moves only when the budget sleeps (or a test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def budget(limit: ChannelLimit, clock: Clock, *, capacity: int = CHANNELS_KEPT) -> ChannelBudget:
    return ChannelBudget(limit, clock=clock, sleep=clock.sleep, capacity=capacity)


def most_in_any_window(moments: list[float], window: float) -> int:
    moments = sorted(moments)
    return max(
        sum(1 for later in moments[i:] if later - start < window) for i, start in enumerate(moments)
    )


@pytest.mark.parametrize(
    ("limit", "second_window", "most_per_second"),
    [(SLACK_CHANNEL_LIMIT, 1.0, 3), (DISCORD_CHANNEL_LIMIT, 5.0, 5)],
)
def test_greedy_intermediate_calls_stay_within_the_published_limit(
    limit: ChannelLimit, second_window: float, most_per_second: int
) -> None:
    clock = Clock()
    channel = budget(limit, clock)
    taken: list[float] = []
    for _ in range(6000):  # someone asks every 10 ms for a minute
        if channel.try_take("C1"):
            taken.append(clock.now)
        clock.now += 0.01
    assert most_in_any_window(taken, limit.per + LATENCY_MARGIN) == limit.calls
    assert most_in_any_window(taken, second_window) <= most_per_second
    assert len(taken) <= 60 * limit.sustained + limit.calls
    assert len(taken) >= 0.95 * 60 * limit.sustained, "the budget is used, not wasted"


def test_the_published_limits() -> None:
    assert (SLACK_CHANNEL_LIMIT.calls, SLACK_CHANNEL_LIMIT.sustained) == (3, 1.0)
    assert (DISCORD_CHANNEL_LIMIT.calls, DISCORD_CHANNEL_LIMIT.per) == (5, 5.0)
    assert SLACK_CHANNEL_LIMIT.paced(1.0) == SLACK_CHANNEL_LIMIT
    assert SLACK_CHANNEL_LIMIT.margin == LATENCY_MARGIN
    fast = SLACK_CHANNEL_LIMIT.paced(0.1)
    assert (fast.calls, fast.per, fast.margin) == (3, pytest.approx(0.3), pytest.approx(0.01))


def test_channels_have_budgets_of_their_own() -> None:
    clock = Clock()
    channels = budget(ChannelLimit(calls=2, per=1.0, margin=0), clock)
    assert [channels.try_take("C1") for _ in range(3)] == [True, True, False]
    assert channels.try_take("C2")
    assert channels.wait_time("C1") == pytest.approx(1.0)
    assert channels.wait_time("C3") == 0.0


async def test_final_calls_wait_in_order_and_ahead_of_intermediate_ones() -> None:
    clock = Clock()
    channel = budget(ChannelLimit(calls=1, per=1.0, margin=0), clock)
    assert channel.try_take("C1")
    order: list[str] = []

    async def final(name: str) -> None:
        await channel.take("C1")
        order.append(name)

    first = asyncio.create_task(final("first"))
    second = asyncio.create_task(final("second"))
    await asyncio.sleep(0)
    assert not channel.try_take("C1"), "an intermediate call never jumps a waiting final one"
    await asyncio.gather(first, second)
    assert order == ["first", "second"]
    assert clock.now == pytest.approx(1002.0), "one a second"


async def test_a_pause_holds_back_every_call_of_the_channel() -> None:
    clock = Clock()
    channels = budget(ChannelLimit(calls=5, per=1.0, margin=0), clock)
    channels.pause("C1", 30.0)
    assert not channels.try_take("C1")
    assert channels.try_take("C2"), "other channels go on"
    clock.now += 29.9
    assert not channels.try_take("C1")
    await channels.take("C1")
    assert clock.now == pytest.approx(1030.0)
    channels.pause("C1", 5.0)
    channels.pause("C1", 1.0)  # a shorter pause never shortens a longer one
    assert channels.wait_time("C1") == pytest.approx(5.0)


def test_the_table_is_bounded() -> None:
    clock = Clock()
    channels = budget(ChannelLimit(calls=1, per=60.0, margin=0), clock, capacity=2)
    for name in ("C1", "C2", "C3"):
        assert channels.try_take(name)
    assert channels.try_take("C1"), "the least recently used channel was forgotten"
    assert not channels.try_take("C3")


def test_retry_after_reads_the_platforms_headers() -> None:
    assert retry_after({"Retry-After": "7"}) == 7.0
    assert retry_after({"retry-after": ["3"]}) == 3.0
    assert retry_after({"Retry-After": "1", "X-RateLimit-Reset-After": "0.25"}) == 0.25
    assert retry_after({"Retry-After": "soon"}, default=2.0) == 2.0
    assert retry_after(None) == 1.0
    assert retry_after({"Retry-After": "-4"}) == 0.0
