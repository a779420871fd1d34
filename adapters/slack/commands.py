"""``/agent`` and its in-thread twins on Slack: who is calling, and the outcomes as Slack
messages. What each subcommand does, who may run it and what it says is :mod:`bot.commands`.

Slash commands carry no thread, so the subcommands about one conversation (``reset``,
``summary``, ``export``, ``forget``) work two ways: inside a thread by mentioning the bot with
the word alone (``@Parley summary``), and as ``/agent summary`` in a direct message, where they
act on the latest conversation of that DM. In a channel the slash form explains the mention.
``/agent memory`` answers the caller alone (an ephemeral response); in a DM it is about the
agent of the DM's latest conversation, in a channel about the channel's agent.

Admins are workspace admins and owners (``users.info``: ``is_admin``, ``is_owner``,
``is_primary_owner``); Slack does not tell an app who installed it, so the installer counts
only as one of those. A confirmation is an ephemeral message with two buttons; what the
buttons carry comes back signed by Slack and is checked again by the core.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.base import format_goal_check
from adapters.slack.blocks import forget_blocks, goal_check_blocks
from adapters.slack.format import escape, markdown_to_mrkdwn, safe_markdown, safe_plain_text
from adapters.slack.payloads import ButtonClick, SlashCommand, error_code, is_dm_channel
from adapters.slack.users import UserDirectory
from bot.commands import (
    AgentCommands as CoreCommands,
)
from bot.commands import (
    Caller,
    Command,
    FileToSend,
    GoalCheckToPost,
    NeedsConfirmation,
    OpenThread,
    Outcome,
    Pending,
    Refused,
    Said,
    Started,
    Verb,
    no_conversation,
    parse,
)
from bot.engine import Engine
from bot.lru import BoundedLRU
from config.agents import Agent
from memory.base import (
    Conversation,
    ConversationQuery,
    ConversationStore,
    GoalCheck,
    PlatformKey,
)

logger = logging.getLogger(__name__)

THREAD_VERBS: tuple[Verb, ...] = ("reset", "summary", "export", "forget")
ADMINS = "workspace admins and owners"

IN_THREADS = (
    "In a channel, use `reset`, `summary`, `export` and `forget` inside the conversation's "
    "thread: mention me with the word alone, like `@me summary`."
)
FILES_NOTE = "I can only read text for now, so I can't open files. Please type your message."
NOT_IN_CHANNEL = "I'm not in this channel yet: invite me with `/invite @me`, then try again."

Notify = Callable[[str], Awaitable[object]]
"""Tells the person who asked something only they see (an ephemeral message)."""

Respond = Callable[..., Awaitable[object]]
"""Bolt's ``respond``: answers through the command's or action's ``response_url``."""


def parse_agent_command(text: str) -> Command | None:
    """The subcommand in ``/agent``'s text, or None for input that is not one."""
    return parse(text)


