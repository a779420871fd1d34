"""A clock that only moves when a test moves it."""

from __future__ import annotations

from datetime import datetime, timedelta

from memory.base import utc_now


class FakeClock:
    """Starts at the real time (servers that reap expired records use the real clock)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or utc_now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
