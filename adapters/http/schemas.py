"""Request bodies and the few response wrappers; the records themselves (conversations,
messages, goal checks, agents) are the store's and the agents file's own models."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StringConstraints

from bot.usage import CostedTotal, UsageReport
from config.agents import AGENT_ID, Agent
from memory.base import (
    MAX_DOCUMENT_NAME,
    MAX_MEMORY_PART,
    MAX_MEMORY_TEXT,
    MemoryScope,
    Message,
    Platform,
    UsageGroup,
)

Tag = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]
AgentId = Annotated[str, StringConstraints(pattern=AGENT_ID)]
SHARED_OR_AGENT = rf"^$|{AGENT_ID}"
"""An agent id, or empty for what every agent of a workspace shares."""
MemoryPart = Annotated[
    str, StringConstraints(max_length=MAX_MEMORY_PART, pattern=r"^[^\x00-\x1f]*$")
]
"""The workspace or person of a memory scope: no control characters."""
_ID = re.compile(r"^[0-9a-f]{32}$")
_DOCUMENT_NAME = re.compile(r"^[^\x00-\x1f\x7f\s](?:[^\x00-\x1f\x7f]*[^\x00-\x1f\x7f\s])?$")
DOCUMENT_NAME_RULE = (
    f"1 to {MAX_DOCUMENT_NAME} characters with a known suffix (.md, .txt, .pdf...),"
    " no control characters, no space at either end"
)
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
    user: (
        Annotated[
            str,
            StringConstraints(min_length=1, max_length=MAX_MEMORY_PART, pattern=r"^[^\x00-\x1f]+$"),
        ]
        | None
    ) = None
    """The user of your system this conversation is with: agents that remember people keep
    and use this user's memories here (none without it). Set once, here."""


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


def valid_document_name(value: str) -> bool:
    """An uploaded document's name (slashes allowed: ``guides/pasta.md``); its suffix says
    what kind of document it is."""
    return len(value) <= MAX_DOCUMENT_NAME and bool(_DOCUMENT_NAME.fullmatch(value))


class NewPersonMemory(_Body):
    """A fact about a person, kept in the scope (platform, workspace, person, agent)."""

    platform: Platform
    workspace: MemoryPart = ""
    """Slack team id, Discord guild id (``dm`` for direct messages); empty for the API and
    the terminal."""
    person: Annotated[MemoryPart, StringConstraints(min_length=1)]
    """The person's id on the platform (Slack user id, Discord user id, the API's ``user``)."""
    agent: Annotated[str, StringConstraints(pattern=SHARED_OR_AGENT)] = ""
    """The agent that remembers it; empty: shared by every agent of the workspace."""
    text: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MEMORY_TEXT)
    ]
    private: bool = False
    """Learned in a direct message: recalled only in direct messages."""

    def scope(self) -> MemoryScope:
        return MemoryScope(
            platform=self.platform,
            workspace=self.workspace,
            person=self.person,
            agent_id=self.agent,
        )


class ForgottenMemories(BaseModel):
    deleted: int
    """How many memories were deleted, superseded ones included."""


class UsageRow(BaseModel):
    """Usage of one group (the grouped fields are set, the others null), with its cost."""

    day: date | None = Field(default=None, description="the UTC day, when grouped by day")
    agent: str | None = None
    conversation_id: str | None = None
    purpose: str | None = Field(
        default=None, description="reply, summary, goal_check, memory or other"
    )
    model: str | None = None
    calls: int
    input_tokens: int
    cached_input_tokens: int = Field(description="of input_tokens, read from the prompt cache")
    output_tokens: int
    estimated_calls: int = Field(
        description="calls whose counts were made here: the server reported no usage"
    )
    cost: float | None = Field(
        description="in the report's currency; null when a model in it has no price"
    )
    unpriced_models: list[str] = Field(description="the models in it that have no price")

    @classmethod
    def of(cls, row: CostedTotal) -> UsageRow:
        t = row.total
        return cls(
            day=t.day,
            agent=t.agent_id,
            conversation_id=t.conversation_id,
            purpose=t.purpose,
            model=t.model,
            calls=t.calls,
            input_tokens=t.input_tokens,
            cached_input_tokens=t.cached_input_tokens,
            output_tokens=t.output_tokens,
            estimated_calls=t.estimated_calls,
            cost=row.cost,
            unpriced_models=list(row.unpriced),
        )


class UsageReportBody(BaseModel):
    """Tokens the model used in ``[from, to)``, per group and in all, priced per model."""

    model_config = ConfigDict(populate_by_name=True)

    since: datetime | None = Field(alias="from")
    until: datetime | None = Field(alias="to")
    group_by: list[UsageGroup]
    currency: str
    rows: list[UsageRow]
    total: UsageRow
    truncated: bool = Field(description="more groups matched than one report holds")

    @classmethod
    def of(cls, report: UsageReport) -> UsageReportBody:
        return cls(
            since=report.query.since,
            until=report.query.until,
            group_by=list(report.group_by),
            currency=report.currency,
            rows=[UsageRow.of(row) for row in report.rows],
            total=UsageRow.of(report.total),
            truncated=report.truncated,
        )
