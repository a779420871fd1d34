"""The loop-lag monitor: a blocked loop is measured and logged, at most once per period."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from bot.looplag import LoopLagMonitor


async def test_a_blocking_call_on_the_loop_is_measured_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.looplag")
    async with LoopLagMonitor(interval=0.02) as monitor:
        async with asyncio.timeout(10):
            while monitor.measurements < 3:  # noqa: ASYNC110 - figures, no event
                await asyncio.sleep(0.01)
        time.sleep(0.3)  # noqa: ASYNC251 - a slow synchronous call holds every task on the loop
        async with asyncio.timeout(10):
            while monitor.worst_recent() <= monitor.threshold:  # noqa: ASYNC110
                await asyncio.sleep(0.01)

    assert 0.25 <= monitor.worst_recent() < 5
    assert monitor.p99_recent() == monitor.worst_recent()
    warnings = [r for r in caplog.records if r.name == "bot.looplag"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    lag_ms = warnings[0].__dict__["lag_ms"]
    assert 250 <= lag_ms < 5000
    assert f"ran {lag_ms} ms late" in warnings[0].getMessage()


class FakeTime:
    """A monotonic clock and a sleep on it; each sleep oversleeps by the next scripted lag."""

    def __init__(self, lags: list[float]) -> None:
        self.now = 1000.0
        self.lags = lags
        self.done = asyncio.Event()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if not self.lags:
            self.done.set()
            await asyncio.Event().wait()
        self.now += seconds + self.lags.pop(0)
        await asyncio.sleep(0)


async def test_figures_and_warnings_at_most_once_per_period(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.looplag")
    lags = [0.002, 0.5, 0.2, 0.3, 0.001] + [0.0] * 193 + [0.15, 0.01]
    fake = FakeTime(list(lags))
    monitor = LoopLagMonitor(interval=0.25, warn_every=10.0, keep=200, clock=fake, sleep=fake.sleep)
    assert (monitor.current(), monitor.worst_recent(), monitor.p99_recent()) == (0, 0, 0)
    async with monitor:
        await asyncio.wait_for(fake.done.wait(), timeout=10)

    assert monitor.measurements == len(lags)
    assert monitor.current() == pytest.approx(0.01)
    assert monitor.worst_recent() == pytest.approx(0.5)
    assert monitor.p99_recent() == pytest.approx(0.2), "the third largest of 200"
    messages = [r.getMessage() for r in caplog.records if r.name == "bot.looplag"]
    assert messages == [
        "event loop blocked: it ran 500 ms late (over 100 ms)",
        "event loop blocked: it ran 150 ms late (over 100 ms); "
        "2 more such delays since the last warning",
    ], "0.2 and 0.3 s came within 10 s of the first warning; 0.15 s came some 50 s after it"


async def test_stop_ends_the_task_and_leaves_the_figures() -> None:
    monitor = LoopLagMonitor(interval=0.01)
    monitor.start()
    monitor.start()
    async with asyncio.timeout(10):
        while monitor.measurements < 2:  # noqa: ASYNC110 - figures, no event
            await asyncio.sleep(0.01)
    await monitor.stop()
    await monitor.stop()
    count = monitor.measurements
    await asyncio.sleep(0.05)
    assert monitor.measurements == count
    assert monitor.current() >= 0
