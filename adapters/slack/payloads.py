"""Slack's wire payloads, typed, and the values the adapter makes of them.

Raw payloads are TypedDicts (what Slack sends, nothing promised: each field is still checked
where it is read), and the listeners take them so; :func:`parse_message` turns an event into a
:class:`SlackMessage` or says why the message is ignored, :meth:`SlashCommand.from_payload` and
:func:`parse_button` read a slash command and a button click. Which messages are
usable is decided here, in one place: the bot's own and other bots' messages, edits,
deletions, joins and other subtypes are ignored on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict, cast

from slack_sdk.errors import SlackApiError

from adapters.slack.format import remove_mention
from memory.base import SLACK_IM_CHANNEL, PlatformKey, Rating

USABLE_SUBTYPES = frozenset({"thread_broadcast", "file_share"})
"""Message subtypes that carry a person's words; every other subtype is ignored."""


class MessageEvent(TypedDict):
    """An ``app_mention`` or ``message`` event (the fields the adapter reads)."""

    type: str
    channel: str
    ts: str
    user: NotRequired[str]
    text: NotRequired[str]
    team: NotRequired[str]
    subtype: NotRequired[str]
    thread_ts: NotRequired[str]
    channel_type: NotRequired[str]
    bot_id: NotRequired[str]
    hidden: NotRequired[bool]
    files: NotRequired[list[dict[str, Any]]]
    event_ts: NotRequired[str]


class EventCallback(TypedDict):
    """The Events API envelope (also the Socket Mode ``events_api`` payload)."""

    type: str
    team_id: str
    event: dict[str, Any]
    event_id: NotRequired[str]
    api_app_id: NotRequired[str]
    event_time: NotRequired[int]


class AssistantThread(TypedDict):
    user_id: str
    channel_id: str
    thread_ts: str
    context: NotRequired[dict[str, Any]]


class SlashCommandPayload(TypedDict):
    """A slash command's form fields (``/agent ...``), as Bolt hands them to the listener."""

    command: str
    text: str
    team_id: str
    channel_id: str
    user_id: str
    channel_name: NotRequired[str]
    response_url: NotRequired[str]
    trigger_id: NotRequired[str]


class ActionUser(TypedDict):
    id: str
    team_id: NotRequired[str]


class ButtonAction(TypedDict):
    action_id: str
    value: NotRequired[str]


class BlockActions(TypedDict):
    """A ``block_actions`` payload: someone clicked one of the bot's buttons."""

    type: str
    user: ActionUser
    actions: list[ButtonAction]
    team: NotRequired[dict[str, Any]]
    container: NotRequired[dict[str, Any]]
    channel: NotRequired[dict[str, Any]]
    response_url: NotRequired[str]


@dataclass(frozen=True, slots=True)
class SlashCommand:
    team: str
    channel: str
    channel_name: str
    user: str
    text: str

    @classmethod
    def from_payload(cls, payload: SlashCommandPayload) -> SlashCommand:
        return cls(
            team=str(payload.get("team_id") or ""),
            channel=str(payload.get("channel_id") or ""),
            channel_name=str(payload.get("channel_name") or ""),
            user=str(payload.get("user_id") or ""),
            text=str(payload.get("text") or ""),
        )


@dataclass(frozen=True, slots=True)
class ButtonClick:
    """Who clicked a button, where, and the value it carries (checked by its reader)."""

    team: str
    channel: str
    user: str
    value: object


def parse_button(body: BlockActions) -> ButtonClick:
    """The click in a ``block_actions`` payload; missing or malformed parts come back empty."""
    raw = cast(dict[str, Any], body)
    user = _object(raw, "user")
    team = _object(raw, "team").get("id") or user.get("team_id")
    channel = _object(raw, "container").get("channel_id") or _object(raw, "channel").get("id")
    actions = raw.get("actions")
    value = (
        actions[0].get("value")
        if isinstance(actions, list) and actions and isinstance(actions[0], dict)
        else None
    )
    return ButtonClick(
        team=str(team or ""),
        channel=str(channel or ""),
        user=str(user.get("id") or ""),
        value=value,
    )


def _object(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name)
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class BotIdentity:
    """Who the bot is in its workspace, from ``auth.test``."""

    user_id: str
    bot_id: str
    team_id: str


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """A person's message the bot may answer."""

    team: str
    channel: str
    user: str
    text: str
    """As Slack sent it (markup, entities), without the bot's mentions."""
    ts: str
    thread_ts: str | None
    event_type: str
    event_id: str
    channel_type: str
    mentions_bot: bool
    has_files: bool

    @property
    def thread(self) -> str:
        """The thread root: the conversation lives in this message's thread."""
        return self.thread_ts or self.ts

    @property
    def is_dm(self) -> bool:
        return self.channel_type == "im"

    @property
    def in_agent_thread(self) -> bool:
        """Written in a thread of the bot's direct messages: where Slack's agent surface
        (status, Stop button, title) lives. Read from the message itself, so every process
        knows it, before and after a restart."""
        return self.is_dm and self.thread_ts is not None

    @property
    def key(self) -> PlatformKey:
        return PlatformKey(
            platform="slack", workspace=self.team, channel=self.channel, thread=self.thread
        )


@dataclass(frozen=True, slots=True)
class Ignored:
    """A message the bot does not use, and why (for debug logs)."""

    reason: str


