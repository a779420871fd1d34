"""WAL checkpoints off the write path.

SQLite's automatic checkpoint runs inside whichever commit crosses its threshold: that commit
then copies the WAL into the database and syncs the file, on aiosqlite's one thread, while
every other statement of the process waits behind it. The store sets the automatic
checkpoint far higher (a backstop, never reached in normal work) and this checkpointer runs
``PASSIVE`` checkpoints every second from a connection of its own on a worker thread: a
passive checkpoint never waits for readers or writers, so commits go on meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from pathlib import Path

logger = logging.getLogger(__name__)

CHECKPOINT_EVERY = 1.0
"""Seconds between checkpoints."""
BACKSTOP_PAGES = 20_000
"""``wal_autocheckpoint`` of the store's connection (about 80 MB of WAL): reached only if
the checkpointer cannot keep up or has stopped."""


class Checkpointer:
    """Checkpoints one database file's WAL every ``every`` seconds while it runs."""

    def __init__(self, path: Path, *, every: float = CHECKPOINT_EVERY) -> None:
        self._path = path
        self._every = every
        self._db: sqlite3.Connection | None = None
        self._using = threading.Lock()
        """Held while the connection is in use: a cancelled ``to_thread`` call goes on in its
        thread, and closing the connection under it would crash the process."""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"checkpoint {self._path.name}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._using:
            db, self._db = self._db, None
            if db is not None:
                db.close()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._every)
            try:
                await asyncio.to_thread(self.checkpoint)
            except sqlite3.Error as exc:  # the next round tries again; the backstop remains
                logger.warning("WAL checkpoint failed: %s", exc)

    def checkpoint(self) -> tuple[int, int, int]:
        """One passive checkpoint (on the calling thread): SQLite's (busy, WAL frames,
        frames checkpointed)."""
        with self._using:
            if self._db is None:
                self._db = sqlite3.connect(self._path, timeout=0, check_same_thread=False)
            row = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        with contextlib.suppress(TypeError, ValueError):
            return int(row[0]), int(row[1]), int(row[2])
        return 0, 0, 0
