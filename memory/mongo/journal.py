"""The turn journal in MongoDB: an insert on ``_id`` (the platform's message id) per entry,
one conditional update per state change."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from bot.errors import StoreError
from memory.base import (
    JournalEntry,
    JournalFinish,
    NewJournalEntry,
    PlatformKey,
)
from memory.mongo.connection import (
    UPSERT_ATTEMPTS,
    Document,
    dump_json,
    load_json,
    utc,
)
from memory.mongo.coordination import MongoCoordination
from memory.mongo.schema import (
    JOURNAL,
)
from memory.rules import (
    JOURNAL_RANK,
    JOURNAL_UNFINISHED,
    UNSET,
    JournalState,
    ceil_ms,
    is_valid_journal_id,
    journal_changes,
    journal_state_after,
    wants_rows,
)

logger = logging.getLogger(__name__)


_LOOKS = 3
"""Times one ``journal_advance`` looks again at a place that filled while it was released."""


class MongoJournal(MongoCoordination):
    """The turn journal (its drains hold claims)."""

    async def journal_add(self, entry: NewJournalEntry) -> tuple[JournalEntry, bool]:
        """Insert by ``_id``; a duplicate-key error means the entry exists: read it.

        Should it vanish in between (pruned), the insert is tried again.
        """
        journal = self._collection(JOURNAL)
        with self._errors("add a journal entry"):
            for attempt in range(1, UPSERT_ATTEMPTS + 1):
                now = self._now()
                doc: Document = {
                    "_id": entry.id,
                    "place": entry.key.canonical,
                    "position": entry.position,
                    "message": dump_json(entry.message),
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

    async def journal_add_and_take(
        self, entry: NewJournalEntry, *, lease: str, owner: str, ttl_seconds: float
    ) -> tuple[JournalEntry, bool, JournalEntry | None]:
        """The add alone: here the take would be writes of their own, and the acknowledgement
        waits for this call, so the drain takes the entry instead (None)."""
        added, created = await self.journal_add(entry)
        return added, created, None

    async def journal_get(self, *, entry_id: str) -> JournalEntry | None:
        if not is_valid_journal_id(entry_id):
            return None
        with self._errors("read a journal entry"):
            doc = await self._collection(JOURNAL).find_one({"_id": entry_id})
        return None if doc is None else _journal_entry(doc)

    async def journal_next(self, *, key: PlatformKey) -> JournalEntry | None:
        with self._errors("read the next journal entry"):
            doc = await self._collection(JOURNAL).find_one(
                {"place": key.canonical, "pending": True},
                sort=[("position", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)],
            )
        return None if doc is None else _journal_entry(doc)

    async def journal_advance(
        self,
        *,
        key: PlatformKey,
        lease: str,
        owner: str,
        ttl_seconds: float,
        finish: JournalFinish | None = None,
    ) -> JournalEntry | None:
        """Separate writes (finish, claim, take, release): after releasing an empty place it
        looks again, so an entry added meanwhile, whose adder found the claim still held, is
        taken here (or by its adder, whichever claims it first)."""
        if finish is not None and is_valid_journal_id(finish.entry_id):
            await self._journal_apply(finish.entry_id, finish.changes, finish.state)
        for _ in range(_LOOKS):
            if not await self.claim(key=lease, owner=owner, ttl_seconds=ttl_seconds):
                return None
            now = self._now()
            with self._errors("take up the next journal entry"):
                before = await self._collection(JOURNAL).find_one_and_update(
                    {"place": key.canonical, "pending": True},
                    {"$inc": {"attempts": 1}, "$set": {"updated_at": now}},
                    sort=[("position", ASCENDING), ("created_at", ASCENDING), ("_id", ASCENDING)],
                    return_document=ReturnDocument.BEFORE,
                )
            if before is not None:  # the entry as it was, moved as the update moved it
                taken = {**before, "attempts": before.get("attempts", 0) + 1, "updated_at": now}
                return _journal_entry(taken, prior_touch=utc(before["updated_at"]))
            await self.release_claim(key=lease, owner=owner)
            if await self.journal_next(key=key) is None:
                return None
        return None  # still arriving after every look: the sweeper comes back for it

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
        new_state: JournalState | None = None if state is UNSET else state
        return await self._journal_apply(entry_id, changes, new_state, add_attempt=add_attempt)

    async def _journal_apply(
        self,
        entry_id: str,
        changes: Mapping[str, str | None],
        state: JournalState | None,
        *,
        add_attempt: bool = False,
    ) -> JournalEntry | None:
        """A plain ``$set`` (its values are stored as they are, never read as expressions);
        a new state is part of it only when the state may move there (the filter says from
        where), else a second write sets the other fields alone."""
        fields: Document = {name: value for name, value in changes.items() if name != "state"}
        fields["updated_at"] = self._now()
        update: Document = {"$set": fields}
        if add_attempt:
            update["$inc"] = {"attempts": 1}
        journal = self._collection(JOURNAL)
        with self._errors("update a journal entry"):
            if state is not None:
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
        if not wants_rows(limit):
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
            pipeline.append({"$match": {"updated_at": {"$lt": ceil_ms(updated_before)}}})
        pipeline += [
            {"$sort": {"created_at": ASCENDING, "entry_id": ASCENDING}},
            {"$limit": limit},
        ]
        with self._errors("list places with unfinished turns"):
            cursor = await self._collection(JOURNAL).aggregate(pipeline)
            return [PlatformKey.from_canonical(doc["_id"]) async for doc in cursor]

    async def journal_backlog(self) -> int:
        with self._errors("count unfinished turns"):
            return await self._collection(JOURNAL).count_documents({"pending": True})

    async def journal_prune(self, *, finished_before: datetime) -> int:
        with self._errors("prune the journal"):
            result = await self._collection(JOURNAL).delete_many(
                {"pending": False, "updated_at": {"$lt": ceil_ms(finished_before)}}
            )
        return result.deleted_count


def _journal_entry(doc: Document, prior_touch: datetime | None = None) -> JournalEntry:
    return JournalEntry(
        id=doc["_id"],
        key=PlatformKey.from_canonical(doc["place"]),
        position=doc["position"],
        message=load_json(doc["message"]),
        state=doc["state"],
        created_at=utc(doc["created_at"]),
        updated_at=utc(doc["updated_at"]),
        attempts=doc.get("attempts", 0),
        conversation_id=doc.get("conversation_id"),
        user_message_id=doc.get("user_message_id"),
        reply_message_id=doc.get("reply_message_id"),
        shown_ref=doc.get("shown_ref"),
        error=doc.get("error"),
        prior_touch=prior_touch,
    )


def _journal_moves_to(state: JournalState) -> list[str]:
    """The states from which an entry moves to ``state`` (``memory.base.journal_state_after``)."""
    return [now for now in JOURNAL_RANK if journal_state_after(now, state) == state != now]


def _journal_state(state: JournalState) -> Document:
    return {"state": state, "pending": state in JOURNAL_UNFINISHED}
