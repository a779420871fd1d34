"""Request bodies and the few response wrappers; the records themselves (conversations,
messages, goal checks, agents) are the store's and the agents file's own models."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints

from config.agents import AGENT_ID, Agent
from memory.base import Message

Tag = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]
AgentId = Annotated[str, StringConstraints(pattern=AGENT_ID)]
_ID = re.compile(r"^[0-9a-f]{32}$")
MAX_SEQ = 2**53
"""The largest message position (or other counter) a query parameter may name: far beyond any
real one, well inside the stores' 64-bit integers and exact in JSON numbers. Larger values are
refused as 422 instead of overflowing in the store."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NewConversation(_Body):
    agent_id: AgentId | None = None
    """The agent; the default agent when left out."""
    data: dict[str, JsonValue] | None = None
    source: Annotated[str, StringConstraints(max_length=200)] | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=20)


class ConversationChanges(_Body):
    """Only the fields given are changed."""

    data: dict[str, JsonValue] | None = None
    source: Annotated[str, StringConstraints(max_length=200)] | None = None
    tags: list[Tag] | None = Field(default=None, max_length=20)


class NewUserMessage(_Body):
    text: Annotated[str, StringConstraints(min_length=1, max_length=32_000)]
    author: Annotated[str, StringConstraints(max_length=80)] = ""
    """The person's name as the agent sees it."""


class MessagePage(BaseModel):
    items: list[Message]
    """Newest first."""
    next_before: int | None
    """Pass as ``before`` for the next (older) page; null on the last page."""


class AgentOut(Agent):
    source: Literal["file", "store"]
    """``file`` agents are read-only here; ``store`` agents were created through the API."""


class KeyInfo(BaseModel):
    name: str
    scope: Literal["read", "write", "admin"]
    agents: list[str]


def valid_id(value: str) -> bool:
    return bool(_ID.fullmatch(value))
