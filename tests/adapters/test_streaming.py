from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from adapters.channel_budget import BudgetShort
from adapters.streaming import FINAL_RETRY_DELAYS, ShowRefused, show_complete, stream_by_edits


class RecordingSink:
    """Records what a platform would have received."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, str]] = []
        self.messages: dict[int, str] = {}

    async def send(self, text: str, *, final: bool) -> int:
        handle = len(self.calls)
        self.calls.append(("send", handle, text))
        self.messages[handle] = text
        return handle

    async def edit(self, handle: int, text: str, *, final: bool) -> None:
        self.calls.append(("edit", handle, text))
        self.messages[handle] = text

    async def delete(self, handle: int, *, final: bool) -> None:
        self.calls.append(("delete", handle, ""))
        del self.messages[handle]

    async def settle(self) -> None:
        self.calls.append(("settle", -1, ""))


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
    shown = await stream_by_edits(
        snapshots(growing, time, 0.1),
        sink,
        limit=2000,
        interval=1.0,
        clock=time.clock,
        sleep=time.sleep,
    )
    assert shown.handles == (0,)
    assert shown.complete
    assert sink.calls[0] == ("send", 0, growing[0])
    assert sink.messages == {0: growing[-1]}, "the final text is always shown"
    assert all(kind == "edit" for kind, _, _ in sink.calls[1:-1])
    assert sink.calls[-1][0] == "settle"
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
    updates = len([call for call in sink.calls if call[0] != "settle"])
    assert updates <= time.now / 1.0 + 2


async def test_long_replies_continue_in_new_messages() -> None:
    sink, time = RecordingSink(), FakeTime()
    line = "A sentence that is about fifty characters long.\n"
    growing = [line * n for n in range(1, 101)]
    shown = await stream_by_edits(
        snapshots(growing, time, 0.0),
        sink,
        limit=2000,
        interval=0.0,
        clock=time.clock,
        sleep=time.sleep,
    )
    assert len(shown.handles) == 3
    assert all(len(text) <= 2000 for text in sink.messages.values())
    assert "".join(sink.messages[h] for h in shown.handles).count("A sentence") == 100


async def test_a_shrinking_reply_removes_surplus_messages() -> None:
    sink, time = RecordingSink(), FakeTime()
    shown = await stream_by_edits(
        snapshots(["x " * 1500, "Replaced by a short repaired reply."], time, 0.0),
        sink,
        limit=2000,
        interval=0.0,
        clock=time.clock,
        sleep=time.sleep,
    )
    assert shown.handles == (0,)
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


# the end of a reply is shown in full (issue #14) ------------------------------------------


class RefusingSink(RecordingSink):
    """A sink whose platform refuses: ``refusals`` are raised, one per call, by the calls
    ``refuses(kind, final)`` picks; ``short`` intermediate calls find no budget."""

    def __init__(
        self,
        refusals: list[ShowRefused],
        refuses: Callable[[str, bool], bool],
        *,
        short: int = 0,
    ) -> None:
        super().__init__()
        self.refusals = refusals
        self.refuses = refuses
        self.short = short
        self.finals: list[tuple[str, int, str]] = []

    def _ask(self, kind: str, final: bool) -> None:
        if not final and self.short > 0:
            self.short -= 1
            raise BudgetShort
        if self.refusals and self.refuses(kind, final):
            raise self.refusals.pop(0)

    async def send(self, text: str, *, final: bool) -> int:
        self._ask("send", final)
        handle = await super().send(text, final=final)
        if final:
            self.finals.append(("send", handle, text))
        return handle

    async def edit(self, handle: int, text: str, *, final: bool) -> None:
        self._ask("edit", final)
        await super().edit(handle, text, final=final)
        if final:
            self.finals.append(("edit", handle, text))

    async def delete(self, handle: int, *, final: bool) -> None:
        self._ask("delete", final)
        await super().delete(handle, final=final)


def growing_words(count: int) -> list[str]:
    return [" ".join(f"w{n}" for n in range(upto)) for upto in range(1, count + 1)]


async def test_skipped_updates_are_coalesced_and_the_end_is_shown() -> None:
    sink, time = RefusingSink([], lambda kind, final: False, short=1000), FakeTime()
    growing = growing_words(30)
    shown = await stream_by_edits(
        snapshots(growing, time, 0.1), sink, limit=2000, clock=time.clock, sleep=time.sleep
    )
    assert sink.finals == [("send", 0, growing[-1])], "one final post says it all"
    assert shown.complete
    assert shown.text == growing[-1]


async def test_rate_limited_updates_wait_and_the_stream_goes_on() -> None:
    sink, time = (
        RefusingSink(
            [ShowRefused("ratelimited", retry_after=3.0)], lambda kind, final: kind == "edit"
        ),
        FakeTime(),
    )
    growing = growing_words(60)
    shown = await stream_by_edits(
        snapshots(growing, time, 0.1), sink, limit=2000, clock=time.clock, sleep=time.sleep
    )
    edits = [call for call in sink.calls if call[0] == "edit"]
    assert len(edits) >= 2, "updates went on after the rate limit"
    assert shown.complete
    assert sink.messages == {0: growing[-1]}


async def test_a_refused_update_stops_the_growth_but_not_the_end() -> None:
    sink, time = (
        RefusingSink(
            [ShowRefused("internal_error")], lambda kind, final: kind == "edit" and not final
        ),
        FakeTime(),
    )
    growing = growing_words(60)
    shown = await stream_by_edits(
        snapshots(growing, time, 0.1), sink, limit=2000, clock=time.clock, sleep=time.sleep
    )
    assert [call[0] for call in sink.calls] == ["send", "edit", "settle"]
    assert sink.messages == {0: growing[-1]}
    assert shown.complete


async def test_a_final_edit_refused_by_rate_limits_is_retried_after_each_retry_after() -> None:
    refusals = [ShowRefused("ratelimited", retry_after=s) for s in (4.0, 7.0, 2.0)]
    sink, time = RefusingSink(refusals, lambda kind, final: final), FakeTime()
    shown = await stream_by_edits(
        snapshots(["first words", "first words and the rest"], time, 0.1),
        sink,
        limit=2000,
        interval=1.0,
        clock=time.clock,
        sleep=time.sleep,
    )
    assert shown.complete
    assert sink.messages == {0: "first words and the rest"}
    assert time.sleeps[-3:] == [4.0, 7.0, 2.0], "each Retry-After waited out, nothing more"


async def test_edits_refused_twice_repost_the_whole_reply_and_drop_the_old_message() -> None:
    refusals = [ShowRefused("cant_update_message") for _ in range(10)]
    sink, time = RefusingSink(refusals, lambda kind, final: kind == "edit"), FakeTime()
    shown = await stream_by_edits(
        snapshots(["The start", "The start and the end."], time, 0.1),
        sink,
        limit=2000,
        interval=1.0,
        clock=time.clock,
        sleep=time.sleep,
    )
    assert shown.complete
    assert shown.handles == (sink.finals[-1][1],)
    assert sink.messages == {shown.handles[0]: "The start and the end."}, "the old one is gone"
    assert time.sleeps[-2:] == list(FINAL_RETRY_DELAYS[:2])


async def test_a_reply_the_platform_refuses_altogether_is_reported_incomplete() -> None:
    refusals = [ShowRefused("channel_not_found") for _ in range(100)]
    sink, time = RefusingSink(refusals, lambda kind, final: True), FakeTime()
    shown = await stream_by_edits(
        snapshots(["never", "never shown"], time, 0.1),
        sink,
        limit=2000,
        clock=time.clock,
        sleep=time.sleep,
    )
    assert not shown.complete
    assert shown.handles == ()
    assert time.sleeps[-len(FINAL_RETRY_DELAYS) :] == list(FINAL_RETRY_DELAYS), "backoff"


async def test_a_stored_reply_is_shown_complete_at_once() -> None:
    refusals = [ShowRefused("ratelimited", retry_after=2.0)]
    sink, time = RefusingSink(refusals, lambda kind, final: final), FakeTime()
    line = "A sentence that is about fifty characters long.\n"
    shown = await show_complete(line * 60, sink, limit=2000, sleep=time.sleep)
    assert shown.complete
    assert len(shown.handles) == 2
    assert [kind for kind, _, _ in sink.finals] == ["send", "send"]
    assert time.sleeps == [2.0]


async def test_the_first_message_is_told_as_soon_as_it_is_posted() -> None:
    """Before any further update, so that a process dying mid-reply leaves it findable."""
    sink, time = RecordingSink(), FakeTime()
    told: list[tuple[int, int]] = []

    async def posted(handle: int) -> None:
        told.append((handle, len(sink.calls)))

    line = "A sentence that is about fifty characters long.\n"
    shown = await stream_by_edits(
        snapshots([line * n for n in range(1, 81)], time, 0.1),
        sink,
        limit=2000,
        interval=1.0,
        clock=time.clock,
        sleep=time.sleep,
        posted=posted,
    )
    assert len(shown.handles) == 2, "a long reply: the second message is not told"
    assert told == [(0, 1)], "told right after the first post"


async def test_a_reply_posted_afresh_tells_its_new_first_message() -> None:
    refusals = [ShowRefused("cant_update_message") for _ in range(10)]
    sink, time = RefusingSink(refusals, lambda kind, final: kind == "edit"), FakeTime()
    told: list[int] = []

    async def posted(handle: int) -> None:
        told.append(handle)

    shown = await stream_by_edits(
        snapshots(["The start", "The start and the end."], time, 0.1),
        sink,
        limit=2000,
        interval=1.0,
        clock=time.clock,
        sleep=time.sleep,
        posted=posted,
    )
    assert told == [0, shown.handles[0]]
    assert shown.handles[0] != 0
