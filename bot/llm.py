"""The model boundary: a small ModelClient protocol and its OpenAI Chat Completions client.

Any OpenAI-compatible server works through ``OPENAI_BASE_URL`` (Ollama, vLLM, llama.cpp,
Azure, gateways). Retries and timeouts are the SDK's own, configured from settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

import openai
from openai import AsyncOpenAI

from bot.errors import ParleyError
from bot.model_params import RefusedParameters
from bot.prompt import ChatMessage
from bot.usage import UsageSink, reported_usage
from config.redact import redact_url

logger = logging.getLogger(__name__)

T = TypeVar("T")
FormatKind = Literal["json_schema", "json_object"]
_FORMAT_WORDS = ("response_format", "json_schema", "json_object", "structured output", "schema")


class ModelError(ParleyError):
    """The model could not answer (after the SDK's retries). The message is short and safe."""


class FormatRejected(ModelError):
    """The server refused the requested ``response_format``."""


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    kind: FormatKind
    schema: dict[str, Any] | None = None
    name: str = "reply"
    strict: bool = True

    def as_param(self) -> dict[str, Any]:
        if self.kind == "json_object":
            return {"type": "json_object"}
        return {
            "type": "json_schema",
            "json_schema": {"name": self.name, "schema": self.schema, "strict": self.strict},
        }


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    temperature: float | None = None
    max_tokens: int | None = None
    response_format: ResponseFormat | None = None
    provider: str | None = None
    """The configured model provider that answers it (``bot.providers``); None: the default."""
    metadata: dict[str, str] = field(default_factory=dict)
    """For logs and usage records (conversation id, agent id, purpose); never sent."""


class ModelClient(Protocol):
    """What the engine needs from a model: streamed text, or the whole text at once."""

    @property
    def description(self) -> str: ...

    def stream(self, request: ChatRequest) -> AsyncIterator[str]:
        """Yield pieces of the reply as they arrive. Raises ModelError or FormatRejected."""
        ...

    async def complete(self, request: ChatRequest) -> str: ...

    async def close(self) -> None: ...


class OpenAIModelClient:
    """Chat Completions through the official SDK (``AsyncOpenAI``)."""

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        timeout: float,
        max_retries: int,
        usage: UsageSink | None = None,
    ) -> None:
        """``usage`` is told what each call used (streams then ask for the usage chunk)."""
        self._base_url = base_url
        self._usage = usage
        self._client = AsyncOpenAI(
            api_key=api_key or "unused",
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
        )
        self._refused = RefusedParameters()

    @property
    def description(self) -> str:
        return f"OpenAI-compatible API at {redact_url(self._base_url or '') or 'api.openai.com'}"

    def __repr__(self) -> str:
        return f"OpenAIModelClient({self.description})"

    async def stream(self, request: ChatRequest) -> AsyncIterator[str]:
        extra: dict[str, Any] = {}
        if self._usage is not None:
            extra["stream_options"] = {"include_usage": True}
        pieces: list[str] = []
        reported: Any = None
        answered = False
        try:
            response = await self._sent(
                request,
                lambda params: self._client.chat.completions.create(**params, stream=True, **extra),
            )
            answered = True
            async with response:
                async for chunk in response:
                    reported = chunk.usage or reported
                    if chunk.choices and chunk.choices[0].delta.content:
                        pieces.append(chunk.choices[0].delta.content)
                        yield chunk.choices[0].delta.content
        except openai.OpenAIError as exc:
            raise _translate(exc) from exc
        except Exception as exc:  # transport errors mid-stream vary by SDK version
            raise ModelError(f"the model's stream broke ({exc.__class__.__name__})") from exc
        finally:  # a stream cut short was still paid for: its usage is estimated
            if answered and self._usage is not None:
                self._usage.record(request, reported_usage(reported), "".join(pieces))

    async def complete(self, request: ChatRequest) -> str:
        try:
            response = await self._sent(
                request, lambda params: self._client.chat.completions.create(**params)
            )
        except openai.OpenAIError as exc:
            raise _translate(exc) from exc
        content = (response.choices[0].message.content or "") if response.choices else ""
        if self._usage is not None:
            self._usage.record(request, reported_usage(response.usage), content)
        if not response.choices:
            raise ModelError("the model returned no choices")
        return content

    async def close(self) -> None:
        await self._client.close()

    async def _sent(
        self, request: ChatRequest, create: Callable[[dict[str, Any]], Awaitable[T]]
    ) -> T:
        """``create`` called with the request's parameters as its model takes them; a
        parameter the model refuses (``max_tokens`` on reasoning models) is remembered and
        the call made again without it."""
        while True:
            params = self._refused.adjusted(request.model, self._params(request))
            try:
                return await create(params)
            except openai.BadRequestError as exc:
                refused = self._refused.learn(request.model, exc, params)
                if refused is None:
                    raise
                logger.info("model %s refused %s; sending without it", request.model, refused)

    @staticmethod
    def _params(request: ChatRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        if request.temperature is not None:
            params["temperature"] = request.temperature
        if request.max_tokens is not None:
            params["max_tokens"] = request.max_tokens
        if request.response_format is not None:
            params["response_format"] = request.response_format.as_param()
        return params


class BoundedModelClient:
    """Another client with at most ``limit`` calls in flight (``MODEL_CONCURRENCY``).

    Callers past the limit wait their turn in order. A stream holds its place until it
    ends, fails or is closed, so a burst of turns and goal checks never opens more
    connections to the model than the limit.
    """

    def __init__(self, inner: ModelClient, *, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._inner = inner
        self.limit = limit
        self._gate = asyncio.Semaphore(limit)
        self._in_flight = 0
        self._waiting = 0

    @property
    def description(self) -> str:
        return self._inner.description

    def __repr__(self) -> str:
        return f"BoundedModelClient({self._inner!r}, limit={self.limit})"

    @property
    def in_flight(self) -> int:
        """Calls holding a place now."""
        return self._in_flight

    @property
    def waiting(self) -> int:
        """Calls waiting for a place."""
        return self._waiting

    async def stream(self, request: ChatRequest) -> AsyncIterator[str]:
        async with self._place():
            pieces = self._inner.stream(request)
            try:
                async for piece in pieces:
                    yield piece
            finally:
                if isinstance(pieces, AsyncGenerator):
                    await pieces.aclose()

    async def complete(self, request: ChatRequest) -> str:
        async with self._place():
            return await self._inner.complete(request)

    async def close(self) -> None:
        await self._inner.close()

    @contextlib.asynccontextmanager
    async def _place(self) -> AsyncIterator[None]:
        self._waiting += 1
        try:
            await self._gate.acquire()
        finally:
            self._waiting -= 1
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            self._gate.release()


_PLAIN_FAILURES: tuple[tuple[type[openai.OpenAIError], str], ...] = (
    (openai.APITimeoutError, "the model timed out"),
    (openai.APIConnectionError, "the model could not be reached"),
    (openai.RateLimitError, "the model is rate limited (HTTP 429)"),
)


def _translate(exc: openai.OpenAIError) -> ModelError:
    """A short, secret-free error; a refused ``response_format`` is told apart."""
    if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
        text = str(exc.message).lower()
        if any(word in text for word in _FORMAT_WORDS):
            return FormatRejected(
                f"the server refused the response format (HTTP {exc.status_code})"
            )
        return ModelError(f"the model refused the request (HTTP {exc.status_code})")
    for kind, message in _PLAIN_FAILURES:
        if isinstance(exc, kind):
            return ModelError(message)
    if isinstance(exc, openai.APIStatusError):
        return ModelError(f"the model failed (HTTP {exc.status_code})")
    return ModelError(f"the model failed ({exc.__class__.__name__})")
