"""A turn as server-sent events (the API and the console) or as plain text (``/chat``).

SSE: ``delta`` events carry the growing visible text, then one ``message`` event with the
stored reply and its JSON, then ``done``; a failure is an ``error`` event. The turn runs in
its own task, so a client that goes away mid-stream loses nothing: the turn is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, JsonValue

from adapters.base import short_error_line
from bot.engine import Turn, TurnResult
from memory.base import Message

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0


class TurnOut(BaseModel):
    """One turn: the stored user message, the stored reply, its visible text and its JSON."""

    conversation_id: str
    user_message: Message
    reply: Message
    text: str
    data: dict[str, JsonValue] | None
    failed: bool
    closed: bool

    @classmethod
    def of(cls, result: TurnResult) -> TurnOut:
        return cls(
            conversation_id=result.conversation.id,
            user_message=result.user_message,
            reply=result.reply,
            text=result.text,
            data=result.data,
            failed=result.failed,
            closed=result.closed,
        )


def sse_frame(event: str, data: Any) -> str:
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event}\ndata: {payload}\n\n"


async def _texts(turn: Turn, heartbeat: float) -> AsyncIterator[str | None]:
    """The turn's growing text; None when ``heartbeat`` seconds passed without news."""
    iterator = aiter(turn)
    while True:
        step = asyncio.ensure_future(anext(iterator))
        try:
            while True:
                done, _ = await asyncio.wait({step}, timeout=heartbeat)
                if done:
                    break
                yield None
            try:
                yield step.result()
            except StopAsyncIteration:
                return
        finally:
            if not step.done():
                step.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await step


async def sse_events(turn: Turn, *, heartbeat: float = HEARTBEAT_SECONDS) -> AsyncIterator[str]:
    async for text in _texts(turn, heartbeat):
        yield ": keep-alive\n\n" if text is None else sse_frame("delta", {"text": text})
    try:
        result = await turn.result()
    except Exception as exc:  # noqa: BLE001 - the stream's edge: one short line, logged
        logger.warning("turn failed while streaming: %s", exc.__class__.__name__)
        yield sse_frame(
            "error", {"error": {"code": "turn_failed", "message": short_error_line(exc)}}
        )
        return
    yield sse_frame("message", TurnOut.of(result).model_dump(mode="json"))
    yield sse_frame("done", {})


async def plain_text(turn: Turn) -> AsyncIterator[str]:
    """The reply as it grows, as plain text chunks (what ``curl`` prints as it arrives)."""
    sent = ""
    async for text in turn:
        if text.startswith(sent):
            chunk, sent = text[len(sent) :], text
            if chunk:
                yield chunk
    try:
        result = await turn.result()
    except Exception as exc:  # noqa: BLE001 - the stream's edge: one short line, logged
        logger.warning("turn failed while streaming: %s", exc.__class__.__name__)
        yield ("\n" if sent else "") + short_error_line(exc) + "\n"
        return
    if result.text.startswith(sent):
        yield result.text[len(sent) :] + "\n"
    else:  # the text was replaced (a repaired or failed reply): show the final one whole
        yield "\n\n" + result.text + "\n"
