"""What the operator's list commands print, one line per record: ``python -m bot agents``,
``python -m bot conversations`` and the agents of ``python -m bot check``.

Lines are for people reading a terminal: printable text only (a title or summary written by a
model, or a person, may hold control characters), never a secret.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.catalog import AgentSource
from config.agents import Agent
from config.settings import Settings
from memory.base import Conversation, ConversationPage

TITLE_WIDTH = 60
"""Characters of a conversation's title shown on its line."""


def printable(text: str) -> str:
    """``text`` on one line: control characters and runs of spaces as one space."""
    return " ".join("".join(c if c.isprintable() else " " for c in text).split())


def describe_agent(agent: Agent, settings: Settings) -> str:
    """``chef (Mediterranean Chef): model ...; replies as JSON {...}; goal check ...``."""
    model = agent.effective_model(settings.bot_model, settings.provider_models)
    parts = [f"{agent.id} ({agent.name}): model {model}"]
    if agent.provider is not None:
        parts.append(f"provider {agent.provider}")
    if agent.response_shape is not None:
        properties = agent.response_shape.get("properties")
        fields = ", ".join(properties) if isinstance(properties, dict) else ""
        parts.append(f"replies as JSON {{{fields}}}, shows '{agent.reply_field}'")
    else:
        parts.append("replies in plain text")
    if agent.goal_check is not None:
        spec = agent.goal_check
        when = f"cron '{spec.cron}'" if spec.cron else f"every {spec.every}"
        parts.append(f"goal check {when} {spec.timezone} -> {spec.post_to}")
    bound = [f"slack {c}" for c in agent.bindings.slack] + [
        f"discord {c}" for c in agent.bindings.discord
    ]
    if bound:
        parts.append("bound to " + ", ".join(bound))
    if agent.daily_token_budget is not None:
        parts.append(f"daily budget {agent.daily_token_budget:,} tokens")
    if agent.memory.on:
        shared = ", shared by the workspace's agents" if agent.memory.shared else ""
        parts.append(f"remembers people ({agent.memory.extract}{shared})")
    if agent.knowledge:
        parts.append(f"knows {', '.join(agent.knowledge)}")
    return "; ".join(parts)


def agent_lines(
    agents: Iterable[tuple[Agent, AgentSource]], *, default: str, settings: Settings
) -> list[str]:
    """One line per agent: where it comes from (the agents file, or the store through the
    API), whether it is the default, and what it is."""
    lines = []
    for agent, source in agents:
        origin = "file" if source == "file" else "api"
        mark = "default" if agent.id == default else "-"
        lines.append(f"{origin:<4}  {mark:<7}  {printable(describe_agent(agent, settings))}")
    return lines


def conversation_line(conversation: Conversation) -> str:
    """``id  updated  platform/workspace/channel[/thread]  agent=ID  N messages  state  title``."""
    key = conversation.key
    place = "/".join(
        part for part in (key.platform, key.workspace or "-", key.channel, key.thread) if part
    )
    state = "closed" if conversation.closed_at is not None else "open"
    if conversation.goal is not None and conversation.goal.reached:
        state += ",goal-reached"
    count = conversation.message_count
    messages = f"{count} message" if count == 1 else f"{count} messages"
    title = printable(conversation.title) or "-"
    if len(title) > TITLE_WIDTH:
        title = title[: TITLE_WIDTH - 1] + "…"
    updated = f"{conversation.updated_at:%Y-%m-%d %H:%M:%S}"
    return (
        f"{conversation.id}  {updated}  {printable(place)}  agent={conversation.agent_id}  "
        f"{messages}  {state}  {title}"
    )


def conversation_lines(page: ConversationPage) -> list[str]:
    """The page's lines, then how many more match when the page is not all of them."""
    lines = [conversation_line(conversation) for conversation in page.items]
    if not lines:
        return ["No conversations match."]
    more = page.total - len(page.items)
    if more > 0:
        lines.append(f"... and {more} more (--limit, or narrow with --platform, --agent, --text)")
    return lines
