"""Admission of turns: whether one more turn may start now, and why not.

Every turn is counted from the moment it is asked for until it ends (finished, failed or
cancelled), whether it is running or still waiting for its conversation's earlier turns.
Three bounds apply:

* each quota holder (an API key) has at most ``per_quota`` turns in flight: a client that
  leaves its streams keeps its turns running, so requests per second alone bound nothing;
* each conversation has at most ``per_conversation`` turns in flight, on every platform;
* the engine has at most ``total`` turns in flight, and ``api`` turns (the HTTP API and the
  web console) take at most ``floor(api_share * total)`` of them together, so Slack, Discord
  and the terminal chat always keep the rest.

The table holds an entry for a holder or a conversation only while one of its turns is in
flight, so it never grows beyond the turns themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

from bot.errors import BUSY_LINE, ParleyError

__all__ = [
    "Admission",
    "ApiShareFull",
    "ConversationBusy",
    "EngineBusy",
    "KeyBusy",
    "Ticket",
    "TurnClass",
]

TurnClass = Literal["chat", "api"]
"""``chat``: Slack, Discord and the terminal, which may use the engine's whole capacity.
``api``: the HTTP API and the web console, which share ``api_share`` of it."""


class EngineBusy(ParleyError):
    """Too many turns are waiting; the caller should ask the person to try again shortly.

    The message is one short line for the API client; ``retry_after`` is how many seconds to
    wait before trying again."""

    status = 503
    code = "busy"
    client_line = None
    public_line = BUSY_LINE
    retry_after = 5


class KeyBusy(EngineBusy):
    """The quota holder (an API key) already has its turns in flight."""

    status = 429
    code = "too_many_turns"


class ConversationBusy(EngineBusy):
    """The conversation already has its turns in flight (too many requests to it, not a
    state conflict: it clears as its turns finish)."""

    status = 429
    code = "conversation_busy"


class ApiShareFull(EngineBusy):
    """API turns together hold their share of the engine; the rest is kept for chat platforms."""


class Ticket:
    """One admitted turn; :meth:`release` gives its place back (once, however often called)."""

    __slots__ = ("_admission", "_conversation", "_kind", "_quota", "_released")

    def __init__(
        self, admission: Admission, *, conversation: str, quota: str | None, kind: TurnClass
    ) -> None:
        self._admission = admission
        self._conversation = conversation
        self._quota = quota
        self._kind: TurnClass = kind
        self._released = False

    @property
    def released(self) -> bool:
        return self._released

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        self._admission._release(self._conversation, self._quota, self._kind)


class Admission:
    """The in-memory table of turns in flight, by quota holder, conversation and class."""

    def __init__(
        self,
        *,
        total: int,
        per_quota: int,
        per_conversation: int,
        api_share: float,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        """``on_refused`` is told the reason of each refusal (``busy``, ``too_many_turns``,
        ``conversation_busy`` or ``api_share``), for metrics."""
        if total < 0 or per_quota < 1 or per_conversation < 1:
            raise ValueError("turn limits must be positive (total may be 0)")
        if not 0 < api_share <= 1:
            raise ValueError("api_share must be in (0, 1]")
        self._total = total
        self._per_quota = per_quota
        self._per_conversation = per_conversation
        self._api_total = math.floor(api_share * total)
        self._in_flight = 0
        self._api_in_flight = 0
        self._by_quota: dict[str, int] = {}
        self._by_conversation: dict[str, int] = {}
        self._on_refused = on_refused

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def api_in_flight(self) -> int:
        return self._api_in_flight

    @property
    def api_total(self) -> int:
        """How many ``api`` turns may be in flight together."""
        return self._api_total

    @property
    def entries(self) -> int:
        """Rows of the table (holders plus conversations with a turn in flight)."""
        return len(self._by_quota) + len(self._by_conversation)

    def of_quota(self, quota: str) -> int:
        return self._by_quota.get(quota, 0)

    def of_conversation(self, conversation: str) -> int:
        return self._by_conversation.get(conversation, 0)

    def admit(
        self, *, conversation: str, quota: str | None = None, kind: TurnClass = "chat"
    ) -> Ticket:
        """Count one more turn of ``conversation`` (charged to ``quota`` when given).

        Raises:
            KeyBusy: the holder has ``per_quota`` turns in flight.
            ConversationBusy: the conversation has ``per_conversation`` turns in flight.
            EngineBusy: the engine has ``total`` turns in flight.
            ApiShareFull: an ``api`` turn, and API turns hold their whole share.
        """
        try:
            return self._admit(conversation, quota, kind)
        except EngineBusy as exc:
            if self._on_refused is not None:
                self._on_refused("api_share" if isinstance(exc, ApiShareFull) else exc.code)
            raise

    def _admit(self, conversation: str, quota: str | None, kind: TurnClass) -> Ticket:
        if quota is not None and self.of_quota(quota) >= self._per_quota:
            raise KeyBusy(
                f"this key already has {self._per_quota} turns running or waiting; "
                "wait for one to finish"
            )
        if self.of_conversation(conversation) >= self._per_conversation:
            raise ConversationBusy(
                f"this conversation already has {self._per_conversation} messages waiting "
                "for replies; wait for one to finish"
            )
        if self._in_flight >= self._total:
            raise EngineBusy("too many messages are waiting; try again in a moment")
        if kind == "api" and self._api_in_flight >= self._api_total:
            raise ApiShareFull("the API is handling too many messages; try again in a moment")
        self._in_flight += 1
        if kind == "api":
            self._api_in_flight += 1
        if quota is not None:
            self._by_quota[quota] = self.of_quota(quota) + 1
        self._by_conversation[conversation] = self.of_conversation(conversation) + 1
        return Ticket(self, conversation=conversation, quota=quota, kind=kind)

    def _release(self, conversation: str, quota: str | None, kind: TurnClass) -> None:
        self._in_flight -= 1
        if kind == "api":
            self._api_in_flight -= 1
        if quota is not None:
            _decrement(self._by_quota, quota)
        _decrement(self._by_conversation, conversation)


def _decrement(table: dict[str, int], name: str) -> None:
    left = table[name] - 1
    if left > 0:
        table[name] = left
    else:
        del table[name]
