"""The store's protocols, one per record type, and the values they store.

:class:`ConversationStore` composes them: one object over one connection, so a write that
spans record types (a conversation deleted with its messages) stays atomic. Every store
(SQLite, MongoDB) implements it with the same behaviour; the contract suite under
``tests/memory/`` (one module per record type) holds them to it. The rules both apply alike
(ids, paging, search folding, journal arguments) live in :mod:`memory.rules`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal, Protocol, TypeVar, cast, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from memory.rules import (
    ID_PATTERN,
    JOURNAL_RANK,
    JOURNAL_UNFINISHED,
    MAX_JOURNAL_ERROR,
    MAX_JOURNAL_ID,
    MAX_JOURNAL_MESSAGE,
    MAX_PAGE,
    MAX_RESTRICTION,
    MAX_SEARCH_TEXT,
    PLACE_SEPARATOR,
    UNSET,
    JournalState,
    is_valid_id,
    is_valid_journal_id,
    journal_changes,
    journal_message_size,
    journal_state_after,
    place_parts,
    truncate_ms,
    utc_now,
)

__all__ = [
    "API_KEY_AUTHOR",
    "DISCORD_DM_WORKSPACE",
    "ID_PATTERN",
    "JOURNAL_POSITION_PATTERN",
    "JOURNAL_RANK",
    "JOURNAL_UNFINISHED",
    "MAX_CHUNK_TEXT",
    "MAX_DOCUMENT_NAME",
    "MAX_JOURNAL_ERROR",
    "MAX_JOURNAL_ID",
    "MAX_JOURNAL_MESSAGE",
    "MAX_KEY_LIMITS",
    "MAX_MEMORY_PART",
    "MAX_MEMORY_TEXT",
    "MAX_PAGE",
    "MAX_RESTRICTION",
    "MAX_SOURCES",
    "MAX_USAGE_BATCH",
    "MAX_USAGE_LABEL",
    "SLACK_IM_CHANNEL",
    "UNSET",
    "USAGE_GROUPS",
    "WORKSPACE_PATTERN",
    "AgentRecords",
    "ApiKeyRecord",
    "ApiKeyRecords",
    "BindingRecords",
    "ChannelBinding",
    "Clock",
    "Conversation",
    "ConversationOrder",
    "ConversationPage",
    "ConversationQuery",
    "ConversationRecords",
    "ConversationStore",
    "Coordination",
    "DocumentSource",
    "Feedback",
    "FeedbackRecords",
    "GoalCheck",
    "GoalCheckRecords",
    "GoalState",
    "JournalEntry",
    "JournalFinish",
    "JournalRecords",
    "JournalState",
    "KnowledgeChunk",
    "KnowledgeDocument",
    "KnowledgeRecords",
    "Memory",
    "MemoryQuery",
    "MemoryRecords",
    "MemoryScope",
    "Message",
    "MessageRecords",
    "NewApiKey",
    "NewChunk",
    "NewDocument",
    "NewGoalCheck",
    "NewJournalEntry",
    "NewMemory",
    "NewMessage",
    "NewUsage",
    "Platform",
    "PlatformKey",
    "Rating",
    "Role",
    "Scope",
    "StoreLifecycle",
    "StoredAgent",
    "UsageGroup",
    "UsageQuery",
    "UsageRecords",
    "UsageTotal",
    "WorkspaceId",
    "is_valid_id",
    "is_valid_journal_id",
    "journal_changes",
    "journal_message_size",
    "journal_state_after",
    "truncate_ms",
    "utc_now",
]

Platform = Literal["slack", "discord", "console", "api"]
Role = Literal["user", "assistant"]
ConversationOrder = Literal["updated_desc", "updated_asc", "created_desc", "created_asc"]
Scope = Literal["read", "write", "admin"]
Rating = Literal["good", "bad"]
"""A person's verdict on a reply (the feedback buttons under it)."""

MAX_KEY_LIMITS = 100
"""Agents, platforms or workspaces at most that one API key may be limited to."""
WORKSPACE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""A workspace an API key may be limited to: a Slack team id, a Discord guild id, ``dm``."""
WorkspaceId = Annotated[str, Field(pattern=WORKSPACE_PATTERN)]
DISCORD_DM_WORKSPACE = "dm"
"""The ``workspace`` of Discord direct messages, which belong to no guild."""
SLACK_IM_CHANNEL = re.compile(r"^D[A-Z0-9]+$")
"""Slack direct-message (IM) channel ids."""
JOURNAL_POSITION_PATTERN = r"^[!-~]{1,64}$"
"""A journal entry's position: 1 to 64 printable ASCII characters, no spaces (zero-padded
numbers, Slack timestamps), compared as plain strings."""
MAX_MEMORY_TEXT = 500
"""Characters of one remembered fact."""
MAX_MEMORY_PART = 128
"""Characters of a memory scope's workspace, person or agent id."""
MAX_DOCUMENT_NAME = 200
"""Characters of a knowledge document's name."""
MAX_CHUNK_TEXT = 8000
"""Characters of one knowledge chunk."""
MAX_SOURCES = 100
"""Knowledge chunks one reply may record as given to the model."""
API_KEY_AUTHOR = "api-key:"
"""How a message sent through the HTTP API names its author: this and the key's id. A key is
a program, not a person: no people memory is kept for it."""


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


