"""``/agent`` and its in-thread twins.

Slash commands carry no thread, so the subcommands about one conversation (``reset``,
``summary``, ``export``, ``forget``) work two ways: inside a thread by mentioning the bot with
the word alone (``@Parley summary``), and as ``/agent summary`` in a direct message, where they
act on the latest conversation of that DM. In a channel the slash form explains the mention.

``use`` binds the channel for new conversations and is for workspace admins and owners
(``users.info``: ``is_admin``, ``is_owner``, ``is_primary_owner``); Slack does not tell an app
who installed it, so the installer counts only as one of those.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.console import format_goal_check
from adapters.slack_blocks import ForgetRequest, forget_blocks, goal_check_blocks
from adapters.slack_format import escape, markdown_to_mrkdwn, safe_plain_text
from adapters.slack_payloads import error_code, is_dm_channel
from adapters.slack_users import UserDirectory
from bot.engine import Engine, NoGoal, UnknownAgent
from bot.lru import BoundedLRU
from config.agents import Agent
from memory.base import (
    Conversation,
    ConversationQuery,
    ConversationStore,
    GoalCheck,
    PlatformKey,
)
from memory.export import export_conversation

logger = logging.getLogger(__name__)

Verb = Literal["help", "list", "use", "start", "reset", "summary", "export", "forget"]
THREAD_VERBS: tuple[Verb, ...] = ("reset", "summary", "export", "forget")

USAGE = """\
*Usage:* `/agent <subcommand>`
• `/agent list`: the agents you can talk to
• `/agent use ID`: new conversations in this channel talk to agent ID (workspace admins)
• `/agent start ID`: I open a new thread here with agent ID
• `/agent reset`: the next message starts a new conversation
• `/agent summary`: check the conversation's goal now
• `/agent export`: upload the conversation as a Markdown file
• `/agent forget`: delete the conversation and its messages (I ask first)
In a channel, use the last four inside the conversation's thread: mention me with the word \
alone, like `@me summary`."""

NO_CONVERSATION = "There is no conversation with me here yet."
FILES_NOTE = "I can only read text for now, so I can't open files. Please type your message."
NOT_IN_CHANNEL = "I'm not in this channel yet: invite me with `/invite @me`, then try again."
GOAL_CHECK_FAILED = "I couldn't check the goal just now. Please try again later."

Notify = Callable[[str], Awaitable[object]]
"""Tells the person who asked something only they see (an ephemeral message)."""

Respond = Callable[..., Awaitable[object]]
"""Bolt's ``respond``: answers through the command's or action's ``response_url``."""


@dataclass(frozen=True, slots=True)
class AgentCommand:
    verb: Verb
    argument: str = ""


def parse_agent_command(text: str) -> AgentCommand | None:
    """The subcommand in ``/agent``'s text, or None for input that is not one."""
    words = text.split()
    if not words:
        return AgentCommand("help")
    verb, arguments = words[0].lower(), words[1:]
    if verb in {"help", "list"} and not arguments:
        return AgentCommand("help" if verb == "help" else "list")
    if verb in {"use", "start"} and len(arguments) == 1:
        return AgentCommand("use" if verb == "use" else "start", arguments[0].strip("`").lower())
    for thread_verb in THREAD_VERBS:
        if verb == thread_verb and not arguments:
            return AgentCommand(thread_verb)
    return None


def thread_command(text: str) -> Verb | None:
    """The in-thread command when ``text`` (the bot's mention removed) is the word alone."""
    word = text.strip().rstrip(".!").lower()
    for verb in THREAD_VERBS:
        if word == verb:
            return verb
    return None


@dataclass(frozen=True, slots=True)
class SlashCommand:
    team: str
    channel: str
    channel_name: str
    user: str
    text: str

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> SlashCommand:
        return cls(
            team=str(payload.get("team_id") or ""),
            channel=str(payload.get("channel_id") or ""),
            channel_name=str(payload.get("channel_name") or ""),
            user=str(payload.get("user_id") or ""),
            text=str(payload.get("text") or ""),
        )


class RecentThreads:
    """The latest conversation thread per DM, for the slash commands that need one.

    Remembered as conversations are used (bounded); after a restart the store is asked for
    the most recently updated open conversations of the workspace.
    """

    def __init__(self, store: ConversationStore, *, capacity: int = 10_000) -> None:
        self._store = store
        self._latest: BoundedLRU[tuple[str, str], str] = BoundedLRU(capacity)

    def note(self, key: PlatformKey) -> None:
        self._latest.put((key.workspace, key.channel), key.thread)

    async def latest(self, team: str, channel: str) -> str | None:
        known = self._latest.get((team, channel))
        if known is not None:
            return known
        page = await self._store.list_conversations(
            ConversationQuery(platform="slack", workspace=team, include_closed=False, limit=200)
        )
        for conversation in page.items:
            if conversation.key.channel == channel:
                self.note(conversation.key)
                return conversation.key.thread
        return None


