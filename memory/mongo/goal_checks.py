"""Goal checks in MongoDB; the conversation's ``goal_check_count`` numbers them (``n``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from uuid import uuid4

from pymongo import ASCENDING, DESCENDING, ReturnDocument

from bot.errors import NotFound
from memory.base import (
    Conversation,
    GoalCheck,
    NewGoalCheck,
    Platform,
)
from memory.mongo.connection import (
    Document,
    MongoConnection,
    literal,
    utc,
    utc_or_none,
)
from memory.mongo.conversations import conversation_from_doc
from memory.mongo.schema import (
    CONVERSATIONS,
    GOAL_CHECKS,
)
from memory.rules import (
    ceil_ms,
    is_valid_id,
    wants_rows,
)

logger = logging.getLogger(__name__)

_PLACE_BATCH = 500
"""Goal checks read per lookup of their conversations' places (an API key's limits)."""


class MongoGoalChecks(MongoConnection):
    """Goal checks, and the conversations due for one."""

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
        conversations = self._collection(CONVERSATIONS)
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
            await self._collection(GOAL_CHECKS).insert_one(doc)
        return _goal_check(doc)

    async def list_goal_checks(self, *, conversation_id: str, limit: int = 50) -> list[GoalCheck]:
        if not wants_rows(limit) or not is_valid_id(conversation_id):
            return []
        with self._errors("list goal checks"):
            cursor = self._collection(GOAL_CHECKS).find(
                {"conversation_id": conversation_id},
                sort=[("checked_at", DESCENDING), ("n", DESCENDING)],
                limit=limit,
            )
            return [_goal_check(doc) async for doc in cursor]

    async def mark_goal_check_posted(self, *, check_id: str) -> bool:
        if not is_valid_id(check_id):
            return False
        with self._errors("mark a goal check posted"):
            result = await self._collection(GOAL_CHECKS).update_one(
                {"_id": check_id}, {"$set": {"posted_at": self._now()}}
            )
        return result.matched_count == 1

    async def goal_checks_to_post(self, *, agent_id: str, limit: int = 100) -> list[GoalCheck]:
        if not wants_rows(limit):
            return []
        with self._errors("list unposted goal checks"):
            cursor = self._collection(GOAL_CHECKS).find(
                {"agent_id": agent_id, "posted_at": None, "error": None},
                sort=[("checked_at", ASCENDING), ("n", ASCENDING)],
                limit=limit,
            )
            return [_goal_check(doc) async for doc in cursor]

    async def conversations_due_for_goal_check(
        self, *, agent_id: str, limit: int = 100
    ) -> list[Conversation]:
        if not wants_rows(limit):
            return []
        with self._errors("list conversations due for a goal check"):
            cursor = self._collection(CONVERSATIONS).find(
                {"agent_id": agent_id, "goal_pending": True, "closed_at": None},
                sort=[("last_message_at", ASCENDING), ("_id", ASCENDING)],
                limit=limit,
            )
            return [conversation_from_doc(doc) async for doc in cursor]

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
        if not wants_rows(limit):
            return []
        places: Document = {}
        if platforms:
            places["key.platform"] = {"$in": [literal(platform) for platform in platforms]}
        if workspaces:
            places["key.workspace"] = {"$in": [literal(workspace) for workspace in workspaces]}
        with self._errors("list an agent's goal checks"):
            cursor = self._collection(GOAL_CHECKS).find(
                {"agent_id": literal(agent_id), "checked_at": {"$gte": ceil_ms(since)}},
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
        cursor = self._collection(CONVERSATIONS).find(
            {"_id": {"$in": ids}, **places}, projection={"_id": True}
        )
        allowed = {doc["_id"] async for doc in cursor}
        return [_goal_check(doc) for doc in batch if doc["conversation_id"] in allowed]


def _goal_check(doc: Document) -> GoalCheck:
    return GoalCheck(
        id=doc["_id"],
        conversation_id=doc["conversation_id"],
        agent_id=doc["agent_id"],
        checked_at=utc(doc["checked_at"]),
        reached=doc["reached"],
        summary=doc.get("summary", ""),
        missing=tuple(doc.get("missing", ())),
        covered_seq=doc["covered_seq"],
        error=doc.get("error"),
        posted_at=utc_or_none(doc.get("posted_at")),
    )
