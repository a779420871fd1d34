"""Prompt assembly: pure code, no I/O.

Order of every prompt: a system message (the agent's context, its instructions, the response
shape directive); what the agent remembers about the speaker and passages of its documents,
if any; the agent's first message as the first assistant turn; the rolling summary
of older turns, if any; the most recent turns that fit the agent's ``context_tokens`` budget
(dropped oldest first, in whole user/assistant turns); the new user message.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from config.agents import Agent
from memory.base import Message, Role

ChatRole = Literal["system", "user", "assistant"]
MESSAGE_OVERHEAD_TOKENS = 4
"""What the chat format adds around each message's content (role and separators)."""

SUMMARY_HEADING = "Summary of the conversation so far (older turns are not shown):"


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: ChatRole
    content: str


@dataclass(frozen=True, slots=True)
class Prompt:
    messages: tuple[ChatMessage, ...]
    tokens: int
    """Estimated prompt tokens: every message's content plus the per-message overhead."""
    history_tokens: int
    included_seqs: tuple[int, ...]
    """Seqs of the stored messages that made it into the window, oldest first."""
    dropped_through: int
    """The newest seq that fell out of the budget (0 when nothing did)."""


def shape_directive(agent: Agent) -> str:
    """Tells the model the JSON it must answer with and which field people read."""
    if agent.response_shape is None:
        return ""
    schema = json.dumps(agent.response_shape, ensure_ascii=False, separators=(",", ":"))
    return (
        "Always answer with exactly one JSON object and nothing else, matching this JSON "
        f"Schema:\n{schema}\n"
        f'The "{agent.reply_field}" field is what the person reads: write it as a chat message '
        "(Markdown allowed). The other fields are read by programs; fill them accurately."
    )


def system_message(agent: Agent) -> ChatMessage:
    parts = [agent.context.strip()]
    if agent.instructions.strip():
        parts.append("Instructions for the whole conversation:\n" + agent.instructions.strip())
    directive = shape_directive(agent)
    if directive:
        parts.append(directive)
    return ChatMessage(role="system", content="\n\n".join(parts))


def user_content(text: str, author_name: str) -> str:
    """User turns carry the author's name: several people may share one conversation."""
    return f"{author_name}: {text}" if author_name else text


def reply_content(text: str, data: Mapping[str, Any] | None) -> str:
    """A reply as later prompts replay it: a structured reply as its whole JSON."""
    return json.dumps(data, ensure_ascii=False) if data is not None else text


def history_content(message: Message) -> str:
    if message.role == "user":
        return user_content(message.text, message.author_name)
    return reply_content(message.text, message.data)


def _left_out(agent: Agent, *, seq: int, role: str, failed: bool, text: str | None) -> bool:
    """A failed reply, or the stored opener: every prompt carries the agent's first message."""
    return failed or (seq == 1 and role == "assistant" and text == agent.first_message)


def usable_history(history: Sequence[Message], agent: Agent) -> list[Message]:
    """What a prompt may show: no failed replies and no repeat of the opener."""
    return [
        m
        for m in history
        if not _left_out(agent, seq=m.seq, role=m.role, failed=m.error is not None, text=m.text)
    ]


@dataclass(frozen=True, slots=True)
class PastMessage:
    """A stored message as prompts use it, made once per message: a structured reply's JSON
    is written out once, not on every turn that shows it, and :class:`bot.history.RecentHistory`
    keeps these between turns (a fifth of a whole message's memory)."""

    seq: int
    role: Role
    content: str
    """What a prompt carries for it (:func:`history_content`)."""
    token_count: int
    """The tokens of ``content`` as stored; 0 when not known."""
    failed: bool
    opening: str | None
    """The text of the conversation's first message when the agent wrote it (else None)."""

    @classmethod
    def of(cls, message: Message) -> PastMessage:
        opening = message.seq == 1 and message.role == "assistant"
        return cls(
            seq=message.seq,
            role=message.role,
            content=history_content(message),
            token_count=message.token_count,
            failed=message.error is not None,
            opening=message.text if opening else None,
        )

    def shown(self, agent: Agent) -> bool:
        """Whether a prompt may show it (:func:`usable_history`'s rule)."""
        return not _left_out(
            agent, seq=self.seq, role=self.role, failed=self.failed, text=self.opening
        )

    def cost(self, count: Callable[[str], int]) -> int:
        """What it weighs against the history budget."""
        return (self.token_count or count(self.content)) + MESSAGE_OVERHEAD_TOKENS


def group_turns(history: Sequence[PastMessage]) -> list[list[PastMessage]]:
    """Whole turns: a user message and the replies after it (leading replies stand alone)."""
    turns: list[list[PastMessage]] = []
    for message in history:
        if message.role == "user" or not turns:
            turns.append([message])
        else:
            turns[-1].append(message)
    return turns


def build_prompt(
    *,
    agent: Agent,
    summary: str,
    history: Sequence[PastMessage],
    new_text: str,
    new_author: str,
    count: Callable[[str], int],
    memory: str = "",
    knowledge: str = "",
) -> Prompt:
    """Assemble the prompt for one turn.

    ``history`` is the stored tail after the summary, oldest first. A message's stored
    ``token_count`` (the tokens of its content) spares counting it again on every turn;
    ``count`` counts tokens for the agent's model. ``memory`` is what the agent remembers
    about the speaker (:mod:`bot.memory`) and ``knowledge`` passages of its documents
    (:mod:`bot.knowledge`), system messages after the agent's own.
    """
    fixed = [system_message(agent)]
    if memory.strip():  # what the agent remembers about the speaker (bot.memory)
        fixed.append(ChatMessage(role="system", content=memory.strip()))
    if knowledge.strip():  # passages of the agent's documents (bot.knowledge)
        fixed.append(ChatMessage(role="system", content=knowledge.strip()))
    fixed.append(ChatMessage(role="assistant", content=agent.first_message))
    if summary.strip():
        fixed.append(ChatMessage(role="system", content=f"{SUMMARY_HEADING}\n{summary.strip()}"))
    new_message = ChatMessage(role="user", content=user_content(new_text, new_author))

    turns = group_turns([m for m in history if m.shown(agent)])
    kept: list[list[PastMessage]] = []
    used = 0
    for turn in reversed(turns):
        turn_cost = sum(message.cost(count) for message in turn)
        if used + turn_cost > agent.context_tokens:
            break
        kept.append(turn)
        used += turn_cost
    kept.reverse()
    window = [message for turn in kept for message in turn]
    first_kept = window[0].seq if window else None
    dropped = [m.seq for m in history if first_kept is None or m.seq < first_kept]

    messages = [
        *fixed,
        *(ChatMessage(role=m.role, content=m.content) for m in window),
        new_message,
    ]
    fixed_tokens = sum(count(m.content) + MESSAGE_OVERHEAD_TOKENS for m in (*fixed, new_message))
    return Prompt(
        messages=tuple(messages),
        tokens=fixed_tokens + used,
        history_tokens=used,
        included_seqs=tuple(m.seq for m in window),
        dropped_through=max(dropped, default=0),
    )


def transcript(summary: str, messages: Sequence[Message], agent: Agent) -> str:
    """A conversation as plain text, for prompts that review it (summaries, goal checks)."""
    lines = []
    if summary.strip():
        lines += ["Summary of earlier turns:", summary.strip(), ""]
    lines.append("Conversation:")
    for message in messages:
        if message.role == "user":
            lines.append(f"{message.author_name or 'User'}: {message.text}")
        else:
            lines.append(f"{agent.name}: {message.text}")
    return "\n".join(lines)
