"""Token buckets kept in this process (each process allows ``rate`` on its own): one per API
key for requests, and one per client address for failed authentications."""

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
        tokens, now = self._tokens(key)
        if tokens >= 1.0:
            self._store(key, tokens - 1.0, now)
            return None
        self._store(key, tokens, now)
        return (1.0 - tokens) / self._rate

    def give_back(self, key: str) -> None:
        """Return the token of a ``take`` that turned out not to count (an authentication
        that succeeded, say). Taking first and giving back after keeps concurrent attempts
        from all passing a check made before any of them spent."""
        tokens, now = self._tokens(key)
        self._store(key, min(self._burst, tokens + 1.0), now)

    @staticmethod
    def retry_after_header(seconds: float) -> str:
        return str(max(1, math.ceil(seconds)))

    def _tokens(self, key: str) -> tuple[float, float]:
        now = self._clock()
        tokens, then = self._buckets.get(key) or (self._burst, now)
        return min(self._burst, tokens + (now - then) * self._rate), now

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets.put(key, (tokens, now))
