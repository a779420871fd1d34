"""The naive baseline: what most chatbot tutorials do on every turn.

Store the user's message, load the conversation's WHOLE history, send all of it, store the
reply. The timed span is the same as an engine turn's (message in, reply stored): the
history load, counting the prompt's tokens (the only way to know what the call will cost),
building the prompt, the (instant) model call and both writes. Messages are rendered exactly
as the engine renders history and stored with the same token counts, so the only difference
measured is loading everything versus loading a budgeted window.
"""

from __future__ import annotations

import json
from time import perf_counter

from bench.fake_model import prompt_tokens
from bench.workload import MODEL
from bot.llm import ChatRequest, ModelClient, ResponseFormat
from bot.prompt import ChatMessage, history_content, system_message, user_content
from bot.tokens import TokenCounter
from config.agents import Agent
from memory.base import ConversationStore, NewMessage, PlatformKey

EVERYTHING = 1_000_000_000
"""The ``limit`` that loads a whole conversation."""


async def naive_turn(
    *,
    store: ConversationStore,
    model: ModelClient,
    tokens: TokenCounter,
    agent: Agent,
    key: PlatformKey,
    text: str,
    author: str,
) -> tuple[float, int]:
    """One naive turn; returns its duration in seconds and its prompt tokens."""
    start = perf_counter()
    conversation = await store.find_conversation(key=key)
    if conversation is None:
        conversation, _ = await store.get_or_create_conversation(key=key, agent_id=agent.id)
    await store.append_message(
        conversation_id=conversation.id,
        message=NewMessage(
            role="user",
            text=text,
            author_id=f"U{author.upper()}",
            author_name=author,
            token_count=tokens.count(user_content(text, author), MODEL),
        ),
    )
    history = await store.list_messages(conversation_id=conversation.id, limit=EVERYTHING)
    messages = (
        system_message(agent),
        ChatMessage(role="assistant", content=agent.first_message),
        *(ChatMessage(role=m.role, content=history_content(m)) for m in history),
    )
    counted = prompt_tokens(messages, tokens)
    schema = agent.response_shape
    request = ChatRequest(
        model=MODEL,
        messages=messages,
        response_format=ResponseFormat(kind="json_schema", schema=schema) if schema else None,
        metadata={"conversation_id": conversation.id, "purpose": "naive"},
    )
    raw = await model.complete(request)
    data = json.loads(raw)
    await store.append_message(
        conversation_id=conversation.id,
        message=NewMessage(
            role="assistant",
            text=str(data.get(agent.reply_field, raw)),
            author_name=agent.name,
            data=data,
            token_count=tokens.count(json.dumps(data, ensure_ascii=False), MODEL),
        ),
    )
    return perf_counter() - start, counted
