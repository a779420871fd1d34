"""A fake OpenAI-compatible Chat Completions server on 127.0.0.1, for the real SDK.

The ``openai`` SDK sends its requests through httpx2, which respx cannot intercept, so the
fake is a real aiohttp server on a free loopback port. Point a client at ``fake.base_url``.

It speaks the wire protocol: ``chat.completion`` JSON, server-sent ``chat.completion.chunk``
events ending in ``data: [DONE]`` (with a usage chunk when ``stream_options.include_usage``
is set; ``report_usage = False`` sends none, like servers without usage) and OpenAI-style
error bodies. Every request is recorded.

Each chat request is answered by, in order: a reasoning model's refusal of ``max_tokens`` or
of a ``temperature`` other than 1 (models named like OpenAI's: ``o1``, ``o3-mini``,
``gpt-5``...; see :data:`REASONING_MODEL`), a refusal of an unsupported ``response_format``
(``reject_json_schema`` / ``reject_json_object``), the next scripted :class:`Reply`, the
handler set with :meth:`FakeOpenAI.handle`, or else :func:`default_brain`, a deterministic
model that remembers ``my name is X`` from whatever messages it is sent, writes summaries and
goal checks for the engine's ``[parley:summary]`` / ``[parley:goal]`` prompts, and fills
whatever JSON Schema it is asked for. With ``think`` set, every answer starts with a
``<think>...</think>`` block, as local reasoning models (DeepSeek-R1, Qwen3) write them.

Use the ``fake_openai`` fixture (a plugin of ``tests/conftest.py``), or ``async with
FakeOpenAI() as fake``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import json
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

import pytest
from aiohttp import web

from config.agents import MEMORY_FIELD
from memory.recall import terms
from tests.support.loopback import serve_on_loopback

SUMMARY_MARKER = "[parley:summary]"
GOAL_MARKER = "[parley:goal]"
MEMORY_MARKER = "[parley:memory]"
EXTRACT_MARKER = "[parley:extract]"
JSON_SCHEMA_REFUSAL = "response_format json_schema is not supported by this server"
JSON_OBJECT_REFUSAL = "response_format json_object is not supported by this server"
MAX_TOKENS_REFUSAL = (
    "Unsupported parameter: 'max_tokens' is not supported with this model. "
    "Use 'max_completion_tokens' instead."
)
"""OpenAI's own words to a reasoning model's caller that sends ``max_tokens``."""
REASONING_MODEL = re.compile(r"^(?:o\d|gpt-5)")
"""Model names the fake answers as OpenAI answers its reasoning models."""


@dataclass
class RecordedRequest:
    """One request as the server received it. Header names are lower-case."""

    body: dict[str, Any]
    headers: dict[str, str]
    method: str = "POST"
    path: str = "/v1/chat/completions"

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages = self.body.get("messages")
        if not isinstance(messages, list):
            return []
        return [message for message in messages if isinstance(message, dict)]

    @property
    def response_format(self) -> dict[str, Any] | None:
        value = self.body.get("response_format")
        return value if isinstance(value, dict) else None

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True

    @property
    def system_text(self) -> str:
        """The text of every system (or developer) message, joined by newlines."""
        return "\n".join(
            message_text(m) for m in self.messages if m.get("role") in {"system", "developer"}
        )


@dataclass(frozen=True)
class Reply:
    """How to answer one request."""

    content: str = ""
    """The assistant text, streamed ``chunk_size`` characters at a time when streaming."""
    status: int = 200
    """Anything but 200 answers with an OpenAI-style error body carrying ``error_message``."""
    error_message: str = "fake error"
    error_param: str | None = None
    """The error body's ``param`` (``response_format`` is filled in for its refusals)."""
    error_code: str | None = None
    """The error body's ``code``; default: the status's usual one."""
    headers: dict[str, str] = field(default_factory=dict)
    """Extra response headers, e.g. ``{"retry-after": "0"}`` with ``status=429``."""
    delay: float = 0.0
    """Seconds to wait before answering (longer than the client's timeout: a timeout)."""
    chunk_size: int = 8
    chunk_delay: float = 0.0
    drop_after_chunks: int | None = None
    """Close the connection after this many stream events (the role chunk counts as one).
    On a request that does not stream, the connection is closed without any answer."""
    usage: dict[str, Any] | None = None
    """The ``usage`` object to report (``prompt_tokens``, ``completion_tokens``,
    ``prompt_tokens_details``...); None: words counted by :func:`_usage`."""


