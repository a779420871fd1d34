"""A zero-latency model that implements ``bot.llm.ModelClient`` in-process.

Replies are pre-generated valid chef JSON objects, streamed in a few pieces without ever
waiting, so the time of a turn is the engine's and the store's alone. Summary requests (their
system message carries ``[parley:summary]``) get a short plain-text summary.

For an agent with people memory (its reply schema has the ``remember`` field) the reply also
lists the first-person sentences of the person's message as new facts (:func:`facts_in`), and
a memory consolidation (``[parley:memory]`` in its system message) is answered by a fixed
rule (:func:`replaced`), as a capable model would judge the facts the memory workload tells.

The model can record the messages of the reply requests it receives; the benchmark counts
their tokens after the timed region, so counting never inflates a measured turn.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from bench.workload import MODEL, SUMMARY_TEXT, TextSource
from bot.consolidation import MEMORY_MARKER
from bot.llm import ChatRequest
from bot.prompt import MESSAGE_OVERHEAD_TOKENS, ChatMessage
from bot.tokens import TokenCounter
from config.agents import MEMORY_FIELD
from memory.rules import fold

SUMMARY_MARKER = "[parley:summary]"
"""What the engine puts in the system message of a summary request."""
_POOL = 97
_PIECES = 4

Messages = tuple[ChatMessage, ...]


class InstantModel:
    """Answers every request at once; optionally records reply prompts."""

    def __init__(self, *, seed: int = 20_240_601) -> None:
        texts = TextSource(seed)
        self._data = [texts.reply_data() for _ in range(_POOL)]
        replies = [json.dumps(data, ensure_ascii=False) for data in self._data]
        self._replies = replies
        self._pieces = [_split(reply, _PIECES) for reply in replies]
        self._next = 0
        self._every = 0
        self._seen = 0
        self._recorded: list[Messages] = []
        self.summaries = 0
        self.watch: Callable[[ChatRequest], None] | None = None
        """Called with every request the model receives (the memory benchmark's window)."""

    @property
    def description(self) -> str:
        return "instant in-process fake model (benchmark)"

    # recording -----------------------------------------------------------------------------

    def record(self, every: int = 1) -> None:
        """Start keeping the messages of every ``every``-th reply request."""
        self._every = every
        self._seen = 0
        self._recorded = []

    def recorded(self) -> list[Messages]:
        """Stop recording; the prompts kept since :meth:`record`."""
        self._every = 0
        prompts, self._recorded = self._recorded, []
        return prompts

    def _observe(self, request: ChatRequest) -> None:
        if not self._every or request.metadata.get("purpose") != "reply":
            return
        if self._seen % self._every == 0:
            self._recorded.append(request.messages)
        self._seen += 1

    # ModelClient ---------------------------------------------------------------------------

    async def stream(self, request: ChatRequest) -> AsyncIterator[str]:
        if self.watch is not None:
            self.watch(request)
        self._observe(request)
        index = self._take()
        pieces = (
            _split(self._with_facts(index, request), _PIECES)
            if _wants_facts(request)
            else self._pieces[index]
        )
        for piece in pieces:
            yield piece

    async def complete(self, request: ChatRequest) -> str:
        if self.watch is not None:
            self.watch(request)
        system = request.messages[0].content if request.messages else ""
        if SUMMARY_MARKER in system:
            self.summaries += 1
            return SUMMARY_TEXT
        if MEMORY_MARKER in system:
            listing = request.messages[-1].content
            return json.dumps({"replaced": replaced(listing)})
        self._observe(request)
        index = self._take()
        if _wants_facts(request):
            return self._with_facts(index, request)
        return self._replies[index]

    async def close(self) -> None:
        return None

    def _take(self) -> int:
        index = self._next
        self._next = (index + 1) % _POOL
        return index

    def _with_facts(self, index: int, request: ChatRequest) -> str:
        last = request.messages[-1].content if request.messages else ""
        data = {**self._data[index], MEMORY_FIELD: facts_in(last)}
        return json.dumps(data, ensure_ascii=False)


def _wants_facts(request: ChatRequest) -> bool:
    """The reply schema asks for the memory field (the agent keeps memories)."""
    schema: dict[str, Any] | None = (
        request.response_format.schema if request.response_format is not None else None
    )
    properties = schema.get("properties") if schema else None
    return isinstance(properties, dict) and MEMORY_FIELD in properties


# people memory -----------------------------------------------------------------------------

_SPEAKER = re.compile(r"^[^:\n]{1,80}:\s*")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_FIRST_PERSON = re.compile(r"^(?:I|I'm|My)\b")
_NUMBERED_FACT = re.compile(r"^(\d+)\. \([^)]*\) (.+)$", re.MULTILINE)
_ONE_VALUED = (
    ("name", re.compile(r"^My name is\b")),
    ("home", re.compile(r"^I (?:live in|moved to)\b")),
    ("job", re.compile(r"^I (?:work as|started a new job as)\b")),
    ("cuisine", re.compile(r"^My favourite cuisine is\b")),
)
"""Facts a person has one of at a time: a later one replaces the earlier one."""


def facts_in(user_content: str) -> list[str]:
    """The new facts the model lists: each sentence of the person's message (after the
    ``Name:`` prefix) that starts with ``I`` or ``My``."""
    said = _SPEAKER.sub("", user_content, count=1)
    sentences = (sentence.strip() for sentence in _SENTENCE.split(said))
    return [sentence for sentence in sentences if _FIRST_PERSON.match(sentence)]


def topic(fact: str) -> str | None:
    """What a one-valued fact is about (where the person lives, their job...), else None."""
    for name, pattern in _ONE_VALUED:
        if pattern.match(fact):
            return name
    return None


def replaced(listing: str) -> list[dict[str, int]]:
    """A consolidation's answer: each fact that a later fact repeats word for word, or that a
    later fact about the same one-valued topic updates ("I live in Paris." then "I moved to
    Berlin."), is replaced by the first such later fact. Facts a person may have several of
    (allergies, pets, what their family does) are left alone."""
    facts = {int(found.group(1)): found.group(2) for found in _NUMBERED_FACT.finditer(listing)}
    answer = []
    for old, old_text in facts.items():
        old_topic = topic(old_text)
        for by, new_text in facts.items():
            if by <= old:
                continue
            same = fold(new_text) == fold(old_text)
            if same or (old_topic is not None and topic(new_text) == old_topic):
                answer.append({"old": old, "by": by})
                break
    return answer


def _split(text: str, pieces: int) -> list[str]:
    size = -(-len(text) // pieces)
    return [text[start : start + size] for start in range(0, len(text), size)]


def prompt_tokens(messages: Messages, tokens: TokenCounter) -> int:
    """Tokens of a chat prompt: each message's content plus the per-message overhead."""
    return sum(tokens.count(m.content, MODEL) + MESSAGE_OVERHEAD_TOKENS for m in messages)


def history_tokens(messages: Messages, tokens: TokenCounter) -> int:
    """Tokens of the conversation history in an engine prompt: everything except the system
    message, the agent's opener, the summary (a second system message) and the new message."""
    fixed = 2 + (1 if len(messages) > 2 and messages[2].role == "system" else 0)
    return prompt_tokens(messages[fixed:-1], tokens)
