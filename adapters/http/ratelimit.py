"""A token bucket per API key, kept in this process (each process allows ``rate`` on its own)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from bot.lru import BoundedLRU


class RateLimiter:
    """``take(key)`` is None when a request may go ahead, else the seconds to wait.

    Buckets refill at ``rate`` tokens a second up to ``burst``; the table keeps the
    ``capacity`` most recently seen keys (a forgotten key starts again with a full bucket).
    """

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._buckets: BoundedLRU[str, tuple[float, float]] = BoundedLRU(capacity)

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float | None:
        now = self._clock()
        tokens, then = self._buckets.get(key) or (self._burst, now)
        tokens = min(self._burst, tokens + (now - then) * self._rate)
        if tokens >= 1.0:
            self._store(key, tokens - 1.0, now)
            return None
        self._store(key, tokens, now)
        return (1.0 - tokens) / self._rate

    @staticmethod
    def retry_after_header(seconds: float) -> str:
        return str(max(1, math.ceil(seconds)))

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets.put(key, (tokens, now))
