"""Block Kit the adapter posts: a goal check, the confirmation before forgetting, the feedback
buttons under a reply, and Markdown as a block."""

from __future__ import annotations

from typing import Any

from adapters.slack.format import safe_markdown, safe_plain_text
from memory.base import GoalCheck, Rating

FORGET_CONFIRM = "parley_forget_confirm"
FORGET_CANCEL = "parley_forget_cancel"
FEEDBACK = "parley_feedback"
"""The ``action_id`` of the feedback buttons under replies."""

_HEADER_LIMIT = 150
_SECTION_LIMIT = 3000
_MARKDOWN_LIMIT = 12_000
"""Characters at most in one ``markdown`` block."""

Block = dict[str, Any]


def goal_check_blocks(check: GoalCheck, *, agent_name: str) -> list[Block]:
    """Header, whether the goal is reached, the summary and what is still missing (the
    model's Markdown, in ``markdown`` blocks Slack renders as it renders replies)."""
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
        blocks.append(markdown_block(safe_markdown(_cut(check.summary, _MARKDOWN_LIMIT))))
    if check.missing:
        items = "\n".join(f"- {' '.join(item.split())}" for item in check.missing)
        missing = safe_markdown(_cut(f"**Still missing:**\n{items}", _MARKDOWN_LIMIT))
        blocks.append(markdown_block(missing))
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
    """The question (Markdown) with its two buttons, both carrying ``value``."""
    return [
        markdown_block(safe_markdown(question)),
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


def markdown_block(markdown: str) -> Block:
    """A ``markdown`` block: Markdown Slack renders itself (already made safe by the caller,
    :func:`adapters.slack.format.safe_markdown`)."""
    return {"type": "markdown", "text": markdown}


def feedback_blocks(reply_id: str) -> list[Block]:
    """Good and bad buttons for the reply stored as ``reply_id`` (Slack's ``feedback_buttons``
    in a ``context_actions`` block); a click carries ``good:ID`` or ``bad:ID``."""
    return [
        {
            "type": "context_actions",
            "elements": [
                {
                    "type": "feedback_buttons",
                    "action_id": FEEDBACK,
                    "positive_button": _feedback_button("good", reply_id),
                    "negative_button": _feedback_button("bad", reply_id),
                }
            ],
        }
    ]


_FEEDBACK_LABELS: dict[Rating, tuple[str, str]] = {
    "good": ("👍", "Good reply"),
    "bad": ("👎", "Bad reply"),
}


def _feedback_button(rating: Rating, reply_id: str) -> Block:
    text, label = _FEEDBACK_LABELS[rating]
    return {
        "text": {"type": "plain_text", "text": text},
        "value": f"{rating}:{reply_id}",
        "accessibility_label": label,
    }


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, _SECTION_LIMIT)}}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