def thread_command(text: str) -> Verb | None:
    """The in-thread command when ``text`` (the bot's mention removed) is the word alone."""
    word = text.strip().rstrip(".!").lower()
    for verb in THREAD_VERBS:
        if word == verb:
            return verb
    return None


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
        self._core = CoreCommands(engine)
        self._client = client
        self._users = users
        self._recent = recent
        self._bot_user_id = bot_user_id

    @property
    def usage(self) -> str:
        note = escape(IN_THREADS).replace("@me", f"<@{self._bot_user_id}>")
        return f"{markdown_to_mrkdwn(self._core.usage())}\n{note}"

    def _mention(self, text: str) -> str:
        return text.replace("@me", f"<@{self._bot_user_id}>")

    async def _caller(
        self, key: PlatformKey, user: str, *, named: bool = False, in_dm: bool | None = None
    ) -> Caller:
        """The person ``user`` at ``key``; their display name is looked up when the answer
        says it."""

        async def is_admin() -> bool:
            return await self._users.can_administer(user)

        return Caller(
            key=key,
            user_id=user,
            user_name=await self._users.display_name(user) if named else "",
            admins=ADMINS,
            is_admin=is_admin,
            in_dm=is_dm_channel(key.channel) if in_dm is None else in_dm,
        )

    # /agent ------------------------------------------------------------------------------

    async def slash(self, command: SlashCommand, respond: Respond) -> None:
        parsed = parse_agent_command(command.text)
        if parsed is None or parsed.verb == "help":
            await respond(text=self.usage)
            return
        if parsed.verb in THREAD_VERBS:
            await self._about_conversation(command, parsed.verb, respond)
            return
        in_dm = is_dm_channel(command.channel, command.channel_name)
        thread = ""
        if parsed.verb == "memory" and in_dm:  # the agent of the DM's latest conversation
            thread = await self._recent.latest(command.team, command.channel) or ""
        key = PlatformKey(
            platform="slack", workspace=command.team, channel=command.channel, thread=thread
        )
        caller = await self._caller(key, command.user, named=parsed.verb == "use", in_dm=in_dm)

        async def private(text: str) -> None:
            await respond(text=text)

        async def public(markdown: str) -> None:
            await respond(response_type="in_channel", text=markdown_to_mrkdwn(markdown))

        outcome = await self._core.run(parsed, caller)
        await self._show(outcome, caller, private=private, public=public)

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
            await respond(text=no_conversation(verb))
            return
        key = PlatformKey(
            platform="slack", workspace=command.team, channel=command.channel, thread=thread
        )
        await self.run(verb, key=key, user=command.user, notify=lambda text: respond(text=text))

    # one conversation --------------------------------------------------------------------

    async def run(self, verb: Verb, *, key: PlatformKey, user: str, notify: Notify) -> None:
        """``reset``, ``summary``, ``export`` or ``forget`` the conversation at ``key``."""
        caller = await self._caller(key, user)
        outcome = await self._core.run(Command(verb), caller)

        async def public(text: str) -> None:
            await self._post(key, text)

        await self._show(outcome, caller, private=notify, public=public)

    async def _show(
        self, outcome: Outcome, caller: Caller, *, private: Notify, public: Notify
    ) -> None:
        """Show an outcome: ``private`` reaches the caller alone (given mrkdwn: a response URL
        or an ephemeral message), ``public`` the place (given Markdown, which a thread shows
        as replies are shown)."""
        if isinstance(outcome, Said):
            if outcome.private:
                await private(markdown_to_mrkdwn(outcome.text))
            else:
                await public(outcome.text)
        elif isinstance(outcome, Refused):
            await private(markdown_to_mrkdwn(outcome.reason))
        elif isinstance(outcome, Started):
            await public(f"{outcome.note}\n\n{outcome.agent.first_message}")
            self._recent.note(outcome.conversation.key)
        elif isinstance(outcome, GoalCheckToPost):
            await self.post_goal_check(
                outcome.conversation, outcome.check, outcome.agent, channel=None
            )
        elif isinstance(outcome, FileToSend):
            await self._upload(outcome, private)
        elif isinstance(outcome, NeedsConfirmation):
            await self._ask(outcome, caller)
        elif isinstance(outcome, OpenThread):
            await self._open_thread(outcome.agent, caller, private)

    async def _open_thread(self, agent: Agent, caller: Caller, private: Notify) -> None:
        """``start``: a new top-level message with the agent's first message; its thread is
        the conversation."""
        try:
            posted = await self._client.chat_postMessage(
                channel=caller.key.channel, markdown_text=safe_markdown(agent.first_message)
            )
        except SlackApiError as exc:
            if error_code(exc) in {"not_in_channel", "channel_not_found"}:
                await private(self._mention(NOT_IN_CHANNEL))
                return
            raise
        key = PlatformKey(
            platform="slack",
            workspace=caller.key.workspace,
            channel=caller.key.channel,
            thread=posted["ts"],
        )
        await self._core.thread_opened(caller, agent, key)
        self._recent.note(key)

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

    async def _upload(self, file: FileToSend, private: Notify) -> None:
        """Files cannot be ephemeral on Slack: the export goes into the conversation's thread,
        where everyone who sees it could read the conversation anyway."""
        key = file.conversation.key
        try:
            await self._client.files_upload_v2(
                channel=key.channel,
                thread_ts=key.thread,
                content=file.content,
                filename=file.name,
                title=safe_plain_text(file.title),
                initial_comment=markdown_to_mrkdwn(file.comment),
            )
        except SlackApiError as exc:
            logger.warning("export upload failed: %s", error_code(exc))
            await private(f"I couldn't upload the file ({error_code(exc)}).")

    async def _ask(self, question: NeedsConfirmation, caller: Caller) -> None:
        await self._client.chat_postEphemeral(
            channel=caller.key.channel,
            user=caller.user_id,
            thread_ts=caller.key.thread or None,
            text=escape(question.prompt),
            blocks=forget_blocks(
                question.action.encode(),
                question=question.prompt,
                confirm=question.confirm_label,
                cancel=question.cancel_label,
            ),
        )

    # the confirmation buttons ------------------------------------------------------------

    async def forget_confirmed(self, click: ButtonClick, respond: Respond) -> None:
        action = Pending.decode(click.value)
        clicker = click.user
        if action is None:
            await respond(delete_original=True)
            return
        team, channel = click.team, click.channel
        conversation = await self._engine.store.get_conversation(
            conversation_id=action.conversation_id
        )
        thread = conversation.key.thread if conversation is not None else ""
        key = PlatformKey(platform="slack", workspace=team, channel=channel, thread=thread)
        caller = await self._caller(key, clicker, named=True)
        outcome = await self._core.confirm(action, caller)
        if isinstance(outcome, Refused):
            await respond(
                response_type="ephemeral",
                replace_original=clicker != action.user_id,
                text=markdown_to_mrkdwn(outcome.reason),
            )
            return
        await respond(delete_original=True)
        await self._post(key, outcome.text)

    async def forget_cancelled(self, respond: Respond) -> None:
        await respond(replace_original=True, text=markdown_to_mrkdwn(self._core.cancel().text))

    async def _post(self, key: PlatformKey, markdown: str) -> None:
        """Post Markdown in the place's thread, as replies are posted."""
        await self._client.chat_postMessage(
            channel=key.channel, thread_ts=key.thread or None, markdown_text=safe_markdown(markdown)
        )
