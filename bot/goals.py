"""Goal checks: ask the model, with a strict JSON schema, whether a conversation reached its
agent's goal, and record the answer (or the failure) with the conversation."""

from __future__ import annotations

import json
import logging
from typing import Any

from bot.llm import ChatRequest, ModelError
from bot.logs import context_of
from bot.prompt import ChatMessage, transcript
from bot.structured import StructuredReplies
from config.agents import Agent
from memory.base import Conversation, ConversationStore, GoalCheck, Message, NewGoalCheck

logger = logging.getLogger(__name__)

GOAL_MARKER = "[parley:goal]"
GOAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "goal_reached": {"type": "boolean", "description": "true when the goal has been reached"},
        "summary": {"type": "string", "description": "what happened, in one to three sentences"},
        "missing": {
            "type": "array",
            "items": {"type": "string"},
            "description": "what is still needed to reach the goal; empty when reached",
        },
    },
    "required": ["goal_reached", "summary", "missing"],
    "additionalProperties": False,
}


def goal_instructions(agent: Agent) -> str:
    schema = json.dumps(GOAL_SCHEMA, separators=(",", ":"))
    return (
        f"{GOAL_MARKER} You review a conversation of the agent {agent.name}.\n"
        f"Who the agent is: {agent.context.strip()}\n"
        f"The goal of the conversation: {(agent.goal or '').strip()}\n"
        "Decide whether the goal has been reached. Answer with goal_reached (true or false), "
        "summary (what happened, one to three sentences) and missing (what is still needed; "
        "empty when the goal is reached).\n\n"
        "Answer with exactly one JSON object and nothing else, matching this JSON Schema:\n"
        + schema
    )


async def check_goal(
    *,
    store: ConversationStore,
    replies: StructuredReplies,
    conversation: Conversation,
    agent: Agent,
    history: list[Message],
    model: str,
) -> GoalCheck:
    """Run one goal check over ``history`` (the recent tail) and store it.

    A failing model or invalid JSON is recorded as a check with ``error`` set; the
    conversation's goal state changes only with a valid answer.
    """
    covered = history[-1].seq if history else conversation.summary_seq
    request = ChatRequest(
        model=model,
        messages=(
            ChatMessage(role="system", content=goal_instructions(agent)),
            ChatMessage(role="user", content=transcript(conversation.summary, history, agent)),
        ),
        temperature=0,
        provider=agent.provider,
        metadata={
            "conversation_id": conversation.id,
            "agent_id": agent.id,
            "purpose": "goal_check",
        },
    )
    error: str | None = None
    data: dict[str, Any] | None = None
    try:
        generated = await replies.generate(
            request, schema=GOAL_SCHEMA, reply_field=None, stream=False
        )
        data, error = generated.data, generated.error
    except ModelError as exc:
        error = str(exc)
    if data is None:
        logger.warning("goal check failed: %s", error, extra=context_of(conversation))
    values = data or {}
    return await store.add_goal_check(
        NewGoalCheck(
            conversation_id=conversation.id,
            agent_id=agent.id,
            reached=bool(values.get("goal_reached", False)),
            summary=str(values.get("summary", "")),
            missing=tuple(str(item) for item in values.get("missing") or []),
            covered_seq=covered,
            error=error if data is None else None,
        )
    )