def parse_message(
    body: EventCallback, bot: BotIdentity, *, allowed_bots: frozenset[str] = frozenset()
) -> SlackMessage | Ignored:
    """The usable message in an ``event_callback`` body, or why there is none."""
    raw: object = body.get("event")
    if not isinstance(raw, dict) or raw.get("type") not in {"message", "app_mention"}:
        return Ignored("not a message event")
    event = cast(MessageEvent, raw)
    reason = _unusable(event, bot, allowed_bots)
    if reason is not None:
        return Ignored(reason)
    text = event.get("text") or ""
    return SlackMessage(
        team=str(body.get("team_id") or event.get("team") or bot.team_id),
        channel=event["channel"],
        user=event.get("user") or event.get("bot_id") or "",
        text=remove_mention(text, bot.user_id),
        ts=event["ts"],
        thread_ts=event.get("thread_ts") or None,
        event_type=event["type"],
        event_id=str(body.get("event_id") or ""),
        channel_type=_channel_type(event),
        mentions_bot=f"<@{bot.user_id}" in text,
        has_files=bool(event.get("files")) or event.get("subtype") == "file_share",
    )


def _unusable(event: MessageEvent, bot: BotIdentity, allowed_bots: frozenset[str]) -> str | None:
    """Why the bot does not use this message, or None when it may."""
    subtype = event.get("subtype")
    bot_id = event.get("bot_id")
    user = event.get("user")
    if subtype is not None and subtype not in USABLE_SUBTYPES:
        reason: str | None = f"subtype {subtype}"
    elif event.get("hidden"):
        reason = "hidden message"
    elif (bot_id and bot_id == bot.bot_id) or (user and user == bot.user_id):
        reason = "the bot's own message"
    elif bot_id and bot_id not in allowed_bots:
        reason = "another bot's message"
    elif not (user or bot_id) or not event.get("channel") or not event.get("ts"):
        reason = "no author, channel or ts"
    else:
        reason = None
    return reason


def _channel_type(event: MessageEvent) -> str:
    """``channel``, ``group``, ``im`` or ``mpim``; app_mention events carry none, so the
    channel id's prefix decides (D: a direct message)."""
    kind = event.get("channel_type")
    if kind:
        return kind
    return "im" if event.get("channel", "").startswith("D") else "channel"


def parse_assistant_thread(body: EventCallback) -> tuple[str, AssistantThread] | None:
    """The team and thread of an ``assistant_thread_started`` event, if well formed."""
    event: object = body.get("event")
    if not isinstance(event, dict):
        return None
    thread = event.get("assistant_thread")
    if not isinstance(thread, dict):
        return None
    if not all(
        isinstance(thread.get(name), str) for name in ("user_id", "channel_id", "thread_ts")
    ):
        return None
    context = thread.get("context") if isinstance(thread.get("context"), dict) else {}
    team = str(body.get("team_id") or (context or {}).get("team_id") or "")
    return team, cast(AssistantThread, thread)


@dataclass(frozen=True, slots=True)
class FeedbackClick:
    """Someone clicked a feedback button under a reply."""

    team: str
    channel: str
    user: str
    thread_ts: str
    reply_id: str
    """The stored reply's id, which the button carries."""
    rating: Rating


def parse_feedback(body: BlockActions) -> FeedbackClick | None:
    """The click in a ``block_actions`` payload of the feedback buttons (value ``good:ID`` or
    ``bad:ID``); None when malformed."""
    click = parse_button(body)
    rating, _, reply_id = str(click.value or "").partition(":")
    if rating not in ("good", "bad") or not reply_id or not click.user or not click.channel:
        return None
    container = _object(cast(dict[str, Any], body), "container")
    thread = container.get("thread_ts") or container.get("message_ts") or ""
    return FeedbackClick(
        team=click.team,
        channel=click.channel,
        user=click.user,
        thread_ts=str(thread),
        reply_id=reply_id,
        rating=cast(Rating, rating),
    )


@dataclass(frozen=True, slots=True)
class StopClick:
    """Someone pressed Stop on the bot's agent session (``agent_session_stopped``)."""

    key: PlatformKey
    user: str


def parse_stop(body: EventCallback) -> StopClick | None:
    """The thread of an ``agent_session_stopped`` event, if well formed."""
    found = _event_fields(body, "channel", "thread_ts")
    if found is None:
        return None
    event, (channel, thread) = found
    key = PlatformKey(
        platform="slack", workspace=str(body.get("team_id") or ""), channel=channel, thread=thread
    )
    return StopClick(key=key, user=str(event.get("user") or ""))


@dataclass(frozen=True, slots=True)
class HomeOpened:
    """Someone opened the bot's app home (``app_home_opened``) on one of its tabs."""

    team: str
    user: str
    channel: str
    tab: str


def parse_home_opened(body: EventCallback) -> HomeOpened | None:
    found = _event_fields(body, "user", "channel")
    if found is None:
        return None
    event, (user, channel) = found
    return HomeOpened(
        team=str(body.get("team_id") or ""),
        user=user,
        channel=channel,
        tab=str(event.get("tab") or ""),
    )


def _event_fields(
    body: EventCallback, *names: str
) -> tuple[dict[str, Any], tuple[str, ...]] | None:
    """An event callback's event and its fields ``names``, or None unless every one of them
    is a non-empty string."""
    event: object = body.get("event")
    if not isinstance(event, dict):
        return None
    values = tuple(event.get(name) for name in names)
    if not all(isinstance(value, str) and value for value in values):
        return None
    return event, cast(tuple[str, ...], values)


def is_dm_channel(channel_id: str, channel_name: str = "") -> bool:
    """Slash commands say ``directmessage`` for DMs; the id's ``D`` prefix says it too."""
    return channel_name == "directmessage" or bool(SLACK_IM_CHANNEL.match(channel_id))


def error_code(exc: BaseException) -> str:
    """What went wrong, for logs: Slack's error code, or the exception's class name."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or "slack_error")
    return exc.__class__.__name__
