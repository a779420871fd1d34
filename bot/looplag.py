"""How late the event loop runs: the one loop serves Slack, Discord, the scheduler and HTTP.

A task sleeps a fixed interval and measures how much later than asked it wakes. That delay
is what every other task waited too: a Slack event not acknowledged, a Discord heartbeat
late, a ``/healthz`` slow. Recent figures are kept for ``/readyz`` and metrics, and a lag
over the threshold is logged as a warning (at most once per ``warn_every`` seconds).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType

logger = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[object]]


class LoopLagMonitor:
    """Measures the event loop's lag; ``async with`` (or :meth:`start` / :meth:`stop`).

    Args:
        interval: seconds between measurements.
        threshold: a lag above this many seconds is logged.
        warn_every: at most one warning per this many seconds; the ones held back are
            counted in the next.
        keep: how many recent measurements :meth:`worst_recent` and :meth:`p99_recent` cover
            (a minute at the default interval).
        clock: monotonic seconds; ``sleep`` must wait on the same clock.
    """

    def __init__(
        self,
        *,
        interval: float = 0.25,
        threshold: float = 0.1,
        warn_every: float = 10.0,
        keep: int = 240,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.interval = interval
        self.threshold = threshold
        self._warn_every = warn_every
        self._clock = clock
        self._sleep = sleep
        self._recent: deque[float] = deque(maxlen=keep)
        self._last_warning: float | None = None
        self._held_back = 0
        self._task: asyncio.Task[None] | None = None

    def current(self) -> float:
        """The latest lag in seconds (0 before the first measurement)."""
        return self._recent[-1] if self._recent else 0.0

    def worst_recent(self) -> float:
        """The largest lag in seconds among the recent measurements."""
        return max(self._recent, default=0.0)

    def p99_recent(self) -> float:
        """The 99th percentile of the recent lags, in seconds (nearest rank)."""
        if not self._recent:
            return 0.0
        ordered = sorted(self._recent)
        return ordered[math.ceil(0.99 * len(ordered)) - 1]

    @property
    def measurements(self) -> int:
        """How many recent measurements the figures cover."""
        return len(self._recent)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="loop-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def __aenter__(self) -> LoopLagMonitor:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _run(self) -> None:
        while True:
            asked = self._clock()
            await self._sleep(self.interval)
            self._record(max(0.0, self._clock() - asked - self.interval))

    def _record(self, lag: float) -> None:
        self._recent.append(lag)
        if lag <= self.threshold:
            return
        now = self._clock()
        if self._last_warning is not None and now - self._last_warning < self._warn_every:
            self._held_back += 1
            return
        held_back, self._held_back = self._held_back, 0
        self._last_warning = now
        logger.warning(
            "event loop blocked: it ran %.0f ms late (over %.0f ms)%s",
            lag * 1000,
            self.threshold * 1000,
            f"; {held_back} more such delays since the last warning" if held_back else "",
            extra={"lag_ms": round(lag * 1000)},
        )
