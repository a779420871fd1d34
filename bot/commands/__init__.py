"""Every ``/agent`` subcommand, once: one permission table, one wording, neutral outcomes.

A platform parses what the person typed into a :class:`Command`, says who is calling and
where (a :class:`Caller`), and renders the :data:`Outcome` :meth:`AgentCommands.run` returns:
Block Kit on Slack, messages and a ``discord.ui.View`` on Discord, lines and a y/N question in
the terminal. Nothing here knows a platform's API; what differs between platforms (how an
admin is recognised, whether a new thread can be opened) arrives in the caller.

The texts are Markdown; agent names and typed ids in them are data, so each platform renders
them with its own escaping (Slack's control sequences, Discord's mentions).
"""

from bot.commands.agent_commands import AgentCommands
from bot.commands.outcomes import (
    Caller,
    FileToSend,
    GoalCheckToPost,
    NeedsConfirmation,
    OpenThread,
    Outcome,
    Pending,
    Refused,
    Said,
    Started,
)
from bot.commands.rules import (
    GOAL_CHECK_FAILED,
    KEPT,
    NOT_YOURS,
    OPENED_BY,
    PERMISSIONS,
    Command,
    Rule,
    Verb,
    no_conversation,
    parse,
)

__all__ = [
    "GOAL_CHECK_FAILED",
    "KEPT",
    "NOT_YOURS",
    "OPENED_BY",
    "PERMISSIONS",
    "AgentCommands",
    "Caller",
    "Command",
    "FileToSend",
    "GoalCheckToPost",
    "NeedsConfirmation",
    "OpenThread",
    "Outcome",
    "Pending",
    "Refused",
    "Rule",
    "Said",
    "Started",
    "Verb",
    "no_conversation",
    "parse",
]