V = TypeVar("V", bound=_Value)
_EVERY_FIELD: dict[type[_Value], set[str]] = {}


def unchecked(model: type[V], **values: Any) -> V:
    """A ``model`` value made of what a store itself wrote, not validated again. Every field
    counts as set, in one set shared by all of the model's values (frozen values never add to
    it): a validated value carries a set of its own, about 700 bytes, and the engine keeps
    the recent messages of a thousand conversations."""
    fields = _EVERY_FIELD.get(model)
    if fields is None:
        fields = _EVERY_FIELD.setdefault(model, set(model.model_fields))
    return cast(V, model.model_construct(_fields_set=fields, **values))


class PlatformKey(_Value):
    """Where a conversation lives: one Slack thread, one Discord channel, one console name.

    ``workspace`` is the Slack team id, the Discord guild id (``dm`` for direct messages), or
    empty for platforms without workspaces. ``thread`` is the Slack thread root ts, or empty.
    """

    platform: Platform
    workspace: str = ""
    channel: str
    thread: str = ""

    @field_validator("workspace", "channel", "thread")
    @classmethod
    def _no_separator(cls, value: str) -> str:
        if PLACE_SEPARATOR in value:
            raise ValueError("must not contain the unit separator character")
        return value

    @classmethod
    def from_canonical(cls, canonical: str) -> PlatformKey:
        """The key whose :attr:`canonical` this is (no part may hold the separator)."""
        platform, workspace, channel, thread = place_parts(canonical)
        return cls.model_validate(
            {"platform": platform, "workspace": workspace, "channel": channel, "thread": thread}
        )

    @property
    def is_direct(self) -> bool:
        """A direct message: a Discord DM (workspace ``dm``) or a Slack IM (channel ``D...``)."""
        if self.platform == "discord":
            return self.workspace == DISCORD_DM_WORKSPACE
        return self.platform == "slack" and bool(SLACK_IM_CHANNEL.fullmatch(self.channel))

    @property
    def canonical(self) -> str:
        """One string for the unique index: platform, workspace, channel and thread."""
        return PLACE_SEPARATOR.join((self.platform, self.workspace, self.channel, self.thread))


class GoalState(_Value):
    """Where a conversation stands against its agent's goal, as of the last goal check."""

    reached: bool
    checked_at: datetime
    covered_seq: int
    summary: str = ""
    missing: tuple[str, ...] = ()


class Conversation(_Value):
    id: str
    agent_id: str
    key: PlatformKey
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None = None
    title: str = ""
    data: dict[str, JsonValue] = Field(default_factory=dict)
    source: str | None = None
    tags: tuple[str, ...] = ()
    summary: str = ""
    summary_seq: int = 0
    """The summary covers every message with ``seq <= summary_seq``."""
    message_count: int = 0
    last_message_at: datetime | None = None
    goal: GoalState | None = None
    goal_pending: bool = False
    """True while messages arrived after the last goal check (or none ran yet)."""
    user: str | None = None
    """The user of the caller's system an API conversation is with (set when it is made):
    its turns read and keep that user's memories."""


class Message(_Value):
    id: str
    conversation_id: str
    seq: int
    """1, 2, 3... in the order the store accepted the messages of one conversation."""
    role: Role
    author_id: str = ""
    author_name: str = ""
    text: str
    data: dict[str, JsonValue] | None = None
    """The whole structured JSON reply, when the agent has a response shape."""
    platform_message_id: str | None = None
    created_at: datetime
    token_count: int = 0
    error: str | None = None
    """Why a reply failed (model down, invalid JSON), when it did."""
    sources: tuple[str, ...] = ()
    """The knowledge chunks the model was given for this reply (their ids)."""


class NewMessage(_Value):
    """A message as the engine hands it to the store; the store assigns id, seq and time."""

    role: Role
    text: str
    author_id: str = ""
    author_name: str = ""
    data: dict[str, JsonValue] | None = None
    platform_message_id: str | None = None
    token_count: int = Field(default=0, ge=0)
    error: str | None = None
    sources: tuple[str, ...] = Field(default=(), max_length=MAX_SOURCES)


class GoalCheck(_Value):
    id: str
    conversation_id: str
    agent_id: str
    checked_at: datetime
    reached: bool
    summary: str
    missing: tuple[str, ...] = ()
    covered_seq: int
    """The check looked at every message up to this seq."""
    error: str | None = None
    posted_at: datetime | None = None


