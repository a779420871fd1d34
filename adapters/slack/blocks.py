"""Block Kit messages the adapter posts: a goal check, and the confirmation before forgetting."""

from __future__ import annotations

from typing import Any

from adapters.slack.format import escape, markdown_to_mrkdwn, safe_plain_text
from memory.base import GoalCheck

FORGET_CONFIRM = "parley_forget_confirm"
FORGET_CANCEL = "parley_forget_cancel"

_HEADER_LIMIT = 150
_SECTION_LIMIT = 3000

Block = dict[str, Any]


def goal_check_blocks(check: GoalCheck, *, agent_name: str) -> list[Block]:
    """Header, whether the goal is reached, the summary and what is still missing."""
    reached = "✅ reached" if check.reached else "❌ not yet"
    blocks: list[Block] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": _cut(safe_plain_text(f"Goal check: {agent_name}"), _HEADER_LIMIT),
            },
        },
        _section(f"*Goal:* {reached}"),
    ]
    if check.summary:
        blocks.append(_section(markdown_to_mrkdwn(check.summary)))
    if check.missing:
        items = "\n".join(f"• {escape(item)}" for item in check.missing)
        blocks.append(_section(f"*Still missing:*\n{items}"))
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"Checked {check.checked_at:%Y-%m-%d %H:%M} UTC",
                }
            ],
        }
    )
    return blocks


def forget_blocks(value: str, *, question: str, confirm: str, cancel: str) -> list[Block]:
    """The question (mrkdwn) with its two buttons, both carrying ``value``."""
    return [
        _section(question),
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": FORGET_CONFIRM,
                    "style": "danger",
                    "text": {"type": "plain_text", "text": safe_plain_text(confirm)},
                    "value": value,
                },
                {
                    "type": "button",
                    "action_id": FORGET_CANCEL,
                    "text": {"type": "plain_text", "text": safe_plain_text(cancel)},
                    "value": value,
                },
            ],
        },
    ]


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, _SECTION_LIMIT)}}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
