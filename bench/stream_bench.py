"""What streaming a reply costs per character, for a short and a long one (issue #18).

A JSON reply is streamed in 4-character pieces (real models send a token or two a piece)
through ``StructuredReplies`` into an engine ``Turn``, with a reader taking every update as
the platforms' streaming loop does. CPU time per character of the 20,000-character reply may
be at most twice that of the 2,000-character one: the cost grows with the reply, not its
square.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from time import process_time
from typing import Any

from bench.report import Target
from bot.engine import Turn
from bot.llm import ChatRequest
from bot.prompt import ChatMessage
from bot.structured import StructuredReplies

SHORT, LONG = 2_000, 20_000
PIECE = 4
RATIO_TARGET = 2.0
_WORDS = 'Stir the onions, "slowly", until golden;\nthen add é and 日本 spices. '
_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "mood": {"type": "string"}},
    "required": ["answer", "mood"],
    "additionalProperties": False,
}
_REQUEST = ChatRequest(model="bench", messages=(ChatMessage(role="user", content="cook"),))


class _PiecedModel:
    """Streams one fixed text in pieces, with no waiting (the ``ModelClient`` protocol)."""

    description = "pieces"

    def __init__(self, text: str) -> None:
        self._text = text

    async def stream(self, request: ChatRequest) -> AsyncIterator[str]:
        for start in range(0, len(self._text), PIECE):
            yield self._text[start : start + PIECE]
            await asyncio.sleep(0)  # a reader runs between pieces, as with a real stream

    async def complete(self, request: ChatRequest) -> str:
        return self._text

    async def close(self) -> None:
        return None


async def _cpu_per_char(length: int, rounds: int) -> float:
    answer = (_WORDS * (length // len(_WORDS) + 1))[:length]
    replies = StructuredReplies(_PiecedModel(json.dumps({"answer": answer, "mood": "calm"})))
    best = float("inf")
    for _ in range(rounds):
        turn = Turn()
        seen: list[str] = []

        async def read(turn: Turn = turn, seen: list[str] = seen) -> None:
            async for text in turn:
                seen.append(text[-1:])

        reader = asyncio.create_task(read())
        started = process_time()
        generated = await replies.generate(
            _REQUEST, schema=_SCHEMA, reply_field="answer", on_text=turn
        )
        spent = process_time() - started
        turn.fail(RuntimeError("done"))  # ends the reader; the benchmark stores nothing
        await reader
        if generated.text != answer or turn.text != answer:
            raise RuntimeError("the streamed reply came out wrong")
        best = min(best, spent)
    return best / length * 1e6


async def run_stream(progress: Callable[[str], None]) -> tuple[list[Target], str]:
    """The target, and a setup line for the report."""
    progress(f"streaming: {SHORT:,} and {LONG:,} characters in {PIECE}-character pieces")
    short = await _cpu_per_char(SHORT, rounds=20)
    long = await _cpu_per_char(LONG, rounds=4)
    ratio = long / short
    target = Target(
        store="-",
        name=f"streaming a {LONG:,}-character reply costs at most {RATIO_TARGET:g}x the CPU "
        f"per character of a {SHORT:,}-character one",
        met=ratio <= RATIO_TARGET,
        detail=f"{short:.2f} us/char at {SHORT:,}, {long:.2f} us/char at {LONG:,}: "
        f"{ratio:.2f}x (best of several rounds)",
    )
    setup = (
        "Streaming: a JSON reply in 4-character pieces through StructuredReplies into a "
        "Turn, a reader taking every update; CPU time of the generation, best round."
    )
    return [target], setup
