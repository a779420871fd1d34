"""A zero-latency model that implements ``bot.llm.ModelClient`` in-process.

Replies are pre-generated valid chef JSON objects, streamed in a few pieces without ever
waiting, so the time of a turn is the engine's and the store's alone. Summary requests (their
system message carries ``[parley:summary]``) get a short plain-text summary.

The model can record the messages of the reply requests it receives; the benchmark counts
their tokens after the timed region, so counting never inflates a measured turn.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from bench.workload import MODEL, SUMMARY_TEXT, TextSource
from bot.llm import ChatRequest
from bot.prompt import MESSAGE_OVERHEAD_TOKENS, ChatMessage
from bot.tokens import TokenCounter

SUMMARY_MARKER = "[parley:summary]"
"""What the engine puts in the system message of a summary request."""
_POOL = 97
_PIECES = 4

Messages = tuple[ChatMessage, ...]


class InstantModel:
    """Answers every request at once; optionally records reply prompts."""

    def __init__(self, *, seed: int = 20_240_601) -> None:
        texts = TextSource(seed)
        replies = [json.dumps(texts.reply_data(), ensure_ascii=False) for _ in range(_POOL)]
        self._replies = replies
        self._pieces = [_split(reply, _PIECES) for reply in replies]
        self._next = 0
        self._every = 0
        self._seen = 0
        self._recorded: list[Messages] = []
        self.summaries = 0

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
        self._observe(request)
        index = self._take()
        for piece in self._pieces[index]:
            yield piece

    async def complete(self, request: ChatRequest) -> str:
        if request.messages and SUMMARY_MARKER in request.messages[0].content:
            self.summaries += 1
            return SUMMARY_TEXT
        self._observe(request)
        return self._replies[self._take()]

    async def close(self) -> None:
        return None

    def _take(self) -> int:
        index = self._next
        self._next = (index + 1) % _POOL
        return index


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
