"""Model usage in MongoDB: one document per model call, summed per group by aggregation."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta

from memory.base import (
    MAX_USAGE_BATCH,
    USAGE_GROUPS,
    NewUsage,
    UsageGroup,
    UsageQuery,
    UsageTotal,
)
from memory.mongo.connection import Document, MongoConnection, literal
from memory.mongo.schema import USAGE
from memory.rules import ceil_ms, truncate_ms, wants_rows

_FIELDS: dict[UsageGroup, str] = {
    "agent": "agent_id",
    "conversation": "conversation_id",
    "purpose": "purpose",
    "model": "model",
    "day": "day",
}
_SUMS = ("input_tokens", "cached_input_tokens", "output_tokens", "estimated")
_EPOCH_DAY = date(1970, 1, 1)


class MongoUsage(MongoConnection):
    """Tokens used per model call."""

    async def add_usage(self, records: Sequence[NewUsage]) -> int:
        if len(records) > MAX_USAGE_BATCH:
            raise ValueError(f"at most {MAX_USAGE_BATCH} usage records at once")
        if not records:
            return 0
        docs: list[Document] = [
            {
                "at": truncate_ms(record.at),
                "day": (truncate_ms(record.at).date() - _EPOCH_DAY).days,
                "agent_id": record.agent_id,
                "conversation_id": record.conversation_id,
                "purpose": record.purpose,
                "model": record.model,
                "input_tokens": record.input_tokens,
                "cached_input_tokens": record.cached_input_tokens,
                "output_tokens": record.output_tokens,
                "estimated": int(record.estimated),
            }
            for record in records
        ]
        with self._errors("record model usage"):
            await self._collection(USAGE).insert_many(docs, ordered=False)
        return len(docs)

    async def usage_totals(self, query: UsageQuery) -> list[UsageTotal]:
        if not wants_rows(query.limit):
            return []
        match: Document = {}
        agent: Document = {}
        if query.agent_id is not None:
            agent["$eq"] = literal(query.agent_id)
        if query.agent_ids:
            agent["$in"] = [literal(value) for value in query.agent_ids]
        if agent:
            match["agent_id"] = agent
        if query.conversation_id is not None:
            match["conversation_id"] = literal(query.conversation_id)
        at: Document = {}
        if query.since is not None:
            at["$gte"] = ceil_ms(query.since)
        if query.until is not None:
            at["$lt"] = ceil_ms(query.until)
        if at:
            match["at"] = at
        groups = [group for group in USAGE_GROUPS if group in query.group_by]
        key = {_FIELDS[group]: f"${_FIELDS[group]}" for group in groups}
        pipeline: list[Document] = [
            {"$match": match},
            {
                "$group": {
                    "_id": key or None,
                    "calls": {"$sum": 1},
                    **{name: {"$sum": f"${name}"} for name in _SUMS},
                }
            },
        ]
        if groups:
            pipeline.append({"$sort": {f"_id.{_FIELDS[group]}": 1 for group in groups}})
        pipeline.append({"$limit": query.limit})
        with self._errors("sum model usage"):
            cursor = await self._collection(USAGE).aggregate(pipeline)
            docs = [doc async for doc in cursor]
        return [_total(doc, groups) for doc in docs if doc["calls"]]


def _total(doc: Document, groups: list[UsageGroup]) -> UsageTotal:
    values: dict[str, object] = {
        "calls": doc["calls"],
        "input_tokens": doc["input_tokens"],
        "cached_input_tokens": doc["cached_input_tokens"],
        "output_tokens": doc["output_tokens"],
        "estimated_calls": doc["estimated"],
    }
    key = doc["_id"] or {}
    for group in groups:
        if group == "day":
            values["day"] = _EPOCH_DAY + timedelta(days=int(key["day"]))
        else:
            values[_FIELDS[group]] = key.get(_FIELDS[group])
    return UsageTotal.model_validate(values)
