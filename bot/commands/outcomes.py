"""Who calls a command (:class:`Caller`) and what it comes to (the outcomes a platform renders)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

from bot.commands.rules import FORGET_LABEL, KEEP_LABEL
from config.agents import Agent
from memory.base import Conversation, GoalCheck, PlatformKey


async def _no() -> bool:
    return False


@dataclass(frozen=True, slots=True)
class Caller:
    """Who runs a command, and where."""

    key: PlatformKey
    """The conversation key of the place the command is used in."""
    user_id: str
    user_name: str = ""
    admins: str = "admins"
    """What the platform calls the people :attr:`is_admin` recognises, for refusals."""
    is_admin: Callable[[], Awaitable[bool]] = field(default=_no)
    """Asked only when a rule needs it (it may cost the platform a call)."""
    in_dm: bool = False
    owns_place: bool = False
    """The platform knows the caller opened this place (a Discord thread they own)."""
    parent_channel: str | None = None
    """The channel a thread belongs to, whose binding the thread inherits."""
    opens_threads: bool = True
    """``start`` opens a new thread (the platform does, see :class:`OpenThread`); without
    threads it starts afresh here."""
    prefix: str = "/agent "
    """How commands are typed on this platform, for hints."""


# outcomes ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Said:
    text: str
    private: bool = True
    """Only the caller sees it (an ephemeral message) when the platform can do that."""


@dataclass(frozen=True, slots=True)
class Refused:
    reason: str


@dataclass(frozen=True, slots=True)
class Pending:
    """A confirmed action to come back with: what, on which conversation, asked by whom."""

    verb: Literal["forget"]
    conversation_id: str
    user_id: str

    def encode(self) -> str:
        return json.dumps({"c": self.conversation_id, "u": self.user_id}, separators=(",", ":"))

    @classmethod
    def decode(cls, value: object) -> Pending | None:
        try:
            data = json.loads(value) if isinstance(value, str) else None
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        conversation, user = data.get("c"), data.get("u")
        if not isinstance(conversation, str) or not isinstance(user, str):
            return None
        return cls("forget", conversation, user)


@dataclass(frozen=True, slots=True)
class NeedsConfirmation:
    prompt: str
    action: Pending
    confirm_label: str = FORGET_LABEL
    cancel_label: str = KEEP_LABEL


@dataclass(frozen=True, slots=True)
class FileToSend:
    name: str
    content: bytes
    title: str
    comment: str
    conversation: Conversation


@dataclass(frozen=True, slots=True)
class GoalCheckToPost:
    conversation: Conversation
    agent: Agent
    check: GoalCheck


@dataclass(frozen=True, slots=True)
class Started:
    """A new conversation began here; the platform shows ``note`` then the agent's first
    message, publicly."""

    note: str
    agent: Agent
    conversation: Conversation


@dataclass(frozen=True, slots=True)
class OpenThread:
    """Open a thread for ``agent``, then record it with :meth:`AgentCommands.thread_opened`."""

    agent: Agent


Outcome = Said | Refused | NeedsConfirmation | FileToSend | GoalCheckToPost | Started | OpenThread
