"""The subcommands themselves, run against the engine for any platform."""

from __future__ import annotations

import logging

from bot.commands.memories import PersonMemories
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
    ALREADY_GONE,
    FORGET_PROMPT,
    GOAL_CHECK_FAILED,
    IN_DM,
    KEPT,
    LEGACY_OPENED_BY,
    NO_GOAL,
    NOT_YOURS,
    OPENED_BY,
    PERMISSIONS,
    RESET_NOTE,
    Command,
    Rule,
    Verb,
    no_conversation,
    refusal,
)
from bot.commands.usage import AgentUsage
from bot.engine import Engine, NoGoal, UnknownAgent
from config.agents import Agent
from memory.base import Conversation, PlatformKey
from memory.export import export_conversation

logger = logging.getLogger(__name__)


class AgentCommands:
    """Runs the subcommands against the engine for any platform."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._memories = PersonMemories(engine.store)
        self._usage = AgentUsage(engine.usage)

    def usage(self, prefix: str = "/agent ") -> str:
        lines = [f"**Usage:** `{prefix}<subcommand>`"]
        for verb, rule in PERMISSIONS.items():
            who = "" if rule.who == "anyone" else f" ({rule.who})"
            lines.append(f"• `{prefix}{verb}{rule.argument}`: {rule.does}{who}")
        return "\n".join(lines)

    async def run(self, command: Command, caller: Caller) -> Outcome:
        """Check the permission table, then do the subcommand."""
        rule = PERMISSIONS[command.verb]
        conversation = await self._engine.store.find_conversation(key=caller.key)
        refused = await self._check(command.verb, rule, caller, conversation)
        if refused is not None:
            return refused
        if PERMISSIONS[command.verb].needs_conversation:
            return await self._about(command.verb, caller, _required(conversation))
        return await self._anywhere(command, caller, conversation)

    async def _check(
        self, verb: Verb, rule: Rule, caller: Caller, conversation: Conversation | None
    ) -> Refused | None:
        if caller.in_dm and not rule.in_dm:
            return Refused(IN_DM)
        if rule.needs_conversation and conversation is None:
            return Refused(no_conversation(verb))
        if not await self._allowed(rule, caller, conversation):
            return Refused(refusal(verb, admins=caller.admins, prefix=caller.prefix))
        return None

    async def _anywhere(
        self, command: Command, caller: Caller, conversation: Conversation | None
    ) -> Outcome:
        """The subcommands that need no conversation here."""
        verb, argument = command.verb, command.argument
        if verb == "help":
            return Said(self.usage(caller.prefix))
        if verb == "list":
            return Said(await self._list(caller, conversation))
        if verb == "use":
            return await self._use(caller, argument, conversation)
        if verb == "start":
            return await self._start(caller, argument, conversation)
        if verb == "usage":
            agent = await self.agent_here(caller, conversation)
            return Said(await self._usage.run(agent, conversation))
        return await self._memory(caller, argument, conversation)

    async def _about(self, verb: Verb, caller: Caller, conversation: Conversation) -> Outcome:
        """The subcommands about the conversation here."""
        if verb == "reset":
            agent = self._engine.agent_of(conversation)
            return await self._afresh(caller, conversation, agent, RESET_NOTE)
        if verb == "summary":
            return await self._summary(conversation)
        if verb == "export":
            return await self._export(conversation)
        return NeedsConfirmation(FORGET_PROMPT, Pending("forget", conversation.id, caller.user_id))

    async def confirm(self, action: Pending, caller: Caller) -> Said | Refused:
        """Do what the caller confirmed; only the person who asked may, in the same place,
        and only while they still may."""
        if caller.user_id != action.user_id:
            return Refused(NOT_YOURS)
        conversation = await self._engine.store.get_conversation(
            conversation_id=action.conversation_id
        )
        if conversation is None or not _same_place(conversation.key, caller.key):
            return Refused(ALREADY_GONE)
        if not await self._allowed(PERMISSIONS["forget"], caller, conversation):
            return Refused(refusal("forget", admins=caller.admins, prefix=caller.prefix))
        await self._engine.forget(conversation)
        logger.info("conversation %s forgotten at %s's request", conversation.id, caller.user_id)
        who = caller.user_name or "you"
        return Said(
            f"I have forgotten this conversation and its {conversation.message_count} "
            f"messages, as {who} asked.",
            private=False,
        )

    def cancel(self) -> Said:
        return Said(KEPT)

    async def thread_opened(self, caller: Caller, agent: Agent, key: PlatformKey) -> Conversation:
        """Record the conversation of a thread the platform opened for ``start``."""
        conversation, _ = await self._engine.open_conversation(
            key=key, agent_id=agent.id, data={OPENED_BY: caller.user_id}
        )
        logger.info("conversation %s opened with %s by start", conversation.id, agent.id)
        return conversation

    async def agent_here(self, caller: Caller, conversation: Conversation | None = None) -> Agent:
        """The open conversation's agent, else the channel's (or its parent's) binding, else
        the default agent."""
        if conversation is None:
            conversation = await self._engine.store.find_conversation(key=caller.key)
        if conversation is not None:
            return self._engine.agent_of(conversation)
        platform = caller.key.platform
        default = self._engine.agents.default
        if platform not in ("slack", "discord") or caller.in_dm:
            return default
        for channel in (caller.key.channel, caller.parent_channel):
            if channel:
                agent = await self._engine.agent_for_channel(
                    platform=platform, workspace=caller.key.workspace, channel=channel
                )
                if agent.id != default.id:
                    return agent
        return default

    # each subcommand -----------------------------------------------------------------------

    async def _allowed(self, rule: Rule, caller: Caller, conversation: Conversation | None) -> bool:
        if rule.who == "anyone":
            return True
        if (
            rule.who == "admins or the opener"
            and conversation is not None
            and await self._opened_by(caller, conversation)
        ):
            return True
        return await caller.is_admin()

    async def _opened_by(self, caller: Caller, conversation: Conversation) -> bool:
        if caller.in_dm or caller.owns_place:
            return True
        data = conversation.data
        if caller.user_id in (data.get(OPENED_BY), data.get(LEGACY_OPENED_BY)):
            return True
        thread = conversation.key.thread
        if not thread:
            return False
        first = await self._engine.store.list_messages(conversation_id=conversation.id, limit=3)
        root = next((m for m in first if m.platform_message_id == thread), None)
        return root is not None and root.author_id == caller.user_id

    async def _list(self, caller: Caller, conversation: Conversation | None) -> str:
        here = await self.agent_here(caller, conversation)
        default = self._engine.agents.default
        lines = [f"**Agents** (new conversations here talk to **{here.name}**):"]
        for agent in self._engine.agents.agents:
            marks = [
                mark
                for mark, on in (("here", agent.id == here.id), ("default", agent.id == default.id))
                if on
            ]
            lines.append(
                f"• `{agent.id}`: {agent.name}" + (f" ({', '.join(marks)})" if marks else "")
            )
        lines.append(
            f"Start a conversation with one: `{caller.prefix}start ID`. "
            f"Admins choose the agent here: `{caller.prefix}use ID`."
        )
        return "\n".join(lines)

    def _find(self, agent_id: str) -> Agent | Refused:
        agent = self._engine.agents.find(agent_id)
        if agent is not None:
            return agent
        known = ", ".join(f"`{a.id}`" for a in self._engine.agents.agents)
        return Refused(f"There is no agent `{agent_id}`. Agents: {known}.")

    async def _use(
        self, caller: Caller, agent_id: str, conversation: Conversation | None
    ) -> Outcome:
        found = self._find(agent_id)
        if isinstance(found, Refused):
            return found
        platform = caller.key.platform
        if platform in ("slack", "discord"):
            try:
                await self._engine.bind_channel(
                    platform=platform,
                    workspace=caller.key.workspace,
                    channel=caller.key.channel,
                    agent_id=found.id,
                )
            except UnknownAgent:  # removed meanwhile from the stored agents
                return Refused(f"There is no agent `{agent_id}`.")
        logger.info("agent %s chosen for %s by %s", found.id, caller.key.canonical, caller.user_id)
        chosen = f"**{found.name}** now answers new conversations here"
        chosen += f" (chosen by {caller.user_name})." if caller.user_name else "."
        if conversation is None or conversation.agent_id == found.id:
            return Said(chosen, private=False)
        previous = self._engine.agent_of(conversation)
        note = f"{chosen} The conversation with {previous.name} is closed (and kept)."
        return await self._afresh(caller, conversation, found, note)

    async def _start(
        self, caller: Caller, agent_id: str, conversation: Conversation | None
    ) -> Outcome:
        if agent_id:
            found = self._find(agent_id)
            if isinstance(found, Refused):
                return found
        else:
            found = await self.agent_here(caller, conversation)
        if caller.opens_threads:
            return OpenThread(found)
        if conversation is None:
            opened, _ = await self._engine.open_conversation(
                key=caller.key, agent_id=found.id, data={OPENED_BY: caller.user_id}
            )
            return Started(f"New conversation with {found.name}.", found, opened)
        note = f"New conversation with {found.name} (the previous one is kept)."
        return await self._afresh(caller, conversation, found, note, opener=caller.user_id)

    async def _afresh(
        self,
        caller: Caller,
        conversation: Conversation,
        agent: Agent,
        note: str,
        *,
        opener: str | None = None,
    ) -> Started:
        """Close ``conversation`` (kept) and open a new one here with ``agent``; the new one
        keeps the old one's opener unless another is given."""
        if opener is None:
            opener = await self._opener_of(conversation)
        await self._engine.reset(caller.key)
        opened, _ = await self._engine.open_conversation(
            key=caller.key, agent_id=agent.id, data={OPENED_BY: opener} if opener else None
        )
        return Started(note, agent, opened)

    async def _opener_of(self, conversation: Conversation) -> str | None:
        for name in (OPENED_BY, LEGACY_OPENED_BY):
            value = conversation.data.get(name)
            if isinstance(value, str) and value:
                return value
        thread = conversation.key.thread
        if not thread:
            return None
        first = await self._engine.store.list_messages(conversation_id=conversation.id, limit=3)
        root = next((m for m in first if m.platform_message_id == thread), None)
        return root.author_id if root is not None and root.author_id else None

    async def _memory(
        self, caller: Caller, argument: str, conversation: Conversation | None
    ) -> Said | Refused:
        """What the agent here remembers about the caller, and only the caller."""
        agent = await self.agent_here(caller, conversation)
        return await self._memories.run(
            agent,
            key=caller.key,
            person=caller.user_id,
            argument=argument,
            prefix=caller.prefix,
        )

    async def _summary(self, conversation: Conversation) -> Outcome:
        agent = self._engine.agent_of(conversation)
        try:
            check = await self._engine.check_goal(conversation.id)
        except NoGoal:
            return Refused(NO_GOAL.format(agent=agent.name))
        if check.error:
            logger.warning("goal check of %s failed: %s", conversation.id, check.error)
            return Refused(GOAL_CHECK_FAILED)
        return GoalCheckToPost(conversation, agent, check)

    async def _export(self, conversation: Conversation) -> FileToSend:
        markdown = await export_conversation(
            self._engine.store, conversation_id=conversation.id, fmt="md"
        )
        return FileToSend(
            name=f"conversation-{conversation.id}.md",
            content=markdown.encode("utf-8"),
            title=conversation.title or "Conversation",
            comment=f"This conversation as Markdown ({conversation.message_count} messages).",
            conversation=conversation,
        )


def _required(conversation: Conversation | None) -> Conversation:
    if conversation is None:  # the permission table said the subcommand needs one
        raise RuntimeError("no conversation")
    return conversation


def _same_place(conversation: PlatformKey, caller: PlatformKey) -> bool:
    """A confirmation comes back from where the conversation lives (defence in depth: a
    conversation id alone must not reach another place)."""
    return (conversation.platform, conversation.workspace, conversation.channel) == (
        caller.platform,
        caller.workspace,
        caller.channel,
    )
