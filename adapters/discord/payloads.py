"""Reading a Discord message: is it from a person, is it addressed to the bot, what does it say.

Long pastes arrive as a ``message.txt`` attachment (``text/plain``); text attachments are read
as part of the message, up to :data:`TEXT_ATTACHMENT_BYTES` in all. Other attachments cannot be
read: a message made only of them gets :func:`attachment_note` instead of a model reply.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import aiohttp

from adapters.discord.discordpy import discord

logger = logging.getLogger(__name__)

ANSWERED_TYPES = frozenset({discord.MessageType.default, discord.MessageType.reply})
"""Messages people write. Every other type (thread created, member joined, pins...) is a
system message, even when its author is a person."""
TEXT_ATTACHMENT_BYTES = 100_000
_TEXT_SUFFIXES = (".txt", ".md", ".markdown", ".csv", ".log")
_THREAD_NAME_LENGTH = 100
_USER_MENTION = re.compile(r"<@!?([0-9]{15,20})>")
_ROLE_MENTION = re.compile(r"<@&([0-9]{15,20})>")
_CHANNEL_MENTION = re.compile(r"<#([0-9]{15,20})>")


def is_from_a_person(message: discord.Message) -> bool:
    """A message a person wrote: not a system message, not a bot (the bot itself included), not
    a webhook. Answering bots is how two bots end up talking forever."""
    return message.type in ANSWERED_TYPES and not message.author.bot and message.webhook_id is None


def mentions(message: discord.Message, user_id: int) -> bool:
    """The user is mentioned by name (``<@id>``). ``@everyone``, ``@here`` and role mentions do
    not count, although discord.py's ``mentioned_in`` counts ``@everyone``."""
    return user_id in message.raw_mentions


def replies_to(message: discord.Message, user_id: int) -> bool:
    """The message is a reply to one of the user's messages."""
    reference = message.reference
    resolved = reference.resolved if reference is not None else None
    return isinstance(resolved, discord.Message) and resolved.author.id == user_id


def written_text(message: discord.Message, bot_id: int) -> str:
    """The content without the bot's own mention, other mentions shown as names."""
    content = re.sub(rf"<@!?{bot_id}>", "", message.content)
    users = {member.id: member.display_name for member in message.mentions}
    roles = {role.id: role.name for role in message.role_mentions}
    channels = {channel.id: channel.name for channel in message.channel_mentions}
    content = _USER_MENTION.sub(lambda m: _named(m, users, "@"), content)
    content = _ROLE_MENTION.sub(lambda m: _named(m, roles, "@"), content)
    content = _CHANNEL_MENTION.sub(lambda m: _named(m, channels, "#"), content)
    return content.strip()


def _named(match: re.Match[str], names: dict[int, str], prefix: str) -> str:
    found = names.get(int(match.group(1)))
    return f"{prefix}{found}" if found is not None else match.group(0)


def is_text(attachment: discord.Attachment) -> bool:
    kind = (attachment.content_type or "").split(";", 1)[0].strip().lower()
    if kind:
        return kind.startswith("text/")
    return attachment.filename.lower().endswith(_TEXT_SUFFIXES)


@dataclass(frozen=True, slots=True)
class MessageText:
    """What a message says (its written text and its text attachments), and the attachments
    that were not read: not text, or text too long (or failing) to read."""

    text: str
    not_text: tuple[str, ...] = ()
    unreadable: tuple[str, ...] = ()

    @property
    def skipped_attachments(self) -> bool:
        return bool(self.not_text or self.unreadable)


async def read_message(message: discord.Message, bot_id: int) -> MessageText:
    """The message's text, with its text attachments appended (within the size budget)."""
    parts = [written_text(message, bot_id)]
    not_text: list[str] = []
    unreadable: list[str] = []
    budget = TEXT_ATTACHMENT_BYTES
    for attachment in message.attachments:
        if not is_text(attachment):
            not_text.append(attachment.filename)
            continue
        if attachment.size > budget:
            unreadable.append(attachment.filename)
            continue
        try:
            data = await attachment.read()
        except (discord.DiscordException, aiohttp.ClientError) as exc:
            logger.warning("could not read attachment %s: %s", attachment.filename, exc)
            unreadable.append(attachment.filename)
            continue
        kept = data[:budget]
        budget -= len(kept)
        parts.append(kept.decode("utf-8", errors="replace").strip())
    return MessageText(
        text="\n\n".join(part for part in parts if part),
        not_text=tuple(not_text),
        unreadable=tuple(unreadable),
    )


def attachment_note(read: MessageText) -> str:
    """The short line for a message of attachments only, none of which could be read."""
    said = []
    if read.not_text:
        said.append(f"I can only read text, so I can't look at {_names(read.not_text)}.")
    if read.unreadable:
        limit = TEXT_ATTACHMENT_BYTES // 1000
        said.append(f"I couldn't read {_names(read.unreadable)} (text up to {limit} KB).")
    said.append("Tell me about it in words, or paste the part that matters.")
    return " ".join(said)


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def thread_name(text: str) -> str:
    """A thread name from the first line of a message (Discord allows 100 characters)."""
    line = " ".join(text.split("\n", 1)[0].split()) or "Conversation"
    if len(line) <= _THREAD_NAME_LENGTH:
        return line
    return line[: _THREAD_NAME_LENGTH - 1] + "…"
