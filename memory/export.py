"""Export one conversation as JSON (for programs) or Markdown (for people), from any store."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Literal

from bot.errors import NotFound
from memory.base import Conversation, ConversationStore, Message

ExportFormat = Literal["json", "md"]

_PAGE = 500


async def iter_messages(
    store: ConversationStore, *, conversation_id: str
) -> AsyncIterator[Message]:
    """Every message of a conversation, oldest first, read in pages."""
    after = 0
    while True:
        page = await store.list_messages(
            conversation_id=conversation_id, after_seq=after, limit=_PAGE
        )
        for message in page:
            yield message
        if len(page) < _PAGE:
            return
        after = page[-1].seq


async def export_conversation(
    store: ConversationStore, *, conversation_id: str, fmt: ExportFormat
) -> str:
    conversation = await store.get_conversation(conversation_id=conversation_id)
    if conversation is None:
        raise NotFound(f"conversation {conversation_id} not found")
    messages = [message async for message in iter_messages(store, conversation_id=conversation_id)]
    checks = await store.list_goal_checks(conversation_id=conversation_id, limit=1000)
    if fmt == "json":
        document = {
            "conversation": conversation.model_dump(mode="json"),
            "messages": [message.model_dump(mode="json") for message in messages],
            "goal_checks": [check.model_dump(mode="json") for check in reversed(checks)],
        }
        return json.dumps(document, ensure_ascii=False, indent=2)
    return _markdown(conversation, messages)


def _markdown(conversation: Conversation, messages: list[Message]) -> str:
    key = conversation.key
    place = " / ".join(
        part for part in (key.platform, key.workspace, key.channel, key.thread) if part
    )
    lines = [
        f"# {conversation.title or 'Conversation ' + conversation.id}",
        "",
        f"- Conversation: `{conversation.id}`",
        f"- Agent: `{conversation.agent_id}`",
        f"- Place: {place}",
        f"- Started: {conversation.created_at.isoformat()}",
        f"- Messages: {conversation.message_count}",
    ]
    if conversation.tags:
        lines.append(f"- Tags: {', '.join(conversation.tags)}")
    if conversation.goal is not None:
        state = "reached" if conversation.goal.reached else "not reached yet"
        lines.append(f"- Goal: {state} ({conversation.goal.summary})")
    if conversation.summary:
        lines += ["", "## Summary", "", conversation.summary]
    lines += ["", "## Messages"]
    for message in messages:
        who = message.author_name or message.author_id or message.role
        if message.role == "assistant":
            who = f"{conversation.agent_id} (agent)"
        lines += ["", f"**{who}** · {message.created_at.isoformat()}", "", message.text]
        if message.data is not None:
            lines += ["", "```json", json.dumps(message.data, ensure_ascii=False, indent=2), "```"]
    return "\n".join(lines) + "\n"