class AgentCommands:
    """Runs ``/agent`` subcommands and their in-thread forms, after they were acknowledged."""

    def __init__(
        self,
        *,
        engine: Engine,
        client: AsyncWebClient,
        users: UserDirectory,
        recent: RecentThreads,
        bot_user_id: str,
    ) -> None:
        self._engine = engine
        self._client = client
        self._users = users
        self._recent = recent
        self._bot_user_id = bot_user_id

    @property
    def usage(self) -> str:
        return USAGE.replace("@me", f"<@{self._bot_user_id}>")

    # /agent ------------------------------------------------------------------------------

    async def slash(self, command: SlashCommand, respond: Respond) -> None:
        parsed = parse_agent_command(command.text)
        if parsed is None or parsed.verb == "help":
            await respond(text=self.usage)
        elif parsed.verb == "list":
            await respond(text=await self._list(command))
        elif parsed.verb == "use":
            await self._use(command, parsed.argument, respond)
        elif parsed.verb == "start":
            await self._start(command, parsed.argument, respond)
        else:
            await self._about_conversation(command, parsed.verb, respond)

    async def _list(self, command: SlashCommand) -> str:
        here = await self._engine.agent_for_channel(
            platform="slack", workspace=command.team, channel=command.channel
        )
        lines = [f"*Agents* (new conversations here talk to *{escape(here.name)}*):"]
        for agent in self._engine.agents.agents:
            marker = " (this channel)" if agent.id == here.id else ""
            lines.append(f"• `{agent.id}`: {escape(agent.name)}{marker}")
        lines.append(
            "Start a thread with one: `/agent start ID`. Admins choose this channel's agent: "
            "`/agent use ID`."
        )
        return "\n".join(lines)

    async def _use(self, command: SlashCommand, agent_id: str, respond: Respond) -> None:
        if not await self._users.can_administer(command.user):
            await respond(
                text="Only workspace admins and owners can choose this channel's agent. "
                "You can still start a thread with any agent: `/agent start ID`."
            )
            return
        try:
            agent = await self._engine.bind_channel(
                platform="slack", workspace=command.team, channel=command.channel, agent_id=agent_id
            )
        except UnknownAgent:
            await respond(text=self._unknown_agent(agent_id))
            return
        logger.info("channel %s bound to agent %s by %s", command.channel, agent.id, command.user)
        await respond(
            response_type="in_channel",
            text=f"<@{command.user}> chose *{escape(agent.name)}* for this channel: "
            "new conversations here talk to it.",
        )

    async def _start(self, command: SlashCommand, agent_id: str, respond: Respond) -> None:
        agent = self._engine.agents.find(agent_id)
        if agent is None:
            await respond(text=self._unknown_agent(agent_id))
            return
        try:
            posted = await self._client.chat_postMessage(
                channel=command.channel, text=markdown_to_mrkdwn(agent.first_message)
            )
        except SlackApiError as exc:
            if error_code(exc) in {"not_in_channel", "channel_not_found"}:
                await respond(text=NOT_IN_CHANNEL.replace("@me", f"<@{self._bot_user_id}>"))
                return
            raise
        key = PlatformKey(
            platform="slack", workspace=command.team, channel=command.channel, thread=posted["ts"]
        )
        await self._engine.open_conversation(key=key, agent_id=agent.id)
        self._recent.note(key)

    async def _about_conversation(
        self, command: SlashCommand, verb: Verb, respond: Respond
    ) -> None:
        if not is_dm_channel(command.channel, command.channel_name):
            await respond(
                text=f"In a channel, do this inside the conversation's thread: mention me with "
                f"the word alone, `<@{self._bot_user_id}> {verb}`."
            )
            return
        thread = await self._recent.latest(command.team, command.channel)
        if thread is None:
            await respond(text=NO_CONVERSATION)
            return
        key = PlatformKey(
            platform="slack", workspace=command.team, channel=command.channel, thread=thread
        )
        await self.run(verb, key=key, user=command.user, notify=lambda text: respond(text=text))

    def _unknown_agent(self, agent_id: str) -> str:
        known = ", ".join(f"`{agent.id}`" for agent in self._engine.agents.agents)
        return f"There is no agent `{escape(agent_id)}`. Agents: {known}."

    # one conversation --------------------------------------------------------------------

    async def run(self, verb: Verb, *, key: PlatformKey, user: str, notify: Notify) -> None:
        """``reset``, ``summary``, ``export`` or ``forget`` the conversation at ``key``."""
        if verb == "reset":
            await self._reset(key, notify)
            return
        conversation = await self._engine.store.find_conversation(key=key)
        if conversation is None:
            await notify(NO_CONVERSATION)
        elif verb == "summary":
            await self._summary(conversation, notify)
        elif verb == "export":
            await self._export(conversation, notify)
        elif verb == "forget":
            await self._ask_to_forget(conversation, user)

    async def _reset(self, key: PlatformKey, notify: Notify) -> None:
        if not await self._engine.reset(key):
            await notify(NO_CONVERSATION)
            return
        if is_dm_channel(key.channel):
            line = "Starting afresh: your next message here begins a new conversation."
        else:
            line = (
                f"Starting afresh: mention <@{self._bot_user_id}> here to begin a new conversation."
            )
        await self._post(key, line)

    async def _summary(self, conversation: Conversation, notify: Notify) -> None:
        try:
            check = await self._engine.check_goal(conversation.id)
        except NoGoal:
            agent = self._engine.agent_of(conversation)
            await notify(f"{escape(agent.name)} has no goal to check.")
            return
        if check.error:
            await notify(GOAL_CHECK_FAILED)
            return
        agent = self._engine.agent_of(conversation)
        await self.post_goal_check(conversation, check, agent, channel=None)

    async def post_goal_check(
        self, conversation: Conversation, check: GoalCheck, agent: Agent, *, channel: str | None
    ) -> None:
        """Post a goal check in the conversation's thread, or in a report ``channel`` with a
        line saying which conversation it is about. Slack errors propagate to the caller."""
        blocks = goal_check_blocks(check, agent_name=agent.name)
        if channel is None:
            await self._client.chat_postMessage(
                channel=conversation.key.channel,
                thread_ts=conversation.key.thread or None,
                text=escape(format_goal_check(check)),
                blocks=blocks,
            )
            return
        title = escape(conversation.title or "Conversation")
        about = f"{title} · <#{conversation.key.channel}> · `{conversation.id}`"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": about}]})
        text = escape(f"{conversation.title}: {format_goal_check(check)}")
        await self._client.chat_postMessage(channel=channel, text=text, blocks=blocks)

    async def _export(self, conversation: Conversation, notify: Notify) -> None:
        markdown = await export_conversation(
            self._engine.store, conversation_id=conversation.id, fmt="md"
        )
        try:
            await self._client.files_upload_v2(
                channel=conversation.key.channel,
                thread_ts=conversation.key.thread,
                content=markdown,
                filename=f"conversation-{conversation.id}.md",
                title=safe_plain_text(conversation.title or "Conversation"),
                initial_comment="This conversation, as Markdown.",
            )
        except SlackApiError as exc:
            logger.warning("export upload failed: %s", error_code(exc))
            await notify(f"I couldn't upload the file ({error_code(exc)}).")

    async def _ask_to_forget(self, conversation: Conversation, user: str) -> None:
        request = ForgetRequest(conversation_id=conversation.id, user=user)
        await self._client.chat_postEphemeral(
            channel=conversation.key.channel,
            user=user,
            thread_ts=conversation.key.thread,
            text="Forget this conversation? I will delete it and all its messages.",
            blocks=forget_blocks(request),
        )

    # the forget buttons ------------------------------------------------------------------

    async def forget_confirmed(self, body: dict[str, Any], respond: Respond) -> None:
        request = ForgetRequest.decode(_action_value(body))
        clicker = str((body.get("user") or {}).get("id") or "")
        if request is None:
            await respond(delete_original=True)
            return
        if clicker != request.user:
            await respond(
                response_type="ephemeral",
                replace_original=False,
                text=f"Only <@{request.user}>, who asked, can confirm this.",
            )
            return
        conversation = await self._engine.store.get_conversation(
            conversation_id=request.conversation_id
        )
        if conversation is None or not _same_place(conversation, body):
            await respond(replace_original=True, text="That conversation is already gone.")
            return
        await self._engine.forget(conversation)
        logger.info("conversation %s forgotten at %s's request", conversation.id, clicker)
        await respond(delete_original=True)
        await self._post(
            conversation.key,
            f"I have forgotten this conversation and its messages, as <@{clicker}> asked.",
        )

    async def forget_cancelled(self, respond: Respond) -> None:
        await respond(delete_original=True)

    async def _post(self, key: PlatformKey, text: str) -> None:
        await self._client.chat_postMessage(channel=key.channel, thread_ts=key.thread, text=text)


def _action_value(body: dict[str, Any]) -> object:
    actions = body.get("actions")
    if isinstance(actions, list) and actions and isinstance(actions[0], dict):
        return actions[0].get("value")
    return None


def _same_place(conversation: Conversation, body: dict[str, Any]) -> bool:
    """The button was clicked where the conversation lives (defence in depth: button values
    come back from Slack signed, but a conversation id alone must not reach another place)."""
    team = (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id")
    channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get(
        "id"
    )
    key = conversation.key
    return key.platform == "slack" and key.workspace == team and key.channel == channel