Handler = Callable[[RecordedRequest], Reply | Awaitable[Reply]]

_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


class FakeOpenAI:
    """The server. ``await start()`` before use and ``await stop()`` after (or ``async with``)."""

    def __init__(self, models: tuple[str, ...] = ("fake-model", "gpt-4o-mini")) -> None:
        self.models = models
        self.requests: list[RecordedRequest] = []
        self.reject_json_schema = False
        self.reject_json_object = False
        self.report_usage = True
        """False: like servers that report no usage (no ``usage`` field, no usage chunk)."""
        self.think: str | None = None
        """When set, every answer starts with ``<think>`` this ``</think>``."""
        self.base_url = ""
        self._script: deque[Reply] = deque()
        self._handler: Handler | None = None
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._ids = 0

    # configuration -----------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Queue replies; each chat request takes the oldest one before any handler runs."""
        self._script.extend(replies)

    def handle(self, handler: Handler | None) -> None:
        """Answer with ``handler`` (sync or async) once the script is used up; None: default."""
        self._handler = handler

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the fake OpenAI server is already running")
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        runner, port = await serve_on_loopback(app)
        self._stopping.clear()
        self._runner = runner
        self.base_url = f"http://127.0.0.1:{port}/v1"

    async def stop(self) -> None:
        """Stop; requests still waiting out a delay are answered at once."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._stopping.set()
        await runner.cleanup()

    async def __aenter__(self) -> FakeOpenAI:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # HTTP handlers -----------------------------------------------------------------------

    async def _record(self, request: web.Request) -> tuple[RecordedRequest, bool]:
        """The request, recorded, and whether its body was a JSON object (or empty)."""
        raw = await request.read()
        body: Any = {}
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        recorded = RecordedRequest(
            body=body if isinstance(body, dict) else {},
            headers={name.lower(): value for name, value in request.headers.items()},
            method=request.method,
            path=request.path,
        )
        self.requests.append(recorded)
        return recorded, isinstance(body, dict)

    async def _models(self, request: web.Request) -> web.Response:
        await self._record(request)
        data = [
            {"id": model, "object": "model", "created": 0, "owned_by": "parley-tests"}
            for model in self.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def _embeddings(self, request: web.Request) -> web.Response:
        """``POST /v1/embeddings``: one :func:`concept_vector` per input, in order."""
        recorded, ok = await self._record(request)
        given = recorded.body.get("input")
        texts = [given] if isinstance(given, str) else given
        if not ok or not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return _error_response(Reply(status=400, error_message="input: strings wanted"))
        data = [
            {"object": "embedding", "index": n, "embedding": concept_vector(text)}
            for n, text in enumerate(texts)
        ]
        usage = {"prompt_tokens": sum(len(t.split()) for t in texts), "total_tokens": 0}
        body = {"object": "list", "data": data, "model": recorded.body.get("model"), "usage": usage}
        return web.json_response(body)

    def embedding_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/embeddings")]

    async def _unknown(self, request: web.Request) -> web.Response:
        await self._record(request)
        return _error_response(Reply(status=404, error_message=f"no route {request.path}"))

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        recorded, valid = await self._record(request)
        if not valid:
            return _error_response(Reply(status=400, error_message="the body is not JSON"))
        reply = self._refusal(recorded) or await self._answer(recorded)
        if self.think is not None and reply.status == 200:
            reply = replace(reply, content=f"<think>{self.think}</think>\n\n{reply.content}")
        if reply.delay > 0:
            await self._pause(reply.delay)
        if reply.status != 200:
            return _error_response(reply)
        if not recorded.stream:
            if reply.drop_after_chunks is not None:
                return _drop(request)
            return web.json_response(self._completion(recorded, reply), headers=reply.headers)
        return await self._stream(request, recorded, reply)

    def _refusal(self, recorded: RecordedRequest) -> Reply | None:
        if REASONING_MODEL.match(_model(recorded)):
            if "max_tokens" in recorded.body:
                return Reply(
                    status=400,
                    error_message=MAX_TOKENS_REFUSAL,
                    error_param="max_tokens",
                    error_code="unsupported_parameter",
                )
            temperature = recorded.body.get("temperature", 1)
            if temperature != 1:
                return Reply(
                    status=400,
                    error_message=(
                        f"Unsupported value: 'temperature' does not support {temperature} with "
                        "this model. Only the default (1) value is supported."
                    ),
                    error_param="temperature",
                    error_code="unsupported_value",
                )
        kind = (recorded.response_format or {}).get("type")
        if kind == "json_schema" and self.reject_json_schema:
            return Reply(status=400, error_message=JSON_SCHEMA_REFUSAL)
        if kind == "json_object" and self.reject_json_object:
            return Reply(status=400, error_message=JSON_OBJECT_REFUSAL)
        return None

    async def _answer(self, recorded: RecordedRequest) -> Reply:
        if self._script:
            return self._script.popleft()
        if self._handler is None:
            return default_brain(recorded)
        result = self._handler(recorded)
        return await result if inspect.isawaitable(result) else result

    async def _pause(self, seconds: float) -> None:
        """Sleep, cut short when the server stops (so a test's teardown never waits)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _stream(
        self, request: web.Request, recorded: RecordedRequest, reply: Reply
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Cache-Control": "no-cache", **reply.headers})
        response.content_type = "text/event-stream"
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for count, event in enumerate(self._events(recorded, reply)):
                if count == reply.drop_after_chunks:
                    return _drop(request, response)
                if count and reply.chunk_delay > 0:
                    await self._pause(reply.chunk_delay)
                await response.write(b"data: " + event.encode() + b"\n\n")
            if reply.drop_after_chunks is not None:  # more chunks asked than the reply has
                return _drop(request, response)
            await response.write(b"data: [DONE]\n\n")
        except ConnectionError:  # the client went away (it timed out or stopped reading)
            pass
        return response

    # wire shapes -------------------------------------------------------------------------

    def _next_id(self) -> str:
        self._ids += 1
        return f"chatcmpl-fake{self._ids:06d}"

    def _completion(self, recorded: RecordedRequest, reply: Reply) -> dict[str, Any]:
        content = reply.content
        completion = {
            "id": self._next_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": _model(recorded),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": reply.usage or _usage(recorded, content),
        }
        if not self.report_usage:
            del completion["usage"]
        return completion

    def _events(self, recorded: RecordedRequest, reply: Reply) -> list[str]:
        """The JSON of every ``chat.completion.chunk`` of the reply, in order."""
        options = recorded.body.get("stream_options")
        with_usage = isinstance(options, dict) and options.get("include_usage") is True
        with_usage = with_usage and self.report_usage
        base: dict[str, Any] = {
            "id": self._next_id(),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": _model(recorded),
        }
        if with_usage:
            base["usage"] = None

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return json.dumps({**base, "choices": [choice]})

        size = max(1, reply.chunk_size)
        text = reply.content
        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": text[i : i + size]}) for i in range(0, len(text), size)]
        events.append(chunk({}, "stop"))
        if with_usage:
            usage = reply.usage or _usage(recorded, text)
            events.append(json.dumps({**base, "choices": [], "usage": usage}))
        return events


def _drop(request: web.Request, response: web.StreamResponse | None = None) -> web.StreamResponse:
    """Close the connection mid-answer: the client sees an incomplete (chunked) body."""
    if request.transport is not None:
        request.transport.close()
    return response or web.Response()


def _error_response(reply: Reply) -> web.Response:
    kind, code = _ERROR_KINDS.get(
        reply.status, ("server_error" if reply.status >= 500 else "invalid_request_error", None)
    )
    param = reply.error_param
    if param is None and reply.error_message.startswith("response_format"):
        param = "response_format"
    code = reply.error_code or code
    error = {"message": reply.error_message, "type": kind, "param": param, "code": code}
    return web.json_response({"error": error}, status=reply.status, headers=reply.headers)


def _model(recorded: RecordedRequest) -> str:
    model = recorded.body.get("model")
    return model if isinstance(model, str) else "fake-model"


def _usage(recorded: RecordedRequest, completion: str) -> dict[str, int]:
    """Rough token counts: words."""
    prompt = sum(len(message_text(m).split()) for m in recorded.messages)
    answer = len(completion.split())
    return {"prompt_tokens": prompt, "completion_tokens": answer, "total_tokens": prompt + answer}


# the default brain -------------------------------------------------------------------------

_NAME_FACT = re.compile(r"\b(?:my|the user['\u2019]s)\s+name\s+is\s+([^\W\d_]+)", re.IGNORECASE)
"""``the user's name is`` is the summary's own wording, so a summary carries the name on."""
_NAME_QUESTION = re.compile(r"\bwhat(?:['\u2019]s|\s+is)\s+my\s+name\b", re.IGNORECASE)
_GOAL_WORDS = re.compile(r"\b(?:chosen|done)\b", re.IGNORECASE)
_TOPIC_WORDS = 3
"""Fewer words than ``my name is X``: a topic never restates an old name."""
_SUMMARY_LIMIT = 399
_ANSWER_LIMIT = 200
_NUMBERED_FACT = re.compile(r"^(\d+)\. \([^)]*\) (.+)$", re.MULTILINE)
_LIVES = re.compile(r"\b(?:live|lives|living)\s+in\b", re.IGNORECASE)
_MOVED = re.compile(r"\bmoved\s+to\b", re.IGNORECASE)
_SPEAKER = re.compile(r"^[^:\n]{1,80}:\s*")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_FIRST_PERSON = re.compile(r"^(?:I|I'm|My)\b")
_MAX_DEPTH = 16
"""How deep schemas are followed (``$ref`` chains, nested objects)."""
_SCALARS: dict[str, Any] = {"boolean": False, "integer": 0, "number": 0, "null": None}


def message_text(message: dict[str, Any]) -> str:
    """A message's text: its content string, or its text parts joined by newlines."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def known_name(messages: list[dict[str, Any]]) -> str | None:
    """The last ``my name is X`` (or ``the user's name is X``) in the messages, in order."""
    names = [m.group(1) for message in messages for m in _NAME_FACT.finditer(message_text(message))]
    return names[-1] if names else None


def default_brain(request: RecordedRequest) -> Reply:
    """The deterministic model used when nothing is scripted and no handler is set.

    Handlers may call it to fall back on it. See :func:`brain_text` for what it says.
    """
    return Reply(content=brain_text(request))


class HeldModel:
    """A handler (:meth:`FakeOpenAI.handle`) whose answers wait for :meth:`release`; it counts
    the requests that arrived, so a test knows which turns have reached the model."""

    def __init__(self) -> None:
        self.arrived = 0
        self._go = asyncio.Event()
        self._changed = asyncio.Condition()

    async def __call__(self, request: RecordedRequest) -> Reply:
        async with self._changed:
            self.arrived += 1
            self._changed.notify_all()
        await self._go.wait()
        return default_brain(request)

    async def until(self, arrived: int) -> None:
        async with asyncio.timeout(10), self._changed:
            await self._changed.wait_for(lambda: self.arrived >= arrived)

    def release(self) -> None:
        self._go.set()


def answer_for(topic: str) -> str:
    """What :func:`slow_model` answers about ``topic``: long enough to need several edits."""
    return f"About {topic}: " + " ".join(f"{topic}-{n}" for n in range(30))


def slow_model(fake_openai: FakeOpenAI, *, chunk_delay: float = 0.02) -> None:
    """Each reply names the topic (``topic7``) of the person's last message, a few characters
    at a time, so a test can tell which message a reply answers while it streams."""

    def reply(request: RecordedRequest) -> Reply:
        if SUMMARY_MARKER in request.system_text or GOAL_MARKER in request.system_text:
            return default_brain(request)
        users = [message_text(m) for m in request.messages if m.get("role") == "user"]
        found = re.search(r"topic\d+", users[-1] if users else "")
        topic = found.group(0) if found else "nothing"
        return Reply(content=answer_for(topic), chunk_size=8, chunk_delay=chunk_delay)

    fake_openai.handle(reply)


def brain_text(request: RecordedRequest) -> str:
    """What the default brain answers, from every message of the request.

    * The name is the last ``my name is X`` (or ``the user's name is X``) in any message.
    * ``[parley:summary]`` in a system message: ``Summary: The user's name is X. Topics: ...``
      (the first words of each line of the user messages; under 400 characters).
    * Otherwise ``Your name is X.`` / ``I don't know your name yet.`` when the last user
      message asks ``what's my name``, else ``You said: <last user message>``.
    * ``[parley:goal]``, or a schema with ``goal_reached``: goal JSON, reached when a
      non-system message says ``chosen`` or ``done``.
    * A ``json_schema`` response format, or else a JSON Schema in the system prompt (JSON mode
      or prompt only): that schema filled by :func:`fill_schema` with the text above.
      JSON mode without a schema: ``{"answer": text}``. Anything else: the plain text.
    * ``[parley:memory]``: a consolidation's answer (see :func:`_replaced`).
    * ``[parley:extract]``: a background extraction's answer: :func:`facts_in` of each line.
    * A schema with the memory field (``remember``): the facts :func:`facts_in` finds in the
      last user message.
    """
    messages = request.messages
    system = request.system_text
    users = [message_text(m) for m in messages if m.get("role") == "user"]
    last_user = users[-1] if users else ""
    name = known_name(messages)
    if MEMORY_MARKER in system:
        return json.dumps({"replaced": _replaced(last_user)})
    if EXTRACT_MARKER in system:  # one message per line, as the person wrote them
        return json.dumps({"facts": [f for line in last_user.splitlines() for f in facts_in(line)]})
    if SUMMARY_MARKER in system:
        text = _summary(name, users)
    elif _NAME_QUESTION.search(last_user):
        text = f"Your name is {name}." if name else "I don't know your name yet."
    else:
        text = "You said: " + last_user[:_ANSWER_LIMIT]

    response_format = request.response_format or {}
    kind = response_format.get("type")
    schema: dict[str, Any] | None
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        found = spec.get("schema") if isinstance(spec, dict) else None
        schema = found if isinstance(found, dict) else None
    else:  # JSON mode, or a schema in the prompt alone: an obedient model follows the prompt
        schema = schema_in_text(system)

    properties = schema.get("properties") if schema else None
    wants_goal = (
        GOAL_MARKER in system
        or (isinstance(properties, dict) and "goal_reached" in properties)
        or (kind == "json_object" and "goal_reached" in system)
    )
    if wants_goal:
        return json.dumps(_goal(request, name, schema))
    if schema is not None:
        filled = fill_schema(schema, text)
        if isinstance(filled, dict) and MEMORY_FIELD in filled:  # the agent keeps memories
            filled[MEMORY_FIELD] = facts_in(last_user)
        return json.dumps(filled)
    if kind in {"json_schema", "json_object"}:
        return json.dumps({"answer": text})
    return text


def facts_in(user_text: str) -> list[str]:
    """What the brain lists as new facts about the speaker (the memory field): each sentence
    of their message that starts with ``I`` or ``My`` (after the ``Name:`` prefix)."""
    said = _SPEAKER.sub("", user_text, count=1)
    return [
        sentence.strip()
        for sentence in _SENTENCE.split(said)
        if _FIRST_PERSON.match(sentence.strip())
    ]


def _replaced(listing: str) -> list[dict[str, int]]:
    """What the brain says a consolidation replaces: a later fact replaces an earlier one that
    shares half its words, or that said where the person lives when the later one says they
    moved."""
    facts = {int(found.group(1)): found.group(2) for found in _NUMBERED_FACT.finditer(listing)}
    replaced = []
    for old, old_text in facts.items():
        for by, new_text in facts.items():
            if by <= old:
                continue
            a, b = _words(old_text), _words(new_text)
            similar = bool(a and b) and len(a & b) * 2 >= max(len(a), len(b))
            moved = bool(_LIVES.search(old_text)) and bool(_MOVED.search(new_text))
            if similar or moved:
                replaced.append({"old": old, "by": by})
                break
    return replaced


def _words(text: str) -> set[str]:
    return {word for word in re.findall(r"\w+", text.casefold()) if len(word) > 2}


EMBEDDING_DIMENSIONS = 32
CONCEPTS = {
    # words that mean the same thing to the fake embeddings model, by the concept they share
    "name": "name",
    "called": "name",
    "who": "name",
    "am": "name",
    "peanut": "nut",
    "peanuts": "nut",
    "nut": "nut",
    "nuts": "nut",
    "allergic": "allergy",
    "allergy": "allergy",
    "allergies": "allergy",
    "live": "home",
    "lives": "home",
    "living": "home",
    "home": "home",
    "city": "home",
    "moved": "home",
    "risotto": "rice",
    "rice": "rice",
    "carnaroli": "rice",
    "arborio": "rice",
    "dessert": "sweet",
    "tiramisu": "sweet",
    "cake": "sweet",
    "sweet": "sweet",
}


def concept_vector(text: str) -> list[float]:
    """The fake embeddings model: each word (or the concept it stands for, in
    :data:`CONCEPTS`) adds one to a dimension picked by its hash, so texts sharing words or
    concepts point the same way. Deterministic across runs."""
    vector = [0.0] * EMBEDDING_DIMENSIONS
    for word in sorted(terms(text)):  # folded, common words left out, as keyword search
        concept = CONCEPTS.get(word, word)
        digest = hashlib.sha256(concept.encode()).digest()
        vector[digest[0] % EMBEDDING_DIMENSIONS] += 1.0
    return vector


def _summary(name: str | None, user_texts: list[str]) -> str:
    facts = [f"The user's name is {name}."] if name else []
    topics: list[str] = []
    for text in user_texts:
        for raw_line in text.splitlines():
            line = raw_line.strip()
            if not line or line.endswith(":") or line.startswith("Summary:"):
                continue  # transcript headings and an earlier summary are not topics
            topic = " ".join(line.split()[:_TOPIC_WORDS])
            if topic not in topics:
                topics.append(topic)
    head = " ".join(["Summary:", *facts])
    shown: list[str] = []
    for topic in topics:
        if len(f"{head} Topics: {'; '.join([*shown, topic])}.") > _SUMMARY_LIMIT:
            break
        shown.append(topic)
    return f"{head} Topics: {'; '.join(shown)}." if shown else head


def _goal(request: RecordedRequest, name: str | None, schema: dict[str, Any] | None) -> Any:
    """Reached when a non-system message says ``chosen`` or ``done`` (the system prompt
    describes the goal, and must not decide it)."""
    reached = any(
        _GOAL_WORDS.search(message_text(m))
        for m in request.messages
        if m.get("role") not in {"system", "developer"}
    )
    summary = "The person has chosen; it is done." if reached else "Nothing is chosen yet."
    if name:
        summary = f"The user's name is {name}. {summary}"
    values: dict[str, Any] = {
        "goal_reached": reached,
        "summary": summary,
        "missing": [] if reached else ["a final choice"],
    }
    properties = schema.get("properties") if schema else None
    if schema is None or not isinstance(properties, dict):
        return values
    filled = fill_schema(schema, summary)
    if isinstance(filled, dict):
        filled.update({key: value for key, value in values.items() if key in properties})
    return filled


def schema_in_text(text: str) -> dict[str, Any] | None:
    """The first ``{...}`` in the text that parses as a JSON object with ``properties``."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start >= 0:
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            value = None
        if isinstance(value, dict) and "properties" in value:
            return value
        start = text.find("{", start + 1)
    return None


def fill_schema(schema: Any, text: str, root: Any = None, depth: int = 0) -> Any:
    """A value matching ``schema``: strings are ``text``, arrays of strings hold one short
    string, other arrays are empty, booleans false, numbers 0, objects filled recursively."""
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return text
    if "const" in schema or schema.get("enum"):
        return schema["const"] if "const" in schema else schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "properties" in schema:
        kind = "object"
    if kind == "object":
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return {}
        return {key: fill_schema(sub, text, root, depth + 1) for key, sub in properties.items()}
    if kind == "array":
        items = _resolve(schema.get("items"), root)
        is_text = isinstance(items, dict) and items.get("type") == "string" and "enum" not in items
        return [" ".join(text.split()[:4])] if is_text else []
    return _SCALARS.get(str(kind), text)


def _resolve(schema: Any, root: Any) -> Any:
    """Follow ``$ref`` (within the document) and take the first non-null ``anyOf`` option."""
    for _ in range(_MAX_DEPTH):
        if not isinstance(schema, dict):
            return schema
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = root
            for part in ref[2:].split("/"):
                target = target.get(part) if isinstance(target, dict) else None
            schema = target
            continue
        options: list[Any] = next(
            (schema[k] for k in ("anyOf", "oneOf", "allOf") if isinstance(schema.get(k), list)), []
        )
        usable = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
        if not usable:
            return schema
        schema = usable[0]
    return None


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    """A running fake OpenAI server for one test."""
    fake = FakeOpenAI()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
