"""The permission table and the wording of the ``/agent`` subcommands, as data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

Verb = Literal[
    "help", "list", "use", "start", "reset", "summary", "export", "forget", "memory", "usage"
]
Who = Literal["anyone", "admins", "admins or the opener"]

OPENED_BY: Final = "opened_by"
"""Conversation data: the user id of the person a conversation was opened for (``start``, or
a thread the platform opened for them), so they may ``forget`` it."""
LEGACY_OPENED_BY: Final = "discord_started_by"
"""The same, as Discord conversations stored it before the commands were one layer."""


@dataclass(frozen=True, slots=True)
class Rule:
    """Who may run a subcommand, and how."""

    who: Who
    does: str
    """What it does, as the help and the README say it."""
    needs_conversation: bool = False
    confirm: bool = False
    """Ask the caller first; the work happens in :meth:`AgentCommands.confirm`."""
    in_dm: bool = True
    """Allowed in a direct message."""
    argument: str = ""
    """The argument it takes, as the help shows it."""


PERMISSIONS: Final[Mapping[Verb, Rule]] = MappingProxyType(
    {
        "help": Rule("anyone", "these commands"),
        "list": Rule("anyone", "the agents, and which one answers here"),
        "use": Rule(
            "admins",
            "new conversations here talk to agent ID; an open conversation here with "
            "another agent is closed (kept) and a new one starts with ID's first message",
            in_dm=False,
            argument=" ID",
        ),
        "start": Rule(
            "anyone",
            "a new conversation with agent ID (default: the agent here), opened with its "
            "first message: in a new thread on Slack and Discord, here in the terminal",
            argument=" [ID]",
        ),
        "reset": Rule(
            "anyone",
            "close the conversation here (it is kept) and start a new one with the agent's "
            "first message",
            needs_conversation=True,
        ),
        "summary": Rule(
            "anyone",
            "check the conversation's goal now and show the result",
            needs_conversation=True,
        ),
        "export": Rule(
            "anyone",
            "the conversation as a Markdown file (only you see it where the platform allows)",
            needs_conversation=True,
        ),
        "forget": Rule(
            "admins or the opener",
            "delete the conversation and all its messages",
            needs_conversation=True,
            confirm=True,
        ),
        "memory": Rule(
            "anyone",
            "what the agent here remembers about you, newest first (only you see it); "
            "`forget N` deletes the N-th, `forget all` all of it",
            argument=" [forget N|all]",
        ),
        "usage": Rule(
            "admins",
            "the tokens the agent here used today (against its daily budget), in the last 30 "
            "days and in this conversation, with their cost (only you see it)",
        ),
    }
)
"""The permission table. ``admins`` are what the platform calls them (Slack workspace admins
and owners, Discord's Manage Server, the terminal's own user); ``the opener`` is who opened
the conversation (``start``, the root message of its Slack thread, the owner of its Discord
thread) and anyone in their own direct message."""

_DOING: Final[Mapping[Verb, str]] = MappingProxyType(
    {"reset": "reset", "summary": "check", "export": "export", "forget": "forget"}
)

NO_GOAL = "{agent} has no goal to check."
GOAL_CHECK_FAILED = "I couldn't check the goal just now. Please try again in a moment."
FORGET_PROMPT = (
    "Forget this conversation? I will delete it and all its messages from my memory. "
    "This cannot be undone."
)
FORGET_LABEL = "Forget it"
KEEP_LABEL = "Keep it"
KEPT = "Nothing was deleted."
ALREADY_GONE = "That conversation is already gone."
NOT_YOURS = "Only the person who asked can confirm this."
IN_DM = "Agents are chosen per channel; in direct messages (DMs) I use the default agent."


def no_conversation(verb: Verb) -> str:
    return f"There is no conversation here to {_DOING.get(verb, verb)}."


@dataclass(frozen=True, slots=True)
class Command:
    verb: Verb
    argument: str = ""


def parse(text: str) -> Command | None:
    """The subcommand in ``text`` (``"use tutor"``, ``"reset"``; empty is ``help``), or None
    when it is not one."""
    words = text.split()
    if not words:
        return Command("help")
    word, arguments = words[0].lower(), [w.strip("`").lower() for w in words[1:]]
    verb = next((v for v in PERMISSIONS if v == word), None)
    if verb is None:
        return None
    if verb == "memory":
        return _memory(arguments)
    takes = PERMISSIONS[verb].argument
    if not arguments:
        return None if takes == " ID" else Command(verb)
    if takes and len(arguments) == 1:
        return Command(verb, arguments[0])
    return None


def _memory(arguments: list[str]) -> Command | None:
    """``memory``, ``memory forget``, ``memory forget WHAT``: what to forget is checked when
    the command runs, to say what is wrong with it."""
    if arguments and (arguments[0] != "forget" or len(arguments) > 2):
        return None
    return Command("memory", " ".join(arguments))


RESET_NOTE = "New conversation (the previous one is kept)."


def refusal(verb: Verb, *, admins: str, prefix: str) -> str:
    if verb == "use":
        return (
            f"Only {admins} can choose the agent here. You can still start a "
            f"conversation with any agent: `{prefix}start ID`."
        )
    return f"Only {admins} or the person who started this conversation can make me {verb} it."
