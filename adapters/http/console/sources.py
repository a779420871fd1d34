"""The passages of the agent's documents each reply was given (``Message.sources``), shown
beside the reply: read in one store call per page. Chunks deleted since (their document was
deleted or re-indexed) are simply not shown."""

from __future__ import annotations

from collections.abc import Sequence

from memory.base import KnowledgeChunk, KnowledgeRecords, Message

MAX_CHUNKS = 500
"""Chunks one page reads at most (a reply is given a few, within its agent's
``knowledge_tokens``); replies past it show the ones read."""

Sources = dict[str, list[KnowledgeChunk]]
"""A message's id -> the chunks it was given that still exist, in the order given."""


async def sources_of(store: KnowledgeRecords, messages: Sequence[Message]) -> Sources:
    wanted = list(dict.fromkeys(chunk_id for m in messages for chunk_id in m.sources))
    if not wanted:
        return {}
    found = {chunk.id: chunk for chunk in await store.get_chunks(ids=wanted[:MAX_CHUNKS])}
    shown: Sources = {}
    for message in messages:
        chunks = [found[chunk_id] for chunk_id in message.sources if chunk_id in found]
        if chunks:
            shown[message.id] = chunks
    return shown
