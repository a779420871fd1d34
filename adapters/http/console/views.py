"""How records read on the console's pages: places, authors, goal states, shapes, schedules."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from config.agents import Agent
from memory.base import API_KEY_AUTHOR, ChannelBinding, Conversation, Message

PLATFORM_LABELS = {"slack": "Slack", "discord": "Discord", "console": "Terminal", "api": "API"}
API_AUTHOR = API_KEY_AUTHOR


def when(moment: datetime | None) -> str:
    if moment is None:
        return "never"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).isoformat()


def size(count: int) -> str:
    """Bytes as people read them: ``512 B``, ``3.4 KB``, ``20.0 MB`` (units of 1,024)."""
    if count < 1024:
        return f"{count} B"
    value = float(count)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


def pretty_json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False)


def place(conversation: Conversation) -> str:
    key = conversation.key
    label = PLATFORM_LABELS.get(key.platform, key.platform)
    parts = [label]
    if key.platform == "slack":
        parts += [key.workspace, f"#{key.channel}", f"thread {key.thread}" if key.thread else ""]
    elif key.platform == "discord":
        parts += [key.workspace, f"channel {key.channel}"]
    elif key.platform == "console":
        parts.append(key.channel)
    return " · ".join(part for part in parts if part)


def author(message: Message, *, you: str = "") -> str:
    """Who wrote it: the agent's name, the person's name, or the API key that sent it."""
    if message.role == "assistant":
        return message.author_name or "Agent"
    if message.author_name:
        return message.author_name
    if you and message.author_id == f"{API_AUTHOR}{you}":
        return "You"
    if message.author_id.startswith(API_AUTHOR):
        return "API user"
    return message.author_id or "User"


@dataclass(frozen=True)
class GoalLabel:
    text: str
    kind: str
    """A CSS modifier: reached, not-yet, unchecked."""


def goal_label(conversation: Conversation) -> GoalLabel:
    goal = conversation.goal
    if goal is None:
        return GoalLabel("not checked", "unchecked")
    text = "reached" if goal.reached else "not yet"
    if conversation.goal_pending:
        text += " (new messages since)"
    return GoalLabel(text, "reached" if goal.reached else "not-yet")


@dataclass(frozen=True)
class ShapeField:
    name: str
    type: str
    description: str
    required: bool
    shown: bool
    """The reply field: the text people see."""


def _type_of(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "any"
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_type_of(schema.get('items'))}"
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    return str(kind)


def shape_fields(agent: Agent) -> list[ShapeField]:
    shape = agent.response_shape
    if shape is None:
        return []
    properties = shape.get("properties")
    required = shape.get("required")
    required_names = set(required) if isinstance(required, list) else set()
    if not isinstance(properties, dict):
        return []
    return [
        ShapeField(
            name=name,
            type=_type_of(spec),
            description=str(spec.get("description", "")) if isinstance(spec, dict) else "",
            required=name in required_names,
            shown=name == agent.reply_field,
        )
        for name, spec in properties.items()
    ]


def duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def schedule(agent: Agent) -> str:
    spec = agent.goal_check
    if spec is None:
        return "on request only"
    when_text = f"cron {spec.cron}" if spec.cron else f"every {duration(spec.every or timedelta())}"
    where = "in the conversation's thread" if spec.post_to == "thread" else spec.post_to
    return f"{when_text} ({spec.timezone}), posted {where}"


def bindings(agent: Agent, stored: list[ChannelBinding]) -> list[str]:
    """The channels bound to the agent: in the agents file, and with ``/agent use``."""
    found = [f"Slack {channel} (agents file)" for channel in agent.bindings.slack]
    found += [f"Discord {channel} (agents file)" for channel in agent.bindings.discord]
    for binding in stored:
        where = ":".join(part for part in (binding.workspace, binding.channel) if part)
        label = PLATFORM_LABELS.get(binding.platform, binding.platform)
        found.append(f"{label} {where} (/agent use)")
    return found