class NewGoalCheck(_Value):
    conversation_id: str
    agent_id: str
    reached: bool
    summary: str
    missing: tuple[str, ...] = ()
    covered_seq: int = Field(ge=0)
    error: str | None = None


class ConversationQuery(_Value):
    """Filters for listing conversations. Every value is data, never a query operator.

    The single-valued filters (``agent_id``, ``platform``, ``workspace``) are what a person
    asks for; the tuples (``agent_ids``, ``platforms``, ``workspaces``) are what an API key is
    limited to, empty meaning no limit. A conversation must pass both, so a filter outside the
    key's limits matches nothing.
    """

    agent_id: str | None = None
    platform: Platform | None = None
    workspace: str | None = None
    agent_ids: tuple[str, ...] = Field(default=(), max_length=MAX_RESTRICTION)
    platforms: tuple[Platform, ...] = Field(default=(), max_length=MAX_RESTRICTION)
    workspaces: tuple[str, ...] = Field(default=(), max_length=MAX_RESTRICTION)
    tag: str | None = None
    text: str | None = Field(default=None, max_length=MAX_SEARCH_TEXT)
    """Case-insensitive literal substring of the title, summary or source."""
    include_closed: bool = True
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    offset: int = Field(default=0, ge=0)
    order: ConversationOrder = "updated_desc"


class ConversationPage(_Value):
    items: tuple[Conversation, ...]
    total: int


class StoredAgent(_Value):
    """An agent created through the API, kept in the store so every process sharing it sees it."""

    id: str
    definition: dict[str, JsonValue]
    """The agent as an agents-file entry (already validated by the caller)."""
    created_at: datetime
    updated_at: datetime


class NewApiKey(_Value):
    """An API key as the caller creates it; the store assigns id and time."""

    name: str = Field(min_length=1, max_length=80)
    scope: Scope
    agents: tuple[str, ...] = Field(default=(), max_length=MAX_KEY_LIMITS)
    """The agents the key may use; empty means every agent."""
    platforms: tuple[Platform, ...] = Field(default=(), max_length=MAX_KEY_LIMITS)
    """The platforms whose conversations the key may see; empty means every platform."""
    workspaces: tuple[WorkspaceId, ...] = Field(default=(), max_length=MAX_KEY_LIMITS)
    """The workspaces (Slack team ids, Discord guild ids, ``dm``) whose conversations the key
    may see; empty means every workspace, and conversations without one (API, terminal) too."""
    key_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    """SHA-256 hex of the key; the key itself is never stored."""
    hint: str = Field(max_length=16)
    """A recognisable prefix such as ``pk_Ab12…``, shown in listings."""


class ApiKeyRecord(_Value):
    id: str
    """32 lowercase hex digits, like conversation ids."""
    name: str
    scope: Scope
    agents: tuple[str, ...] = ()
    platforms: tuple[Platform, ...] = ()
    workspaces: tuple[str, ...] = ()
    """Empty in records from before keys could be limited to places: no limit."""
    key_hash: str
    hint: str = ""
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None


class ChannelBinding(_Value):
    """A channel whose new conversations go to ``agent_id`` (see ``bind_channel``)."""

    platform: Platform
    workspace: str
    channel: str
    agent_id: str


class Feedback(_Value):
    """One person's rating of one reply: a person has one rating per reply, the latest."""

    message_id: str
    conversation_id: str
    platform: Platform
    person: str
    rating: Rating
    rated_at: datetime


