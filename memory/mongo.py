"""The MongoDB conversation store, on PyMongo's native asyncio client.

Every multi-writer guarantee of :class:`~memory.base.ConversationStore` rests on single-document
atomic operations and unique indexes, so no transactions (and no replica set) are needed:

* one open conversation per platform key: a unique index on ``key_id`` that only holds open
  conversations (closing one unsets the field);
* message seqs: an ``$inc`` of the conversation's ``message_count``;
* processed events and claims: an upsert on ``_id`` whose filter only matches an expired (or own)
  record, so a live record turns the upsert into a duplicate-key error;
* the turn journal: an insert on ``_id`` (the platform's message id) for each new entry, and one
  pipeline update per state change, whose condition on the stored state keeps states from
  moving backwards.

JSON ``data`` is kept as JSON text: BSON cannot hold integers beyond 64 bits, and ``$``-prefixed
or dotted keys (a model reply's ``"$schema"``) are not reliably accepted inside update operators.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote
from uuid import uuid4

from bson.errors import BSONError
from pydantic import JsonValue
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConfigurationError, ConnectionFailure, DuplicateKeyError, PyMongoError

from bot.errors import Conflict, NotFound, StoreError, StoreUnavailable
from config.redact import redact_url
from memory.base import (
    JOURNAL_RANK,
    JOURNAL_UNFINISHED,
    UNSET,
    ApiKeyRecord,
    ChannelBinding,
    Clock,
    Conversation,
    ConversationOrder,
    ConversationPage,
    ConversationQuery,
    GoalCheck,
    GoalState,
    JournalEntry,
    JournalState,
    Message,
    NewApiKey,
    NewGoalCheck,
    NewJournalEntry,
    NewMessage,
    Platform,
    PlatformKey,
    StoredAgent,
    is_valid_id,
    is_valid_journal_id,
    journal_changes,
    journal_state_after,
    truncate_ms,
    utc_now,
)

logger = logging.getLogger(__name__)

Document = dict[str, Any]

_CONVERSATIONS = "conversations"
_MESSAGES = "messages"
_EVENTS = "processed_events"
_GOAL_CHECKS = "goal_checks"
_CLAIMS = "claims"
_BINDINGS = "channel_bindings"
_AGENTS = "agents"
_API_KEYS = "api_keys"
_JOURNAL = "journal"

_UPSERT_ATTEMPTS = 5
_PLACE_BATCH = 500
"""Goal checks read per lookup of their conversations' places (an API key's limits)."""
_SEARCH_SEPARATOR = "\x1f"

_SECRET_OPTIONS = frozenset({"tlscertificatekeyfilepassword"})
_PUBLIC_AUTH_PROPERTIES = frozenset(
    {
        "ALLOWED_HOSTS",
        "CANONICALIZE_HOST_NAME",
        "ENVIRONMENT",
        "SERVICE_HOST",
        "SERVICE_NAME",
        "SERVICE_REALM",
        "TOKEN_RESOURCE",
    }
)

_SORTS: dict[ConversationOrder, list[tuple[str, int]]] = {
    "updated_desc": [("updated_at", DESCENDING), ("_id", DESCENDING)],
    "updated_asc": [("updated_at", ASCENDING), ("_id", ASCENDING)],
    "created_desc": [("created_at", DESCENDING), ("_id", DESCENDING)],
    "created_asc": [("created_at", ASCENDING), ("_id", ASCENDING)],
}

_INDEXES: dict[str, list[IndexModel]] = {
    _CONVERSATIONS: [
        IndexModel([("key_id", ASCENDING)], unique=True, sparse=True),
        # Listing pages read an index in the page's order (either direction): (filter, sort
        # time, _id) for every filter and order the console offers.
        *(
            IndexModel([*filter_field, (time_field, ASCENDING), ("_id", ASCENDING)])
            for filter_field in (
                [],
                [("agent_id", ASCENDING)],
                [("key.platform", ASCENDING)],
                [("key.workspace", ASCENDING)],
            )
            for time_field in ("updated_at", "created_at")
        ),
        *(
            IndexModel([("tags", ASCENDING), (time_field, ASCENDING), ("_id", ASCENDING)])
            for time_field in ("updated_at", "created_at")
        ),
        IndexModel(
            [("agent_id", ASCENDING), ("goal_pending", ASCENDING), ("last_message_at", ASCENDING)]
        ),
    ],
    _MESSAGES: [IndexModel([("conversation_id", ASCENDING), ("seq", ASCENDING)], unique=True)],
    _EVENTS: [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)],
    _GOAL_CHECKS: [
        IndexModel([("conversation_id", ASCENDING), ("checked_at", DESCENDING), ("n", DESCENDING)]),
        IndexModel([("agent_id", ASCENDING), ("posted_at", ASCENDING)]),
        IndexModel([("agent_id", ASCENDING), ("checked_at", ASCENDING), ("n", ASCENDING)]),
    ],
    _CLAIMS: [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)],
    _BINDINGS: [IndexModel([("agent_id", ASCENDING), ("_id", ASCENDING)])],
    # Agents are keyed by ``_id`` (the agent id), which is unique already.
    _API_KEYS: [
        IndexModel([("key_hash", ASCENDING)], unique=True),
        # Only unrevoked keys carry ``active_name`` (revoking unsets it), so a name is unique
        # among them and free again once its key is revoked.
        IndexModel([("active_name", ASCENDING)], unique=True, sparse=True),
        IndexModel([("created_at", ASCENDING), ("_id", ASCENDING)]),
    ],
    # Entries are keyed by ``_id`` (the platform's message id); ``place`` is the key's
    # canonical string and ``pending`` is true while the state is received or answered.
    _JOURNAL: [
        IndexModel(
            [
                ("place", ASCENDING),
                ("pending", ASCENDING),
                ("position", ASCENDING),
                ("created_at", ASCENDING),
                ("_id", ASCENDING),
            ]
        ),
        IndexModel([("pending", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)]),
        IndexModel([("pending", ASCENDING), ("updated_at", ASCENDING)]),
    ],
}


def _binding_id(platform: Platform, workspace: str, channel: str) -> str:
    return PlatformKey(platform=platform, workspace=workspace, channel=channel).canonical


def redact_uri(uri: str) -> str:
    """The connection string with its password and secret options replaced by ``***``
    (``authMechanismProperties`` keeps its public properties)."""
    redacted = redact_url(uri, secret_params=_SECRET_OPTIONS)
    return re.sub(
        r"(?i)(?<=[?&;])(authMechanismProperties=)([^&;]*)",
        lambda m: m.group(1) + _redact_auth_properties(m.group(2)),
        redacted,
    )


def _redact_auth_properties(value: str) -> str:
    properties = []
    for item in unquote(value).split(","):
        name, colon, _secret = item.partition(":")
        secret = colon and name.upper() not in _PUBLIC_AUTH_PROPERTIES
        properties.append(f"{name}:***" if secret else item)
    return ",".join(properties)


def _search_text(title: str, summary: str, source: str | None) -> str:
    return _SEARCH_SEPARATOR.join((title, summary, source or "")).lower()


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else _utc(moment)


def _dump_json(value: Mapping[str, JsonValue] | None) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _load_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _conversation(doc: Document) -> Conversation:
    goal = doc.get("goal")
    return Conversation(
        id=doc["_id"],
        agent_id=doc["agent_id"],
        key=PlatformKey(**doc["key"]),
        created_at=_utc(doc["created_at"]),
        updated_at=_utc(doc["updated_at"]),
        closed_at=_utc_or_none(doc.get("closed_at")),
        title=doc.get("title", ""),
        data=_load_json(doc.get("data")) or {},
        source=doc.get("source"),
        tags=tuple(doc.get("tags", ())),
        summary=doc.get("summary", ""),
        summary_seq=doc.get("summary_seq", 0),
        message_count=doc.get("message_count", 0),
        last_message_at=_utc_or_none(doc.get("last_message_at")),
        goal=None if goal is None else _goal_state(goal),
        goal_pending=doc.get("goal_pending", False),
    )


def _goal_state(doc: Document) -> GoalState:
    return GoalState(
        reached=doc["reached"],
        checked_at=_utc(doc["checked_at"]),
        covered_seq=doc["covered_seq"],
        summary=doc.get("summary", ""),
        missing=tuple(doc.get("missing", ())),
    )


def _message(doc: Document) -> Message:
    return Message(
        id=doc["_id"],
        conversation_id=doc["conversation_id"],
        seq=doc["seq"],
        role=doc["role"],
        author_id=doc.get("author_id", ""),
        author_name=doc.get("author_name", ""),
        text=doc["text"],
        data=_load_json(doc.get("data")),
        platform_message_id=doc.get("platform_message_id"),
        created_at=_utc(doc["created_at"]),
        token_count=doc.get("token_count", 0),
        error=doc.get("error"),
    )


def _stored_agent(doc: Document) -> StoredAgent:
    return StoredAgent(
        id=doc["_id"],
        definition=_load_json(doc["definition"]),
        created_at=_utc(doc["created_at"]),
        updated_at=_utc(doc["updated_at"]),
    )


def _api_key(doc: Document) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=doc["_id"],
        name=doc["name"],
        scope=doc["scope"],
        agents=tuple(doc.get("agents", ())),
        platforms=tuple(doc.get("platforms", ())),
        workspaces=tuple(doc.get("workspaces", ())),
        key_hash=doc["key_hash"],
        hint=doc.get("hint", ""),
        created_at=_utc(doc["created_at"]),
        last_used_at=_utc_or_none(doc.get("last_used_at")),
        revoked_at=_utc_or_none(doc.get("revoked_at")),
    )


def _place(canonical: str) -> PlatformKey:
    """The key whose ``canonical`` this is (no part may hold the separator)."""
    platform, workspace, channel, thread = canonical.split("\x1f")
    return PlatformKey(platform=platform, workspace=workspace, channel=channel, thread=thread)


def _journal_entry(doc: Document) -> JournalEntry:
    return JournalEntry(
        id=doc["_id"],
        key=_place(doc["place"]),
        position=doc["position"],
        message=_load_json(doc["message"]),
        state=doc["state"],
        created_at=_utc(doc["created_at"]),
        updated_at=_utc(doc["updated_at"]),
        attempts=doc.get("attempts", 0),
        conversation_id=doc.get("conversation_id"),
        user_message_id=doc.get("user_message_id"),
        reply_message_id=doc.get("reply_message_id"),
        shown_ref=doc.get("shown_ref"),
        error=doc.get("error"),
    )


def _journal_moves_to(state: JournalState) -> list[str]:
    """The states from which an entry moves to ``state`` (``memory.base.journal_state_after``)."""
    return [now for now in JOURNAL_RANK if journal_state_after(now, state) == state != now]


def _journal_state(state: JournalState) -> Document:
    return {"state": state, "pending": state in JOURNAL_UNFINISHED}


def _binding(doc: Document) -> ChannelBinding:
    """The binding whose ``_id`` is its canonical key (no part may hold the separator)."""
    platform, workspace, channel, _thread = str(doc["_id"]).split("\x1f")
    return ChannelBinding(
        platform=platform,
        workspace=workspace,
        channel=channel,
        agent_id=doc["agent_id"],
    )


def _text(value: str) -> str:
    """``value`` for a plain equality match: a string, never an operator document."""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, not {type(value).__name__}")
    return value


def _ceil_ms(moment: datetime) -> datetime:
    """The first whole millisecond at or after ``moment``: bounds for ``$gte`` comparisons."""
    truncated = truncate_ms(moment)
    return truncated + timedelta(milliseconds=1) if moment.microsecond % 1000 else truncated


def _goal_check(doc: Document) -> GoalCheck:
    return GoalCheck(
        id=doc["_id"],
        conversation_id=doc["conversation_id"],
        agent_id=doc["agent_id"],
        checked_at=_utc(doc["checked_at"]),
        reached=doc["reached"],
        summary=doc.get("summary", ""),
        missing=tuple(doc.get("missing", ())),
        covered_seq=doc["covered_seq"],
        error=doc.get("error"),
        posted_at=_utc_or_none(doc.get("posted_at")),
    )


class MongoStore:
    """A :class:`~memory.base.ConversationStore` in one MongoDB database."""

    def __init__(
        self,
        *,
        uri: str,
        database: str,
        clock: Clock = utc_now,
        server_selection_timeout_ms: int = 5000,
    ) -> None:
        self._uri = uri
        self._redacted_uri = redact_uri(uri)
        self._database_name = database
        self._clock = clock
        self._server_selection_timeout_ms = server_selection_timeout_ms
        self._client: AsyncMongoClient[Document] | None = None
        self._db: AsyncDatabase[Document] | None = None
        self._open_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"MongoStore(uri={self._redacted_uri!r}, database={self._database_name!r})"

    @property
    def description(self) -> str:
        return f"MongoDB ({self._redacted_uri}, database {self._database_name})"

    # lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        async with self._open_lock:
            if self._client is not None:
                return
            try:
                client: AsyncMongoClient[Document] = AsyncMongoClient(
                    self._uri,
                    tz_aware=True,
                    tzinfo=UTC,
                    appname="parley",
                    serverSelectionTimeoutMS=self._server_selection_timeout_ms,
                )
            except (ConfigurationError, ValueError, TypeError) as exc:
                raise StoreError(self._invalid_settings_message(exc)) from None
            try:
                with self._errors("connect"):
                    db = client[self._database_name]
                    await db.command("ping")
                    for name, indexes in _INDEXES.items():
                        await db[name].create_indexes(indexes)
            except BaseException:
                await client.close()
                raise
            self._client, self._db = client, db
            logger.info("connected to %s", self.description)

    async def close(self) -> None:
        async with self._open_lock:
            client, self._client, self._db = self._client, None, None
            if client is not None:
                await client.close()

    async def ping(self) -> bool:
        if self._db is None:
            return False
        try:
            await self._db.command("ping")
        except PyMongoError:
            return False
        return True

    # conversations -------------------------------------------------------------------------

    async def get_or_create_conversation(
        self, *, key: PlatformKey, agent_id: str, title: str = ""
    ) -> tuple[Conversation, bool]:
        conversations = self._collection(_CONVERSATIONS)
        with self._errors("get or create a conversation"):
            for attempt in range(1, _UPSERT_ATTEMPTS + 1):
                now = self._now()
                new_id = uuid4().hex
                try:
                    doc = await conversations.find_one_and_update(
                        {"key_id": key.canonical},
                        {"$setOnInsert": self._new_conversation(new_id, key, agent_id, title, now)},
                        upsert=True,
                        return_document=ReturnDocument.AFTER,
                    )
                except DuplicateKeyError:
                    # Two upserts raced to insert; the loser finds the winner's document next.
                    logger.debug("conversation upsert raced (attempt %d)", attempt)
                    continue
                if doc is not None:
                    return _conversation(doc), doc["_id"] == new_id
        raise StoreError("could not get or create the conversation: too many concurrent writers")

    @staticmethod
    def _new_conversation(
        conversation_id: str, key: PlatformKey, agent_id: str, title: str, now: datetime
    ) -> Document:
        return {
            "_id": conversation_id,
            "key": key.model_dump(),
            "agent_id": agent_id,
            "created_at": now,
            "updated_at": now,
            "closed_at": None,
            "title": title,
            "data": _dump_json({}),
            "source": None,
            "tags": [],
            "summary": "",
            "summary_seq": 0,
            "message_count": 0,
            "last_message_at": None,
            "goal": None,
            "goal_pending": False,
            "goal_check_count": 0,
            "search": _search_text(title, "", None),
        }

    async def find_conversation(self, *, key: PlatformKey) -> Conversation | None:
        with self._errors("find a conversation"):
            doc = await self._collection(_CONVERSATIONS).find_one({"key_id": key.canonical})
        return None if doc is None else _conversation(doc)

    async def get_conversation(self, *, conversation_id: str) -> Conversation | None:
        if not is_valid_id(conversation_id):
            return None
        with self._errors("read a conversation"):
            doc = await self._collection(_CONVERSATIONS).find_one({"_id": conversation_id})
        return None if doc is None else _conversation(doc)

    async def close_conversation(self, *, conversation_id: str) -> bool:
        if not is_valid_id(conversation_id):
            return False
        now = self._now()
        with self._errors("close a conversation"):
            result = await self._collection(_CONVERSATIONS).update_one(
                {"_id": conversation_id, "closed_at": None},
                {"$set": {"closed_at": now, "updated_at": now}, "$unset": {"key_id": ""}},
            )
        return result.matched_count == 1

    async def update_conversation(
        self,
        *,
        conversation_id: str,
        data: dict[str, JsonValue] = UNSET,
        source: str | None = UNSET,
        tags: Sequence[str] = UNSET,
        agent_id: str = UNSET,
        title: str = UNSET,
    ) -> Conversation | None:
        if not is_valid_id(conversation_id):
            return None
        changes: Document = {"updated_at": self._now()}
        if data is not UNSET:
            changes["data"] = _dump_json(data)
        if source is not UNSET:
            changes["source"] = source
        if tags is not UNSET:
            changes["tags"] = list(tags)
        if agent_id is not UNSET:
            changes["agent_id"] = agent_id
        if title is not UNSET:
            changes["title"] = title
        with self._errors("update a conversation"):
            doc = await self._collection(_CONVERSATIONS).find_one_and_update(
                {"_id": conversation_id},
                {"$set": changes},
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:
                return None
            await self._sync_search(doc)
        return _conversation(doc)

    async def set_summary(self, *, conversation_id: str, summary: str, summary_seq: int) -> bool:
        if not is_valid_id(conversation_id):
            return False
        with self._errors("store a summary"):
            doc = await self._collection(_CONVERSATIONS).find_one_and_update(
                {"_id": conversation_id, "summary_seq": {"$lte": summary_seq}},
                {"$set": {"summary": summary, "summary_seq": summary_seq}},
                projection={"title": True, "summary": True, "source": True, "search": True},
                return_document=ReturnDocument.AFTER,
            )
            if doc is None:
                return False
            await self._sync_search(doc)
        return True

    async def _sync_search(self, doc: Document) -> None:
        """Bring ``search`` in line with the title, summary and source just written.

        Conditional on those three being unchanged, so a racing writer's newer values are never
        overwritten by stale text: whichever writer changed them last also sets ``search`` last.
        """
        title, summary, source = doc.get("title", ""), doc.get("summary", ""), doc.get("source")
        search = _search_text(title, summary, source)
        if doc.get("search") == search:
            return
        await self._collection(_CONVERSATIONS).update_one(
            {"_id": doc["_id"], "title": title, "summary": summary, "source": source},
            {"$set": {"search": search}},
        )
        doc["search"] = search

    async def list_conversations(self, query: ConversationQuery) -> ConversationPage:
        conditions: Document = {}
        for field, value, limits in (
            ("agent_id", query.agent_id, query.agent_ids),
            ("key.platform", query.platform, query.platforms),
            ("key.workspace", query.workspace, query.workspaces),
        ):
            if value is not None and limits and value not in limits:
                conditions[field] = {"$in": []}
            elif value is not None:
                conditions[field] = _text(value)
            elif limits:
                conditions[field] = {"$in": [_text(limit) for limit in limits]}
        if query.tag is not None:
            conditions["tags"] = query.tag
        if query.text:
            conditions["search"] = {"$regex": re.escape(query.text.lower())}
        if not query.include_closed:
            conditions["closed_at"] = None
        conversations = self._collection(_CONVERSATIONS)
        with self._errors("list conversations"):
            cursor = conversations.find(
                conditions, sort=_SORTS[query.order], skip=query.offset, limit=query.limit
            )
            items = tuple([_conversation(doc) async for doc in cursor])
            total = await conversations.count_documents(conditions)
        return ConversationPage(items=items, total=total)

    async def delete_conversation(self, *, conversation_id: str) -> bool:
        if not is_valid_id(conversation_id):
            return False
        with self._errors("delete a conversation"):
            result = await self._collection(_CONVERSATIONS).delete_one({"_id": conversation_id})
            await self._collection(_MESSAGES).delete_many({"conversation_id": conversation_id})
            await self._collection(_GOAL_CHECKS).delete_many({"conversation_id": conversation_id})
        return result.deleted_count == 1

    # messages ------------------------------------------------------------------------------

    async def append_message(self, *, conversation_id: str, message: NewMessage) -> Message:
        if not is_valid_id(conversation_id):
            raise NotFound(f"conversation {conversation_id!r} not found")
        now = self._now()
        with self._errors("append a message"):
            conversation = await self._collection(_CONVERSATIONS).find_one_and_update(
                {"_id": conversation_id},
                {
                    "$inc": {"message_count": 1},
                    "$set": {"updated_at": now, "last_message_at": now, "goal_pending": True},
                },
                projection={"message_count": True},
                return_document=ReturnDocument.AFTER,
            )
            if conversation is None:
                raise NotFound(f"conversation {conversation_id} not found")
            doc: Document = {
                "_id": uuid4().hex,
                "conversation_id": conversation_id,
                "seq": conversation["message_count"],
                "role": message.role,
                "author_id": message.author_id,
                "author_name": message.author_name,
                "text": message.text,
                "data": _dump_json(message.data),
                "platform_message_id": message.platform_message_id,
                "created_at": now,
                "token_count": message.token_count,
                "error": message.error,
            }
            await self._collection(_MESSAGES).insert_one(doc)
        return _message(doc)

    async def list_messages(
        self,
        *,
        conversation_id: str,
        after_seq: int | None = None,
        before_seq: int | None = None,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[Message]:
        if not is_valid_id(conversation_id) or limit < 1:
            return []
        conditions: Document = {"conversation_id": conversation_id}
        seq: Document = {}
        if after_seq is not None:
            seq["$gt"] = after_seq
        if before_seq is not None:
            seq["$lt"] = before_seq
        if seq:
            conditions["seq"] = seq
        direction = DESCENDING if newest_first else ASCENDING
        with self._errors("list messages"):
            cursor = self._collection(_MESSAGES).find(
                conditions, sort=[("seq", direction)], limit=limit
            )
            return [_message(doc) async for doc in cursor]

    # processed platform events -------------------------------------------------------------

    async def mark_event_processed(self, *, event_id: str, ttl_seconds: int = 86_400) -> bool:
        now = self._now()
        expires_at = truncate_ms(now + timedelta(seconds=ttl_seconds))
        return await self._take(
            _EVENTS,
            {"_id": event_id, "expires_at": {"$lte": now}},
            {"expires_at": expires_at},
            action="record an event",
        )

    # goal checks ---------------------------------------------------------------------------

    async def add_goal_check(self, check: NewGoalCheck) -> GoalCheck:
        """Store the check; raises NotFound if its conversation does not exist.

        The conversation's ``goal_check_count`` numbers the checks, so checks that share a
        ``checked_at`` still list newest first, and a failed check leaves the goal state alone.
        """
        if not is_valid_id(check.conversation_id):
            raise NotFound(f"conversation {check.conversation_id!r} not found")
        now = self._now()
        update: Document = {"$inc": {"goal_check_count": 1}}
        if check.error is None:
            goal = {
                "reached": check.reached,
                "checked_at": now,
                "covered_seq": check.covered_seq,
                "summary": check.summary,
                "missing": list(check.missing),
            }
            update["$set"] = {"goal": goal}
        conversations = self._collection(_CONVERSATIONS)
        with self._errors("store a goal check"):
            conversation = await conversations.find_one_and_update(
                {"_id": check.conversation_id},
                update,
                projection={"goal_check_count": True},
                return_document=ReturnDocument.AFTER,
            )
            if conversation is None:
                raise NotFound(f"conversation {check.conversation_id} not found")
            if check.error is None:
                await conversations.update_one(
                    {"_id": check.conversation_id, "message_count": {"$lte": check.covered_seq}},
                    {"$set": {"goal_pending": False}},
                )
            doc: Document = {
                "_id": uuid4().hex,
                "n": conversation["goal_check_count"],
                "conversation_id": check.conversation_id,
                "agent_id": check.agent_id,
                "checked_at": now,
                "reached": check.reached,
                "summary": check.summary,
                "missing": list(check.missing),
                "covered_seq": check.covered_seq,
                "error": check.error,
                "posted_at": None,
            }
            await self._collection(_GOAL_CHECKS).insert_one(doc)
        return _goal_check(doc)

    async def list_goal_checks(self, *, conversation_id: str, limit: int = 50) -> list[GoalCheck]:
        if not is_valid_id(conversation_id) or limit < 1:
            return []
        with self._errors("list goal checks"):
            cursor = self._collection(_GOAL_CHECKS).find(
                {"conversation_id": conversation_id},
                sort=[("checked_at", DESCENDING), ("n", DESCENDING)],
                limit=limit,
            )
            return [_goal_check(doc) async for doc in cursor]

    async def mark_goal_check_posted(self, *, check_id: str) -> bool:
        if not is_valid_id(check_id):
            return False
        with self._errors("mark a goal check posted"):
            result = await self._collection(_GOAL_CHECKS).update_one(
                {"_id": check_id}, {"$set": {"posted_at": self._now()}}
            )
        return result.matched_count == 1

    async def goal_checks_to_post(self, *, agent_id: str, limit: int = 100) -> list[GoalCheck]:
        if limit < 1:
            return []
        with self._errors("list unposted goal checks"):
            cursor = self._collection(_GOAL_CHECKS).find(
                {"agent_id": agent_id, "posted_at": None, "error": None},
                sort=[("checked_at", ASCENDING), ("n", ASCENDING)],
                limit=limit,
            )
            return [_goal_check(doc) async for doc in cursor]

    async def conversations_due_for_goal_check(
        self, *, agent_id: str, limit: int = 100
    ) -> list[Conversation]:
        if limit < 1:
            return []
        with self._errors("list conversations due for a goal check"):
            cursor = self._collection(_CONVERSATIONS).find(
                {"agent_id": agent_id, "goal_pending": True, "closed_at": None},
                sort=[("last_message_at", ASCENDING), ("_id", ASCENDING)],
                limit=limit,
            )
            return [_conversation(doc) async for doc in cursor]

    async def list_agent_goal_checks(
        self,
        *,
        agent_id: str,
        since: datetime,
        limit: int = 5000,
        platforms: Sequence[Platform] = (),
        workspaces: Sequence[str] = (),
    ) -> list[GoalCheck]:
        """With place limits, the checks are read in batches and each batch's conversations
        looked up by ``_id`` in one query, until ``limit`` checks are in those places."""
        if limit < 1:
            return []
        places: Document = {}
        if platforms:
            places["key.platform"] = {"$in": [_text(platform) for platform in platforms]}
        if workspaces:
            places["key.workspace"] = {"$in": [_text(workspace) for workspace in workspaces]}
        with self._errors("list an agent's goal checks"):
            cursor = self._collection(_GOAL_CHECKS).find(
                {"agent_id": _text(agent_id), "checked_at": {"$gte": _ceil_ms(since)}},
                sort=[("checked_at", ASCENDING), ("n", ASCENDING)],
                limit=0 if places else limit,
                batch_size=_PLACE_BATCH if places else 0,
            )
            if not places:
                return [_goal_check(doc) async for doc in cursor]
            found: list[GoalCheck] = []
            batch: list[Document] = []
            async for doc in cursor:
                batch.append(doc)
                if len(batch) == _PLACE_BATCH:
                    found += await self._checks_in_places(batch, places)
                    batch = []
                    if len(found) >= limit:
                        break
            if batch and len(found) < limit:
                found += await self._checks_in_places(batch, places)
            await cursor.close()
            return found[:limit]

    async def _checks_in_places(self, batch: list[Document], places: Document) -> list[GoalCheck]:
        ids = list({doc["conversation_id"] for doc in batch})
        cursor = self._collection(_CONVERSATIONS).find(
            {"_id": {"$in": ids}, **places}, projection={"_id": True}
        )
        allowed = {doc["_id"] async for doc in cursor}
        return [_goal_check(doc) for doc in batch if doc["conversation_id"] in allowed]

    # stored agents ---------------------------------------------------------------------------

    async def create_agent(self, *, agent_id: str, definition: dict[str, JsonValue]) -> StoredAgent:
        now = self._now()
        doc: Document = {
            "_id": _text(agent_id),
            "definition": _dump_json(definition),
            "created_at": now,
            "updated_at": now,
        }
        with self._errors("create an agent"):
            try:
                await self._collection(_AGENTS).insert_one(doc)
            except DuplicateKeyError:
                raise Conflict(f"agent {agent_id!r} already exists") from None
        return _stored_agent(doc)

    async def replace_agent(
        self, *, agent_id: str, definition: dict[str, JsonValue]
    ) -> StoredAgent | None:
        with self._errors("replace an agent"):
            doc = await self._collection(_AGENTS).find_one_and_update(
                {"_id": _text(agent_id)},
                {"$set": {"definition": _dump_json(definition), "updated_at": self._now()}},
                return_document=ReturnDocument.AFTER,
            )
        return None if doc is None else _stored_agent(doc)

    async def get_agent(self, *, agent_id: str) -> StoredAgent | None:
        with self._errors("read an agent"):
            doc = await self._collection(_AGENTS).find_one({"_id": _text(agent_id)})
        return None if doc is None else _stored_agent(doc)

    async def list_agents(self, *, limit: int = 1000) -> list[StoredAgent]:
        if limit < 1:
            return []
        with self._errors("list agents"):
            cursor = self._collection(_AGENTS).find({}, sort=[("_id", ASCENDING)], limit=limit)
            return [_stored_agent(doc) async for doc in cursor]

    async def delete_agent(self, *, agent_id: str) -> bool:
        with self._errors("delete an agent"):
            result = await self._collection(_AGENTS).delete_one({"_id": _text(agent_id)})
        return result.deleted_count == 1

    # API keys --------------------------------------------------------------------------------

    async def add_api_key(self, key: NewApiKey) -> ApiKeyRecord:
        """Insert unless the hash or an unrevoked name is taken (the unique indexes decide)."""
        doc: Document = {
            "_id": uuid4().hex,
            "name": key.name,
            "active_name": key.name,
            "scope": key.scope,
            "agents": list(key.agents),
            "platforms": list(key.platforms),
            "workspaces": list(key.workspaces),
            "key_hash": key.key_hash,
            "hint": key.hint,
            "created_at": self._now(),
            "last_used_at": None,
            "revoked_at": None,
        }
        with self._errors("add an API key"):
            try:
                await self._collection(_API_KEYS).insert_one(doc)
            except DuplicateKeyError:
                raise Conflict(
                    f"an API key named {key.name!r} (or with that hash) already exists"
                ) from None
        return _api_key(doc)

    async def find_api_key(self, *, key_hash: str) -> ApiKeyRecord | None:
        with self._errors("find an API key"):
            doc = await self._collection(_API_KEYS).find_one({"key_hash": _text(key_hash)})
        return None if doc is None else _api_key(doc)

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        with self._errors("list API keys"):
            cursor = self._collection(_API_KEYS).find(
                {}, sort=[("created_at", ASCENDING), ("_id", ASCENDING)]
            )
            return [_api_key(doc) async for doc in cursor]

    async def revoke_api_key(self, *, key_id: str) -> bool:
        if not is_valid_id(key_id):
            return False
        with self._errors("revoke an API key"):
            result = await self._collection(_API_KEYS).update_one(
                {"_id": key_id, "revoked_at": None},
                {"$set": {"revoked_at": self._now()}, "$unset": {"active_name": ""}},
            )
        return result.matched_count == 1

    async def touch_api_key(self, *, key_id: str) -> None:
        if not is_valid_id(key_id):
            return
        with self._errors("record an API key's use"):
            await self._collection(_API_KEYS).update_one(
                {"_id": key_id}, {"$set": {"last_used_at": self._now()}}
            )

    # channel bindings ------------------------------------------------------------------------

    async def bind_channel(
        self, *, platform: Platform, workspace: str, channel: str, agent_id: str
    ) -> None:
        with self._errors("bind a channel"):
            await self._collection(_BINDINGS).update_one(
                {"_id": _binding_id(platform, workspace, channel)},
                {"$set": {"agent_id": agent_id, "updated_at": self._now()}},
                upsert=True,
            )

    async def channel_agent(
        self, *, platform: Platform, workspace: str, channel: str
    ) -> str | None:
        with self._errors("read a channel binding"):
            doc = await self._collection(_BINDINGS).find_one(
                {"_id": _binding_id(platform, workspace, channel)}
            )
        return None if doc is None else str(doc["agent_id"])

    async def list_channel_bindings(
        self, *, agent_id: str | None = None, limit: int = 1000
    ) -> list[ChannelBinding]:
        if limit < 1:
            return []
        conditions: Document = {} if agent_id is None else {"agent_id": _text(agent_id)}
        with self._errors("list channel bindings"):
            cursor = self._collection(_BINDINGS).find(
                conditions, sort=[("_id", ASCENDING)], limit=limit
            )
            return [_binding(doc) async for doc in cursor]

    # claims --------------------------------------------------------------------------------

    async def claim(self, *, key: str, owner: str, ttl_seconds: float) -> bool:
        now = self._now()
        expires_at = truncate_ms(now + timedelta(seconds=ttl_seconds))
        return await self._take(
            _CLAIMS,
            {"_id": key, "$or": [{"owner": owner}, {"expires_at": {"$lte": now}}]},
            {"owner": owner, "expires_at": expires_at},
            action="claim a key",
        )

    async def release_claim(self, *, key: str, owner: str) -> bool:
        with self._errors("release a claim"):
            result = await self._collection(_CLAIMS).delete_one({"_id": key, "owner": owner})
        return result.deleted_count == 1

    async def _take(
        self, collection: str, conditions: Document, fields: Document, *, action: str
    ) -> bool:
        """Upsert the record ``conditions`` selects by ``_id``; False if another one holds it.

        When a record with that ``_id`` exists but does not match, the upsert tries to insert
        a second one and the ``_id`` index refuses it: the check and the write are one atomic
        operation, so of any number of racing callers exactly one wins.
        """
        with self._errors(action):
            try:
                result = await self._collection(collection).update_one(
                    conditions, {"$set": fields}, upsert=True
                )
            except DuplicateKeyError:
                return False
        return result.upserted_id is not None or result.matched_count == 1

    # turn journal --------------------------------------------------------------------------

    async def journal_add(self, entry: NewJournalEntry) -> tuple[JournalEntry, bool]:
        """Insert by ``_id``; a duplicate-key error means the entry exists: read it.

        Should it vanish in between (pruned), the insert is tried again.
        """
        journal = self._collection(_JOURNAL)
        with self._errors("add a journal entry"):
            for attempt in range(1, _UPSERT_ATTEMPTS + 1):
                now = self._now()
                doc: Document = {
                    "_id": entry.id,
                    "place": entry.key.canonical,
                    "position": entry.position,
                    "message": _dump_json(entry.message),
                    "state": "received",
                    "pending": True,
                    "created_at": now,
                    "updated_at": now,
                    "attempts": 0,
                    "conversation_id": None,
                    "user_message_id": None,
                    "reply_message_id": None,
                    "shown_ref": None,
                    "error": None,
                }
                try:
                    await journal.insert_one(doc)
                except DuplicateKeyError:
                    existing = await journal.find_one({"_id": entry.id})
                    if existing is not None:
                        return _journal_entry(existing), False
                    logger.debug("journal entry vanished after a duplicate (attempt %d)", attempt)
                    continue
                created = JournalEntry(
                    **entry.model_dump(), state="received", created_at=now, updated_at=now
                )
                return created, True
        raise StoreError("could not add the journal entry: too many concurrent writers")

    async def journal_get(self, *, entry_id: str) -> JournalEntry | None:
        if not is_valid_journal_id(entry_id):
            return None
        with self._errors("read a journal entry"):
            doc = await self._collection(_JOURNAL).find_one({"_id": entry_id})
        return None if doc is None else _journal_entry(doc)

    async def journal_next(self, *, key: PlatformKey) -> JournalEntry | None:
        with self._errors("read the next journal entry"):
            doc = await self._collection(_JOURNAL).find_one(
                {"place": key.canonical, "pending": True},
                sort=[("position", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)],
            )
        return None if doc is None else _journal_entry(doc)

    async def journal_take(self, *, key: PlatformKey) -> JournalEntry | None:
        with self._errors("take up the next journal entry"):
            doc = await self._collection(_JOURNAL).find_one_and_update(
                {"place": key.canonical, "pending": True},
                {"$inc": {"attempts": 1}, "$set": {"updated_at": self._now()}},
                sort=[("position", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)],
                return_document=ReturnDocument.AFTER,
            )
        return None if doc is None else _journal_entry(doc)

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
        """A plain ``$set`` (its values are stored as they are, never read as expressions);
        a new state is part of it only when the state may move there (the filter says from
        where), else a second write sets the other fields alone."""
        changes = journal_changes(
            state=state,
            conversation_id=conversation_id,
            user_message_id=user_message_id,
            reply_message_id=reply_message_id,
            shown_ref=shown_ref,
            error=error,
        )
        if not is_valid_journal_id(entry_id):
            return None
        fields: Document = {name: value for name, value in changes.items() if name != "state"}
        fields["updated_at"] = self._now()
        update: Document = {"$set": fields}
        if add_attempt:
            update["$inc"] = {"attempts": 1}
        journal = self._collection(_JOURNAL)
        with self._errors("update a journal entry"):
            if state is not UNSET:
                doc = await journal.find_one_and_update(
                    {"_id": entry_id, "state": {"$in": _journal_moves_to(state)}},
                    {**update, "$set": {**fields, **_journal_state(state)}},
                    return_document=ReturnDocument.AFTER,
                )
                if doc is not None:
                    return _journal_entry(doc)
            doc = await journal.find_one_and_update(
                {"_id": entry_id}, update, return_document=ReturnDocument.AFTER
            )
        return None if doc is None else _journal_entry(doc)

    async def journal_pending(
        self, *, limit: int = 100, updated_before: datetime | None = None
    ) -> list[PlatformKey]:
        """Unfinished entries through the (pending, created_at, _id) index, the first of each
        place kept."""
        if limit < 1:
            return []
        pipeline: list[Document] = [
            {"$match": {"pending": True}},
            {"$sort": {"created_at": ASCENDING, "_id": ASCENDING}},
            {
                "$group": {
                    "_id": "$place",
                    "created_at": {"$first": "$created_at"},
                    "entry_id": {"$first": "$_id"},
                    "updated_at": {"$first": "$updated_at"},
                }
            },
        ]
        if updated_before is not None:
            pipeline.append({"$match": {"updated_at": {"$lt": _ceil_ms(updated_before)}}})
        pipeline += [
            {"$sort": {"created_at": ASCENDING, "entry_id": ASCENDING}},
            {"$limit": limit},
        ]
        with self._errors("list places with unfinished turns"):
            cursor = await self._collection(_JOURNAL).aggregate(pipeline)
            return [_place(doc["_id"]) async for doc in cursor]

    async def journal_backlog(self) -> int:
        with self._errors("count unfinished turns"):
            return await self._collection(_JOURNAL).count_documents({"pending": True})

    async def journal_prune(self, *, finished_before: datetime) -> int:
        with self._errors("prune the journal"):
            result = await self._collection(_JOURNAL).delete_many(
                {"pending": False, "updated_at": {"$lt": _ceil_ms(finished_before)}}
            )
        return result.deleted_count

    # plumbing ------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return truncate_ms(self._clock())

    def _collection(self, name: str) -> AsyncCollection[Document]:
        if self._db is None:
            raise StoreError("the MongoDB store is not open; call open() first")
        return self._db[name]

    def _invalid_settings_message(self, error: Exception) -> str:
        """Why the driver refused the URI, unless the URI holds secrets.

        The driver quotes pieces of a URI it cannot parse, and a malformed password is split in
        unpredictable places, so with credentials in the URI only the error type is kept.
        """
        message = f"invalid MongoDB URI or options ({self._redacted_uri})"
        if self._redacted_uri != self._uri:
            return f"{message}: {type(error).__name__}"
        return f"{message}: {error}"

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn driver errors into store errors whose messages hold no secrets."""
        try:
            yield
        except ConnectionFailure as exc:
            raise StoreUnavailable(
                f"could not {action}: MongoDB at {self._redacted_uri} is unreachable "
                f"({type(exc).__name__})"
            ) from exc
        except (PyMongoError, BSONError) as exc:
            code = getattr(exc, "code", None)
            detail = type(exc).__name__ if code is None else f"{type(exc).__name__} {code}"
            raise StoreError(f"could not {action}: MongoDB failed ({detail})") from exc
