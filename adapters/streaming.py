"""Show a growing reply on a platform that can only post and edit messages.

The reply is posted when its first text arrives, then edited with the latest text at most once
per ``interval`` (platforms rate-limit edits), and always shown complete at the end. A reply
that outgrows the platform's limit continues in new messages, split by :func:`split_message`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from adapters.chunking import split_message

Handle = TypeVar("Handle")


class MessageSink(Protocol, Generic[Handle]):
    """Where a reply is shown: post a message, edit it, delete it."""

    async def send(self, text: str) -> Handle: ...

    async def edit(self, handle: Handle, text: str) -> None: ...

    async def delete(self, handle: Handle) -> None: ...


class _Shown(Generic[Handle]):
    def __init__(self, sink: MessageSink[Handle], limit: int) -> None:
        self.sink = sink
        self.limit = limit
        self.handles: list[Handle] = []
        self.texts: list[str] = []

    async def show(self, text: str) -> None:
        parts = split_message(text, self.limit) or [text]
        for index, part in enumerate(parts):
            if index < len(self.handles):
                if self.texts[index] != part:
                    await self.sink.edit(self.handles[index], part)
                    self.texts[index] = part
            else:
                self.handles.append(await self.sink.send(part))
                self.texts.append(part)
        while len(self.handles) > len(parts):
            await self.sink.delete(self.handles.pop())
            self.texts.pop()


async def stream_by_edits(
    updates: AsyncIterable[str],
    sink: MessageSink[Handle],
    *,
    limit: int,
    interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> list[Handle]:
    """Show ``updates`` (snapshots of the whole text) in ``sink``; returns the messages used.

    An exception from ``updates`` propagates after what was shown so far stays shown.
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

    shown = _Shown(sink, limit)
    displayed = ""
    pump_task = asyncio.create_task(pump())
    try:
        while True:
            await changed.wait()
            changed.clear()
            if latest and latest != displayed:
                displayed = latest
                started = clock()
                await shown.show(displayed)
                if not finished:
                    await sleep(max(0.0, interval - (clock() - started)))
            if finished:
                break
        if latest and latest != displayed:
            await shown.show(latest)
    finally:
        if not pump_task.done():
            pump_task.cancel()
        results = await asyncio.gather(pump_task, return_exceptions=True)
    error = results[0]
    if isinstance(error, BaseException) and not isinstance(error, asyncio.CancelledError):
        raise error
    return shown.handles