class NewJournalEntry(_Value):
    """A platform message the bot will answer, as an adapter hands it to the turn journal."""

    id: str
    """The platform's id of the message (``slack:T1:C1:1700000000.000100``, ``discord:1234``,
    ``api:<32 hex>``): a redelivery has the same id, so it is the same entry."""
    key: PlatformKey
    """The conversation's place."""
    position: str = Field(pattern=JOURNAL_POSITION_PATTERN)
    """Sorts the place's entries in platform order; the caller zero-pads numbers."""
    message: dict[str, JsonValue]
    """What the adapter needs to answer it again (text, author, agent, where to reply)."""

    @field_validator("id")
    @classmethod
    def _journal_id(cls, value: str) -> str:
        if not is_valid_journal_id(value):
            raise ValueError(f"must be 1 to {MAX_JOURNAL_ID} printable characters")
        return value

    @field_validator("message")
    @classmethod
    def _message_size(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        if journal_message_size(value) > MAX_JOURNAL_MESSAGE:
            raise ValueError(f"must be at most {MAX_JOURNAL_MESSAGE} bytes as JSON")
        return value


class JournalEntry(_Value):
    """One turn of the journal: a platform message and how far answering it has come."""

    id: str
    key: PlatformKey
    position: str
    message: dict[str, JsonValue]
    state: JournalState
    created_at: datetime
    updated_at: datetime
    """Set by every ``journal_update``: an update with no fields is a heartbeat."""
    attempts: int = 0
    """Times a process took it up to answer or show it (``journal_advance``)."""
    conversation_id: str | None = None
    user_message_id: str | None = None
    """The stored user message, once stored."""
    reply_message_id: str | None = None
    """The stored reply, once stored."""
    shown_ref: str | None = None
    """The platform's id of the message showing the reply (Slack ts, Discord message id)."""
    error: str | None = None
    prior_touch: datetime | None = None
    """Set only on an entry :meth:`JournalRecords.journal_advance` just took: its
    ``updated_at`` before the take. On a retry, what the platform shows from after this moment
    in the entry's place was posted by the attempt that died (see ``bot.journal``)."""

    @property
    def unfinished(self) -> bool:
        """Still to be answered or shown (``received`` or ``answered``)."""
        return self.state in JOURNAL_UNFINISHED


@dataclass(frozen=True, slots=True)
class JournalFinish:
    """An entry's last write, made by the drain's next :meth:`JournalRecords.journal_advance`
    in the same atomic write that takes the place's next entry. Build it with :meth:`of`."""

    entry_id: str
    state: JournalState
    changes: Mapping[str, str | None]
    """The other fields it sets, checked by :func:`journal_changes`."""

    @classmethod
    def of(
        cls,
        entry_id: str,
        *,
        state: JournalState,
        conversation_id: str | None = UNSET,
        user_message_id: str | None = UNSET,
        reply_message_id: str | None = UNSET,
        shown_ref: str | None = UNSET,
        error: str | None = UNSET,
    ) -> JournalFinish:
        """Raises ValueError for what ``journal_update`` refuses."""
        changes = journal_changes(
            state=state,
            conversation_id=conversation_id,
            user_message_id=user_message_id,
            reply_message_id=reply_message_id,
            shown_ref=shown_ref,
            error=error,
        )
        del changes["state"]
        return cls(entry_id, state, changes)


class MemoryScope(_Value):
    """Whose memory, for which agent: a person in one workspace (Slack team, Discord guild,
    ``dm`` for Discord direct messages) of one platform. ``agent_id`` is empty for memories
    all agents of the workspace share."""

    platform: Platform
    workspace: str = Field(default="", max_length=MAX_MEMORY_PART)
    person: str = Field(min_length=1, max_length=MAX_MEMORY_PART)
    agent_id: str = Field(default="", max_length=MAX_MEMORY_PART)


class NewMemory(_Value):
    """A fact about a person, with where it was learned."""

    scope: MemoryScope
    text: str = Field(min_length=1, max_length=MAX_MEMORY_TEXT)
    private: bool = False
    """Learned in a direct message: recalled only in direct messages."""
    conversation_id: str | None = Field(default=None, pattern=ID_PATTERN.pattern)
    message_id: str | None = Field(default=None, pattern=ID_PATTERN.pattern)
    """The stored reply that carried it."""
    supersedes: str | None = Field(default=None, pattern=ID_PATTERN.pattern)
    """A memory of the same scope this one replaces ("moved to Berlin" over "lives in
    Paris")."""

    @field_validator("text", mode="before")
    @classmethod
    def _stripped(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value


class Memory(NewMemory):
    id: str
    created_at: datetime
    superseded_by: str | None = None
    """Set when a newer memory replaced this one: kept as history, never recalled."""


class MemoryQuery(_Value):
    """Filters for listing memories (the API, the console, the CLI); None matches all."""

    platform: Platform | None = None
    workspace: str | None = None
    person: str | None = None
    agent_id: str | None = None
    text: str = Field(default="", max_length=MAX_SEARCH_TEXT)
    """Only memories whose text holds this, ignoring case."""
    include_superseded: bool = False
    limit: int = Field(default=50, ge=0, le=MAX_PAGE)

    @classmethod
    def of(cls, scope: MemoryScope, *, limit: int = 50) -> MemoryQuery:
        """Exactly ``scope``'s current memories."""
        return cls(
            platform=scope.platform,
            workspace=scope.workspace,
            person=scope.person,
            agent_id=scope.agent_id,
            limit=limit,
        )


MAX_USAGE_LABEL = 200
"""Characters of a usage record's purpose or model name."""
MAX_USAGE_BATCH = 1000
"""Usage records at most in one :meth:`UsageRecords.add_usage` call."""
UsageGroup = Literal["day", "agent", "conversation", "purpose", "model"]
USAGE_GROUPS: tuple[UsageGroup, ...] = ("day", "agent", "conversation", "purpose", "model")
"""What usage totals group by, in the order their groups are sorted."""


class NewUsage(_Value):
    """The tokens one model call used, as the model reported them (or as counted here,
    ``estimated``, when it reported none)."""

    at: datetime
    agent_id: str = Field(default="", max_length=MAX_MEMORY_PART)
    """Empty when the call served no one agent."""
    conversation_id: str | None = Field(default=None, pattern=ID_PATTERN.pattern)
    purpose: str = Field(min_length=1, max_length=MAX_USAGE_LABEL)
    model: str = Field(min_length=1, max_length=MAX_USAGE_LABEL)
    input_tokens: int = Field(ge=0)
    cached_input_tokens: int = Field(default=0, ge=0)
    """Of ``input_tokens``, those the server read from its prompt cache."""
    output_tokens: int = Field(ge=0)
    estimated: bool = False


class UsageQuery(_Value):
    """Totals of usage records with ``since <= at < until``, per distinct value of the
    ``group_by`` fields (one row for all when empty). ``agent_ids`` is an API key's limit
    (empty: none); a filter outside it matches nothing."""

    agent_id: str | None = None
    conversation_id: str | None = None
    agent_ids: tuple[str, ...] = Field(default=(), max_length=MAX_RESTRICTION)
    since: datetime | None = None
    until: datetime | None = None
    group_by: tuple[UsageGroup, ...] = ()
    limit: int = Field(default=MAX_PAGE, ge=0, le=10 * MAX_PAGE)


class UsageTotal(_Value):
    """One group of :class:`UsageQuery`: the grouped fields are set, the others None."""

    agent_id: str | None = None
    conversation_id: str | None = None
    purpose: str | None = None
    model: str | None = None
    day: date | None = None
    """The UTC day."""
    calls: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    estimated_calls: int = 0
    """Calls whose counts are estimated (the server reported none)."""

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


DocumentSource = Literal["file", "upload"]


class NewDocument(_Value):
    """One of an agent's documents, as the knowledge indexer hands it to the store."""

    agent_id: str = Field(min_length=1, max_length=MAX_MEMORY_PART)
    name: str = Field(min_length=1, max_length=MAX_DOCUMENT_NAME)
    """Unique per agent: the file's path relative to the agents file, or the upload's name."""
    source: DocumentSource
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    """SHA-256 of the document's bytes: unchanged content is not indexed again."""
    size: int = Field(ge=0)
    """Bytes."""


class KnowledgeDocument(NewDocument):
    id: str
    chunks: int
    created_at: datetime
    updated_at: datetime


class NewChunk(_Value):
    """A token-sized piece of a document, in document order."""

    text: str = Field(min_length=1, max_length=MAX_CHUNK_TEXT)
    tokens: int = Field(ge=0)


class KnowledgeChunk(NewChunk):
    id: str
    document_id: str
    agent_id: str
    document_name: str
    n: int
    """0, 1, 2... in document order."""


@runtime_checkable
class StoreLifecycle(Protocol):
    """Opening, closing and health of a store (its one connection)."""

    @property
    def description(self) -> str:
        """What this store is, for humans and logs, without secrets."""
        ...

    async def open(self) -> None:
        """Connect and create indexes. Idempotent."""
        ...

    async def close(self) -> None: ...

    async def ping(self) -> bool:
        """True when the store answers."""
        ...


@runtime_checkable
class ConversationRecords(Protocol):
    """Conversations: one open conversation per place, listed, searched, updated, deleted."""

    async def get_or_create_conversation(
        self, *, key: PlatformKey, agent_id: str, title: str = ""
    ) -> tuple[Conversation, bool]:
        """The open conversation at ``key``, or a new one. Atomic: concurrent callers share one.

        Returns the conversation and whether this call created it.
        """
        ...

    async def find_conversation(self, *, key: PlatformKey) -> Conversation | None:
        """The open conversation at ``key``, if any."""
        ...

    async def get_conversation(self, *, conversation_id: str) -> Conversation | None: ...

    async def close_conversation(self, *, conversation_id: str) -> bool:
        """Close it: its history stays, and the next message at its key opens a new one."""
        ...

    async def update_conversation(
        self,
        *,
        conversation_id: str,
        data: dict[str, JsonValue] = UNSET,
        source: str | None = UNSET,
        tags: Sequence[str] = UNSET,
        agent_id: str = UNSET,
        title: str = UNSET,
        user: str | None = UNSET,
    ) -> Conversation | None:
        """Replace the given fields; returns the updated conversation or None if unknown."""
        ...

    async def set_summary(self, *, conversation_id: str, summary: str, summary_seq: int) -> bool:
        """Store the rolling summary; ignored if one covering later messages is stored."""
        ...

    async def list_conversations(self, query: ConversationQuery) -> ConversationPage: ...

    async def delete_conversation(self, *, conversation_id: str) -> bool:
        """Delete it with all its messages and goal checks."""
        ...


@runtime_checkable
class MessageRecords(Protocol):
    """Messages, numbered per conversation."""

    async def append_message(self, *, conversation_id: str, message: NewMessage) -> Message:
        """Store a message with the next seq of its conversation. Raises NotFound if unknown."""
        ...

    async def list_messages(
        self,
        *,
        conversation_id: str,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[Message]:
        """Messages with ``after_seq < seq < before_seq``, at most ``limit``.

        ``newest_first`` picks the newest ``limit`` (returned newest first); otherwise the oldest.
        Reads only what it returns, through the (conversation, seq) index.
        """
        ...


@runtime_checkable
class GoalCheckRecords(Protocol):
    """Goal checks and the conversations due for one."""

    async def add_goal_check(self, check: NewGoalCheck) -> GoalCheck:
        """Store a check and, unless it failed, the conversation's goal state."""
        ...

    async def list_goal_checks(self, *, conversation_id: str, limit: int = 50) -> list[GoalCheck]:
        """Newest first."""
        ...

    async def mark_goal_check_posted(self, *, check_id: str) -> bool: ...

    async def list_agent_goal_checks(
        self,
        *,
        agent_id: str,
        since: datetime,
        limit: int = 5000,
        platforms: Sequence[Platform] = (),
        workspaces: Sequence[str] = (),
    ) -> list[GoalCheck]:
        """Checks of the agent's conversations with ``checked_at >= since``, oldest first.

        Read through the (agent_id, checked_at) index; failed checks are included. Given
        ``platforms`` or ``workspaces`` (an API key's limits), only checks of conversations in
        those places, looked up by id: still no read of conversations outside the window.
        """
        ...

    async def goal_checks_to_post(self, *, agent_id: str, limit: int = 100) -> list[GoalCheck]:
        """Successful checks of the agent not yet posted (their posting failed), oldest first."""
        ...

    async def conversations_due_for_goal_check(
        self, *, agent_id: str, limit: int = 100
    ) -> list[Conversation]:
        """Open conversations of the agent with messages after their last goal check."""
        ...


@runtime_checkable
class BindingRecords(Protocol):
    """Channels bound to an agent (``/agent use``)."""

    async def bind_channel(
        self, *, platform: Platform, workspace: str, channel: str, agent_id: str
    ) -> None:
        """Make ``agent_id`` the agent of new conversations in a channel (``/agent use``)."""
        ...

    async def channel_agent(
        self, *, platform: Platform, workspace: str, channel: str
    ) -> str | None:
        """The agent bound to a channel through :meth:`bind_channel`, if any."""
        ...

    async def list_channel_bindings(
        self, *, agent_id: str | None = None, limit: int = 1000
    ) -> list[ChannelBinding]:
        """Bound channels (of one agent, if given), by platform, workspace and channel."""
        ...


@runtime_checkable
class FeedbackRecords(Protocol):
    """Ratings of replies (good or bad), kept with the reply and deleted with its conversation."""

    async def rate_message(
        self, *, message_id: str, platform: Platform, person: str, rating: Rating
    ) -> tuple[Feedback, Rating | None] | None:
        """Record ``person``'s rating of the reply ``message_id``, replacing theirs if any.

        Returns the rating as stored and the person's rating before it (None the first time;
        the same rating for a repeated click, which changes nothing but the time); None when
        there is no such reply (unknown id, or a person's message)."""
        ...

    async def list_feedback(self, *, message_id: str) -> list[Feedback]:
        """The ratings of one reply, oldest first (by person for equal times)."""
        ...


@runtime_checkable
class AgentRecords(Protocol):
    """Agents created through the API."""

    async def create_agent(self, *, agent_id: str, definition: dict[str, JsonValue]) -> StoredAgent:
        """Store a new agent. Raises Conflict if a stored agent has that id."""
        ...

    async def replace_agent(
        self, *, agent_id: str, definition: dict[str, JsonValue]
    ) -> StoredAgent | None:
        """Replace the definition; None if unknown. Keeps created_at, sets updated_at."""
        ...

    async def get_agent(self, *, agent_id: str) -> StoredAgent | None: ...

    async def list_agents(self, *, limit: int = 1000) -> list[StoredAgent]:
        """By id."""
        ...

    async def delete_agent(self, *, agent_id: str) -> bool:
        """True if it existed."""
        ...


@runtime_checkable
class ApiKeyRecords(Protocol):
    """API keys, kept as hashes."""

    async def add_api_key(self, key: NewApiKey) -> ApiKeyRecord:
        """Store a key. Raises Conflict if an unrevoked key has that name (or the hash exists)."""
        ...

    async def find_api_key(self, *, key_hash: str) -> ApiKeyRecord | None:
        """The key with that hash, revoked ones too (callers check revoked_at). One index lookup."""
        ...

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        """Oldest first (ties by id), revoked included."""
        ...

    async def revoke_api_key(self, *, key_id: str) -> bool:
        """Set revoked_at; False if unknown or already revoked. Its name becomes free again."""
        ...

    async def touch_api_key(self, *, key_id: str) -> None:
        """Set last_used_at to now (the store's clock); nothing happens for an unknown id."""
        ...


@runtime_checkable
class Coordination(Protocol):
    """What lets processes share work: processed platform events, expiring claims, and small
    values they share (such as the hash of the Discord commands last registered)."""

    async def mark_event_processed(self, *, event_id: str, ttl_seconds: int = 86_400) -> bool:
        """Record a platform event id. True the first time, False for a duplicate."""
        ...

    async def claim(self, *, key: str, owner: str, ttl_seconds: float) -> bool:
        """Take ``key`` for ``owner`` unless another owner holds an unexpired claim on it."""
        ...

    async def release_claim(self, *, key: str, owner: str) -> bool: ...

    async def get_value(self, *, name: str) -> str | None:
        """The value last set under ``name``, or None."""
        ...

    async def set_value(self, *, name: str, value: str) -> None:
        """Set ``name`` to ``value`` (the last write wins)."""
        ...


@runtime_checkable
class JournalRecords(Protocol):
    """The turn journal: platform messages the bot will answer, and how far each has come."""

    async def journal_add(self, entry: NewJournalEntry) -> tuple[JournalEntry, bool]:
        """Record a platform message as ``received``, unless an entry has its id.

        Atomic: of any number of adds of one id (redeliveries, other processes) one creates
        the entry; the others get the existing entry, unchanged. Returns it and whether this
        call created it.
        """
        ...

    async def journal_add_and_take(
        self, entry: NewJournalEntry, *, lease: str, owner: str, ttl_seconds: float
    ) -> tuple[JournalEntry, bool, JournalEntry | None]:
        """:meth:`journal_add`, then, when that created the entry, the take of
        :meth:`journal_advance` (with no finish) at the entry's place: the first unfinished
        entry there (this one, or one recorded before it) taken up under the claim ``lease``.

        Returns the entry (as taken, when it was), whether this call created it, and the
        entry taken, or None when nothing was taken (a redelivery, or another owner holds the
        claim; the entry is recorded all the same). For a place with no drain in the caller's
        process: one write records a message and starts answering it. SQLite makes it one
        transaction; a store that cannot make the take part of the add's one write takes
        nothing (None) and leaves the entry to a drain step, so that whoever waits for the
        add (an acknowledgement) waits for one write.
        """
        ...

    async def journal_get(self, *, entry_id: str) -> JournalEntry | None:
        """The entry with that id; None if unknown or not a valid journal id."""
        ...

    async def journal_next(self, *, key: PlatformKey) -> JournalEntry | None:
        """The first unfinished entry at ``key`` by (position, created_at, id). One index read."""
        ...

    async def journal_advance(
        self,
        *,
        key: PlatformKey,
        lease: str,
        owner: str,
        ttl_seconds: float,
        finish: JournalFinish | None = None,
    ) -> JournalEntry | None:
        """One step of a drain at ``key``: write ``finish`` (the entry just done, as
        :meth:`journal_update` would), take or renew the claim ``lease`` for ``owner`` (as
        :meth:`Coordination.claim`) and, holding it, take up the first unfinished entry (as
        :meth:`journal_next` finds it): add one to ``attempts``, set ``updated_at`` and return
        it as updated (a takeover sees the attempt counted).

        Returns None when another owner holds the claim (``finish`` is still written), or when
        the place has nothing unfinished: the claim is then released, and an entry added
        while it was being released is not left behind (the step looks again, or runs as one
        transaction), so whoever adds one after a None can take the claim.
        """
        ...

    async def journal_update(
        self,
        *,
        entry_id: str,
        state: JournalState = UNSET,
        conversation_id: str | None = UNSET,
        user_message_id: str | None = UNSET,
        reply_message_id: str | None = UNSET,
        shown_ref: str | None = UNSET,
        error: str | None = UNSET,
        add_attempt: bool = False,
    ) -> JournalEntry | None:
        """Set the given fields and ``updated_at``; add one to ``attempts`` if asked.

        One atomic write. The state moves only forwards (see :func:`journal_state_after`):
        asked to move back, the state stays while the other fields are still set. Arguments
        are checked by :func:`journal_changes` (ValueError). Returns the entry as updated, or
        None if unknown.
        """
        ...

    async def journal_pending(
        self, *, limit: int = 100, updated_before: datetime | None = None
    ) -> list[PlatformKey]:
        """Places with unfinished entries, by their oldest unfinished entry (created_at, id).

        With ``updated_before``, only places whose oldest unfinished entry was last updated
        before then (turns a dead process may have left). Reads only unfinished entries,
        through an index.
        """
        ...

    async def journal_backlog(self) -> int:
        """How many entries are unfinished: an index-backed count."""
        ...

    async def journal_prune(self, *, finished_before: datetime) -> int:
        """Delete shown and failed entries last updated before then; returns how many.

        A redelivery of a pruned entry's message is a new entry: keep finished entries for
        longer than a platform may redeliver.
        """
        ...


@runtime_checkable
class MemoryRecords(Protocol):
    """Durable facts about people, learned in conversations (see :mod:`memory.recall`)."""

    async def add_memories(
        self, memories: Sequence[NewMemory], vectors: Sequence[bytes | None] = ()
    ) -> list[Memory]:
        """Keep the memories (one write); each one naming ``supersedes`` marks that memory,
        when it is of the same scope, as superseded by it: kept as history, never recalled.
        ``vectors`` (when given, one per memory) are their embeddings."""
        ...

    async def memory_vectors(
        self, scope: MemoryScope, *, include_private: bool, limit: int
    ) -> list[tuple[str, bytes]]:
        """(id, embedding) of ``scope``'s newest current memories that have one, as
        :meth:`recall_memories` would consider them."""
        ...

    async def recall_memories(
        self, scope: MemoryScope, *, query: str, include_private: bool, limit: int
    ) -> list[Memory]:
        """Current (not superseded) memories of exactly ``scope``, ranked for ``query`` by
        :func:`memory.recall.rank`; private ones (learned in a direct message) only with
        ``include_private``."""
        ...

    async def list_memories(self, query: MemoryQuery) -> list[Memory]:
        """Memories matching every filter of ``query``, newest first."""
        ...

    async def get_memory(self, *, memory_id: str) -> Memory | None: ...

    async def supersede_memories(
        self, *, scope: MemoryScope, pairs: Sequence[tuple[str, str]]
    ) -> int:
        """For each ``(old, new)``, mark the current memory ``old`` as superseded by the
        current memory ``new``, both of ``scope`` (a pair that is not is skipped); returns how
        many were marked."""
        ...

    async def forget_memories(
        self, *, ids: Sequence[str] = (), scope: MemoryScope | None = None
    ) -> int:
        """Delete for good the memories with these ids and the ones each superseded (its
        history), or all of ``scope``'s; returns how many were deleted."""
        ...


@runtime_checkable
class KnowledgeRecords(Protocol):
    """Agents' documents, split into chunks and indexed by their words (see
    :mod:`memory.recall`'s ``terms``)."""

    async def put_document(
        self,
        document: NewDocument,
        chunks: Sequence[NewChunk],
        vectors: Sequence[bytes | None] = (),
    ) -> KnowledgeDocument:
        """Keep the document and exactly these chunks (those of an earlier version with the
        same agent and name are replaced), atomically for readers of one store. ``vectors``
        (when given, one per chunk) are their embeddings."""
        ...

    async def chunk_vectors(self, *, agent_id: str, limit: int) -> list[tuple[str, bytes]]:
        """(id, embedding) of up to ``limit`` of the agent's chunks that have one, by
        document and position."""
        ...

    async def get_document(self, *, agent_id: str, name: str) -> KnowledgeDocument | None: ...

    async def list_documents(self, *, agent_id: str | None = None) -> list[KnowledgeDocument]:
        """An agent's documents (every agent's with None), by agent and name."""
        ...

    async def delete_document(self, *, agent_id: str, name: str) -> bool:
        """Delete the document and its chunks; False when there was none."""
        ...

    async def search_knowledge(
        self, *, agent_id: str, query: str, limit: int
    ) -> list[KnowledgeChunk]:
        """The agent's chunks sharing the most words with ``query`` (``memory.recall.terms``),
        best first: more shared words, then document name and position. Chunks sharing no
        word are never returned. Reads through an index of words, never every chunk."""
        ...

    async def get_chunks(self, *, ids: Sequence[str]) -> list[KnowledgeChunk]:
        """The chunks with these ids that still exist, in the order asked."""
        ...


@runtime_checkable
class UsageRecords(Protocol):
    """Tokens the model used, per call, and their totals."""

    async def add_usage(self, records: Sequence[NewUsage]) -> int:
        """Store up to :data:`MAX_USAGE_BATCH` records at once; returns how many."""
        ...

    async def usage_totals(self, query: UsageQuery) -> list[UsageTotal]:
        """Totals per group, ordered by the grouped fields in :data:`USAGE_GROUPS` order
        (missing values first); at most ``query.limit`` groups."""
        ...


@runtime_checkable
class ConversationStore(
    StoreLifecycle,
    ConversationRecords,
    MessageRecords,
    GoalCheckRecords,
    BindingRecords,
    FeedbackRecords,
    AgentRecords,
    ApiKeyRecords,
    Coordination,
    JournalRecords,
    MemoryRecords,
    KnowledgeRecords,
    UsageRecords,
    Protocol,
):
    """Every record type over one connection, so that writes spanning types stay atomic.

    All methods are safe to call concurrently from one event loop; MongoDB and a shared SQLite
    file also make them safe across processes. Times are UTC with millisecond precision.
    """


Clock = Callable[[], datetime]
"""Injected into stores so that expiry is testable without sleeping."""
