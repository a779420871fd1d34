from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from adapters.streaming import stream_by_edits


class RecordingSink:
    """Records what a platform would have received."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, str]] = []
        self.messages: dict[int, str] = {}

    async def send(self, text: str) -> int:
        handle = len(self.calls)
        self.calls.append(("send", handle, text))
        self.messages[handle] = text
        return handle

    async def edit(self, handle: int, text: str) -> None:
        self.calls.append(("edit", handle, text))
        self.messages[handle] = text

    async def delete(self, handle: int) -> None:
        self.calls.append(("delete", handle, ""))
        del self.messages[handle]


class FakeTime:
    """A clock that only moves when the code under test sleeps, or a snapshot takes time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Let the producer run until the clock reaches the end of the sleep (or it stops)."""
        self.sleeps.append(seconds)
        end = self.now + seconds
        for _ in range(1000):
            if self.now >= end:
                break
            await asyncio.sleep(0)
        self.now = max(self.now, end)


async def snapshots(texts: list[str], time: FakeTime, step: float) -> AsyncIterator[str]:
    """Snapshots arriving ``step`` seconds apart, each after a real await (as from a model)."""
    for text in texts:
        await asyncio.sleep(0)
        time.now += step
        yield text


async def test_posts_then_edits_with_the_latest_text() -> None:
    sink, time = RecordingSink(), FakeTime()
    growing = [f"word {'x' * n}" for n in range(1, 30)]
    handles = await stream_by_edits(
        snapshots(growing, time, 0.1),
        sink,
        limit=2000,
        interval=1.0,
        clock=time.clock,
        sleep=time.sleep,
    )
    assert handles == [0]
    assert sink.calls[0] == ("send", 0, growing[0])
    assert sink.messages == {0: growing[-1]}, "the final text is always shown"
    assert all(kind == "edit" for kind, _, _ in sink.calls[1:])
    assert all(seconds <= 1.0 for seconds in time.sleeps)
    assert len(sink.calls) < len(growing), "edits are throttled, not one per snapshot"


async def test_at_most_one_update_per_interval() -> None:
    sink, time = RecordingSink(), FakeTime()
    growing = [str(n) * 3 for n in range(100)]
    await stream_by_edits(
        snapshots(growing, time, 0.05),
        sink,
        limit=2000,
        interval=1.0,
        clock=time.clock,
        sleep=time.sleep,
    )
    updates = len(sink.calls)
    assert updates <= time.now / 1.0 + 2


async def test_long_replies_continue_in_new_messages() -> None:
    sink, time = RecordingSink(), FakeTime()
    line = "A sentence that is about fifty characters long.\n"
    growing = [line * n for n in range(1, 101)]
    handles = await stream_by_edits(
        snapshots(growing, time, 0.0),
        sink,
        limit=2000,
        interval=0.0,
        clock=time.clock,
        sleep=time.sleep,
    )
    assert len(handles) == 3
    assert all(len(text) <= 2000 for text in sink.messages.values())
    assert "".join(sink.messages[h] for h in handles).count("A sentence") == 100


async def test_a_shrinking_reply_removes_surplus_messages() -> None:
    sink, time = RecordingSink(), FakeTime()
    handles = await stream_by_edits(
        snapshots(["x " * 1500, "Replaced by a short repaired reply."], time, 0.0),
        sink,
        limit=2000,
        interval=0.0,
        clock=time.clock,
        sleep=time.sleep,
    )
    assert handles == [0]
    assert sink.messages == {0: "Replaced by a short repaired reply."}
    assert ("delete", 1, "") in sink.calls


async def test_a_failing_source_keeps_what_was_shown_and_raises() -> None:
    sink, time = RecordingSink(), FakeTime()

    async def failing() -> AsyncIterator[str]:
        yield "partial"
        raise RuntimeError("model broke")

    with pytest.raises(RuntimeError, match="model broke"):
        await stream_by_edits(failing(), sink, limit=2000, clock=time.clock, sleep=time.sleep)
    assert sink.messages == {0: "partial"}
