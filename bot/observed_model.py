"""A model client that counts, times and traces every call of the client it wraps.

Each call is one ``parley_model_calls`` count (by purpose and outcome), one duration, and one
span following OpenTelemetry's GenAI semantic conventions (``gen_ai.operation.name``,
``gen_ai.request.model``, ``gen_ai.provider.name``...). The purpose is the request's
``metadata["purpose"]``; its conversation id goes on the span, never on a metric.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from bot.llm import ChatRequest, FormatRejected, ModelClient
from bot.telemetry import Telemetry
from bot.usage import TokenUsage, UsageSink

__all__ = ["ObservedModelClient", "SpanUsage"]

PROVIDER = "openai"
"""The API spoken (Chat Completions), whichever server answers it."""


class ObservedModelClient:
    """``inner`` with metrics and spans on every ``stream`` and ``complete``."""

    def __init__(self, inner: ModelClient, telemetry: Telemetry) -> None:
        self._inner = inner
        self._telemetry = telemetry

    @property
    def description(self) -> str:
        return self._inner.description

    def __repr__(self) -> str:
        return f"ObservedModelClient({self._inner!r})"

    @property
    def inner(self) -> ModelClient:
        return self._inner

    async def stream(self, request: ChatRequest) -> AsyncIterator[str]:
        # a span started here but not made current: a generator may be closed from another
        # task, and a context set in one task cannot be reset from another
        span = self._start(request, streaming=True)
        started = time.monotonic()
        outcome = "error"
        pieces = self._inner.stream(request)
        try:
            first = True
            async for piece in pieces:
                if first and span.is_recording():
                    first = False
                    span.set_attribute(
                        "gen_ai.response.time_to_first_chunk", time.monotonic() - started
                    )
                yield piece
            outcome = "ok"
        except BaseException as exc:
            outcome = _outcome(exc)
            _failed(span, exc)
            raise
        finally:
            if isinstance(pieces, AsyncGenerator):
                await pieces.aclose()
            self._end(span, request, outcome, started)

    async def complete(self, request: ChatRequest) -> str:
        span = self._start(request, streaming=False)
        started = time.monotonic()
        outcome = "error"
        try:
            text = await self._inner.complete(request)
        except BaseException as exc:
            outcome = _outcome(exc)
            _failed(span, exc)
            raise
        else:
            outcome = "ok"
            return text
        finally:
            self._end(span, request, outcome, started)

    async def close(self) -> None:
        await self._inner.close()

    def _start(self, request: ChatRequest, *, streaming: bool) -> Span:
        attributes: dict[str, Any] = {}
        if self._telemetry.tracing:
            attributes = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": PROVIDER,
                "gen_ai.system": PROVIDER,
                "gen_ai.request.model": request.model,
                "gen_ai.request.stream": streaming,
                "gen_ai.output.type": "json" if request.response_format else "text",
                "parley.purpose": request.metadata.get("purpose", "other"),
                "parley.model_provider": request.provider or "default",
            }
            if request.temperature is not None:
                attributes["gen_ai.request.temperature"] = request.temperature
            if request.max_tokens is not None:
                attributes["gen_ai.request.max_tokens"] = request.max_tokens
            conversation = request.metadata.get("conversation_id")
            if conversation:
                attributes["gen_ai.conversation.id"] = conversation
        span = self._telemetry.tracer.start_span(
            f"chat {request.model}", kind=SpanKind.CLIENT, attributes=attributes
        )
        if self._telemetry.tracing:
            self._telemetry.model_spans[id(request)] = span
        return span

    def _end(self, span: Span, request: ChatRequest, outcome: str, started: float) -> None:
        self._telemetry.metrics.model_call(
            purpose=request.metadata.get("purpose", "other"),
            outcome=outcome,
            seconds=time.monotonic() - started,
        )
        self._telemetry.model_spans.pop(id(request), None)
        span.end()


class SpanUsage:
    """A usage sink (given to the model client that reads usage) that puts the tokens a server
    reports on the call's span (``gen_ai.usage.input_tokens``, ``...output_tokens``), then
    tells ``inner``. Estimated usage (none reported) is not put on spans."""

    def __init__(self, inner: UsageSink | None, telemetry: Telemetry) -> None:
        self._inner = inner
        self._spans = telemetry.model_spans

    def record(self, request: ChatRequest, usage: TokenUsage | None, output: str) -> None:
        span = self._spans.get(id(request))
        if span is not None and usage is not None and span.is_recording():
            span.set_attributes(
                {
                    "gen_ai.usage.input_tokens": usage.input_tokens,
                    "gen_ai.usage.output_tokens": usage.output_tokens,
                    "gen_ai.usage.cache_read.input_tokens": usage.cached_input_tokens,
                }
            )
        if self._inner is not None:
            self._inner.record(request, usage, output)


def _outcome(exc: BaseException) -> str:
    if isinstance(exc, FormatRejected):
        return "format_rejected"
    if isinstance(exc, asyncio.CancelledError | GeneratorExit):
        return "cancelled"
    return "error"


def _failed(span: Span, exc: BaseException) -> None:
    if isinstance(exc, GeneratorExit):
        return
    if span.is_recording():
        span.set_attribute("error.type", exc.__class__.__name__)
        span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
