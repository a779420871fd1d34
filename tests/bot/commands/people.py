"""People's memories seeded straight into a store file (the engine learns none yet in these
tests), one second apart so that "newest first" is well defined."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from memory.base import Memory, MemoryScope, NewMemory, utc_now
from memory.sqlite import SqliteStore
from tests.support.clock import FakeClock


class Seeder:
    """Writes memories into the SQLite file at ``path`` (another connection to the file a
    running bot uses), each one a second after the last, starting an hour ago."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._clock = FakeClock(utc_now() - timedelta(hours=1))

    async def remember(
        self,
        scope: MemoryScope,
        *texts: str,
        private: bool = False,
        supersedes: str | None = None,
    ) -> list[Memory]:
        """Keep ``texts`` in this order (so the last is the newest)."""
        store = SqliteStore(path=self._path, clock=self._clock)
        await store.open()
        kept: list[Memory] = []
        try:
            for text in texts:
                self._clock.advance(1)
                new = NewMemory(scope=scope, text=text, private=private, supersedes=supersedes)
                kept += await store.add_memories([new])
        finally:
            await store.close()
        return kept
