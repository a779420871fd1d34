"""The agent engine: one turn of a conversation, goal checks and the rolling summary.

A turn stores the user's message before the model is called, builds the prompt within the
agent's token budget, streams the visible reply, stores the reply, and (off the critical
path) folds turns that fell out of the budget into the rolling summary. Turns of one
conversation run strictly in order; different conversations run concurrently.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from bot.errors import NotFound, ParleyError
from bot.llm import ChatRequest, ModelClient, ModelError
from bot.locks import KeyedLocks
from bot.logs import conversation_context
from bot.prompt import (
    MESSAGE_OVERHEAD_TOKENS,
    ChatMessage,
    Prompt,
    build_prompt,
    history_content,
    usable_history,
    user_content,
)
from bot.structured import Generated, StructuredReplies
from bot.tokens import TokenCounter
from config.agents import Agent, AgentsFile
from memory.base import (
    Conversation,
    ConversationStore,
    GoalCheck,
    Message,
    NewGoalCheck,
    NewMessage,
    PlatformKey,
)

logger = logging.getLogger(__name__)

GOAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "goal_reached": {"type": "boolean", "description": "true when the goal has been reached"},
        "summary": {"type": "string", "description": "what happened, in one to three sentences"},
        "missing": {
            "type": "array",
            "items": {"type": "string"},
            "description": "what is still needed to reach the goal; empty when reached",
        },
    },
    "required": ["goal_reached", "summary", "missing"],
    "additionalProperties": False,
}
SUMMARY_MARKER = "[parley:summary]"
GOAL_MARKER = "[parley:goal]"
_PAGE = 64
_TITLE_LENGTH = 80
_SUMMARY_MAX_TOKENS = 500


class EngineBusy(ParleyError):
    """Too many turns are waiting; the caller should ask the person to try again shortly."""


class UnknownAgent(ParleyError):
    """No agent has that id."""


class NoGoal(ParleyError):
    """The conversation's agent has no goal to check."""


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A platform-neutral message on its way to an agent."""

    key: PlatformKey
    text: str
    author_id: str = ""
    author_name: str = ""
    platform_message_id: str | None = None
    agent_id: str | None = None
    """The agent for a new conversation here (a channel binding); default agent if None."""


@dataclass(frozen=True, slots=True)
class TurnResult:
    conversation: Conversation
    user_message: Message
    reply: Message
    text: str
    """What people see."""
    data: dict[str, Any] | None
    """The whole structured reply, when the agent has a response shape and it was valid."""
    failed: bool = False
    """The model failed; ``text`` is the agent's apology."""
    closed: bool = False
    """The conversation reached ``max_turns`` and was closed with a polite last line."""


class Turn:
    """A turn in progress: iterate it for the visible text as it grows, await its result.

    The turn runs in its own task, so a reader that stops early (a client that disconnects)
    does not stop the turn: it completes and is stored. Readers see the latest text, never a
    backlog, so a slow reader cannot make memory grow.
    """

    def __init__(self) -> None:
        self._text = ""
        self._changed = asyncio.Event()
        self._result: asyncio.Future[TurnResult] = asyncio.get_running_loop().create_future()

    def _show(self, text: str) -> None:
        if text and text != self._text:
            self._text = text
            self._changed.set()

    def _finish(self, result: TurnResult) -> None:
        self._show(result.text)
        if not self._result.done():
            self._result.set_result(result)
        self._changed.set()

    def _fail(self, exc: BaseException) -> None:
        if not self._result.done():
            self._result.set_exception(exc)
            self._result.exception()  # marks it retrieved: readers may have gone
        self._changed.set()

    @property
    def text(self) -> str:
        return self._text

    async def __aiter__(self) -> AsyncIterator[str]:
        shown = ""
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._text != shown:
                shown = self._text
                yield shown
            if self._result.done():
                if self._text != shown:
                    yield self._text
                return

    async def result(self) -> TurnResult:
        return await asyncio.shield(self._result)


class Engine:
    """Runs turns, goal checks and summaries for every agent over one store and one model."""

    def __init__(
        self,
        *,
        store: ConversationStore,
        agents: AgentsFile,
        model: ModelClient,
        tokens: TokenCounter,
        default_model: str,
        max_pending_turns: int = 10_000,
        summary_concurrency: int = 2,
    ) -> None:
        self._store = store
        self._agents = agents
        self._model = model
        self._replies = StructuredReplies(model)
        self._tokens = tokens
        self._default_model = default_model
        self._locks = KeyedLocks()
        self._max_pending = max_pending_turns
        self._turns: set[asyncio.Task[None]] = set()
        self._summaries: dict[str, asyncio.Task[None]] = {}
        self._summary_slots = asyncio.Semaphore(summary_concurrency)
        self._max_summaries = max_pending_turns

    @property
    def agents(self) -> AgentsFile:
        return self._agents

    @property
    def store(self) -> ConversationStore:
        return self._store

    @property
    def pending_turns(self) -> int:
        return len(self._turns)

    @property
    def locked_conversations(self) -> int:
        """Conversations with a turn running or waiting: the size of the lock table."""
        return len(self._locks)

    def agent_of(self, conversation: Conversation) -> Agent:
        agent = self._agents.find(conversation.agent_id)
        if agent is None:
            logger.warning(
                "agent %r is no longer defined; using the default agent",
                conversation.agent_id,
                extra=_context(conversation),
            )
            return self._agents.default
        return agent

    def model_for(self, agent: Agent) -> str:
        return agent.effective_model(self._default_model)

    def count_tokens(self, text: str, agent: Agent) -> int:
        return self._tokens.count(text, self.model_for(agent))

    async def agent_for_channel(
        self, *, platform: Literal["slack", "discord"], workspace: str, channel: str
    ) -> Agent:
        """The agent for new conversations in a channel: one bound with ``/agent use``, else
        the agents file's binding, else the default agent."""
        bound = await self._store.channel_agent(
            platform=platform, workspace=workspace, channel=channel
        )
        if bound is not None:
            agent = self._agents.find(bound)
            if agent is not None:
                return agent
        return self._agents.for_channel(platform, channel, workspace=workspace)

    async def bind_channel(
        self, *, platform: Literal["slack", "discord"], workspace: str, channel: str, agent_id: str
    ) -> Agent:
        """Bind a channel to an agent for its new conversations (``/agent use``)."""
        agent = self._agents.find(agent_id)
        if agent is None:
            known = ", ".join(a.id for a in self._agents.agents)
            raise UnknownAgent(f"no agent {agent_id!r} (agents: {known})")
        await self._store.bind_channel(
            platform=platform, workspace=workspace, channel=channel, agent_id=agent.id
        )
        return agent

    # turns -------------------------------------------------------------------------------

    def reply(self, incoming: IncomingMessage) -> Turn:
        """Start a turn for ``incoming`` and return it at once."""
        if len(self._turns) >= self._max_pending:
            raise EngineBusy("too many messages are waiting; try again in a moment")
        turn = Turn()
        task = asyncio.create_task(self._run_turn(incoming, turn))
        self._turns.add(task)
        task.add_done_callback(self._turns.discard)
        return turn

    async def _run_turn(self, incoming: IncomingMessage, turn: Turn) -> None:
        try:
            async with self._locks.hold(incoming.key.canonical):
                result = await self._turn(incoming, turn)
        except asyncio.CancelledError as exc:
            turn._fail(exc)
            raise
        except Exception as exc:  # noqa: BLE001 - handed to whoever awaits the turn
            turn._fail(exc)
        else:
            turn._finish(result)

    async def _turn(self, incoming: IncomingMessage, turn: Turn) -> TurnResult:
        conversation = await self._conversation_for(incoming)
        agent = self.agent_of(conversation)
        context = _context(conversation)
        user_message = await self._store.append_message(
            conversation_id=conversation.id,
            message=NewMessage(
                role="user",
                text=incoming.text,
                author_id=incoming.author_id,
                author_name=incoming.author_name,
                platform_message_id=incoming.platform_message_id,
                token_count=self.count_tokens(
                    user_content(incoming.text, incoming.author_name), agent
                ),
            ),
        )
        if agent.max_turns is not None and (user_message.seq + 1) // 2 > agent.max_turns:
            return await self._close_politely(conversation, agent, user_message)

        history = await self._recent(conversation, agent, before_seq=user_message.seq)
        prompt = build_prompt(
            agent=agent,
            summary=conversation.summary,
            history=history,
            new_text=incoming.text,
            new_author=incoming.author_name,
            count=lambda text: self.count_tokens(text, agent),
        )
        request = ChatRequest(
            model=self.model_for(agent),
            messages=prompt.messages,
            temperature=agent.temperature,
            max_tokens=agent.max_output_tokens,
            metadata={"conversation_id": conversation.id, "purpose": "reply"},
        )
        try:
            generated = await self._replies.generate(
                request,
                schema=agent.response_shape,
                reply_field=agent.reply_field if agent.response_shape is not None else None,
                on_text=turn._show,
            )
        except ModelError as exc:
            logger.warning("model failed: %s", exc, extra=context)
            generated = Generated(text=agent.apology, data=None, raw="", error=str(exc))
            failed = True
        else:
            failed = False
            if generated.error:
                logger.warning("reply kept as raw text: %s", generated.error, extra=context)
        reply = await self._store_reply(conversation, agent, generated)
        if prompt.dropped_through > conversation.summary_seq:
            self._schedule_summary(conversation, agent, _compaction_target(prompt))
        logger.debug(
            "turn done: %d prompt tokens, %d history messages",
            prompt.tokens,
            len(prompt.included_seqs),
            extra=context,
        )
        return TurnResult(
            conversation=conversation,
            user_message=user_message,
            reply=reply,
            text=reply.text,
            data=reply.data,
            failed=failed,
        )

    async def _conversation_for(self, incoming: IncomingMessage) -> Conversation:
        existing = await self._store.find_conversation(key=incoming.key)
        if existing is not None and not existing.title:
            titled = await self._store.update_conversation(
                conversation_id=existing.id, title=_title(incoming.text)
            )
            return titled or existing
        if existing is not None:
            return existing
        agent = self._agents.find(incoming.agent_id or "") or self._agents.default
        conversation, _ = await self._store.get_or_create_conversation(
            key=incoming.key, agent_id=agent.id, title=_title(incoming.text)
        )
        return conversation

    async def _store_reply(
        self, conversation: Conversation, agent: Agent, generated: Generated
    ) -> Message:
        data = generated.data
        visible = generated.text
        counted = json.dumps(data, ensure_ascii=False) if data is not None else visible
        return await self._store.append_message(
            conversation_id=conversation.id,
            message=NewMessage(
                role="assistant",
                text=visible,
                author_name=agent.name,
                data=data,
                token_count=self.count_tokens(counted, agent),
                error=generated.error,
            ),
        )

    async def _close_politely(
        self, conversation: Conversation, agent: Agent, user_message: Message
    ) -> TurnResult:
        closing = agent.closing_message
        reply = await self._store.append_message(
            conversation_id=conversation.id,
            message=NewMessage(role="assistant", text=closing, author_name=agent.name),
        )
        await self._store.close_conversation(conversation_id=conversation.id)
        logger.info(
            "conversation closed after %d turns", agent.max_turns, extra=_context(conversation)
        )
        return TurnResult(
            conversation=conversation,
            user_message=user_message,
            reply=reply,
            text=closing,
            data=None,
            closed=True,
        )

    async def _recent(
        self, conversation: Conversation, agent: Agent, *, before_seq: int | None = None
    ) -> list[Message]:
        """The stored tail after the summary, read newest first until the budget is full."""
        tail: list[Message] = []
        tokens = 0
        before = before_seq
        while tokens <= agent.context_tokens:
            page = await self._store.list_messages(
                conversation_id=conversation.id,
                after_seq=conversation.summary_seq,
                before_seq=before,
                limit=_PAGE,
                newest_first=True,
            )
            tail.extend(page)
            for message in usable_history(page, agent):
                tokens += (
                    message.token_count or self.count_tokens(history_content(message), agent)
                ) + MESSAGE_OVERHEAD_TOKENS
            if len(page) < _PAGE:
                break
            before = page[-1].seq
        tail.reverse()
        return tail

    # conversations -----------------------------------------------------------------------

    async def open_conversation(
        self,
        *,
        key: PlatformKey,
        agent_id: str | None = None,
        data: dict[str, Any] | None = None,
        source: str | None = None,
        tags: list[str] | None = None,
    ) -> tuple[Conversation, bool]:
        """The open conversation at ``key``, or a new one whose history opens with the agent's
        first message. Returns it and whether it was created."""
        async with self._locks.hold(key.canonical):
            agent = self._agents.find(agent_id or "") or self._agents.default
            conversation, created = await self._store.get_or_create_conversation(
                key=key, agent_id=agent.id
            )
            if not created:
                return conversation, False
            await self._store.append_message(
                conversation_id=conversation.id,
                message=NewMessage(
                    role="assistant",
                    text=agent.first_message,
                    author_name=agent.name,
                    token_count=self.count_tokens(agent.first_message, agent),
                ),
            )
            changes: dict[str, Any] = {}
            if data is not None:
                changes["data"] = data
            if source is not None:
                changes["source"] = source
            if tags is not None:
                changes["tags"] = tags
            updated = await self._store.update_conversation(
                conversation_id=conversation.id, **changes
            )
            logger.info("conversation opened with %s", agent.id, extra=_context(conversation))
            return (updated or conversation), True

    async def reset(self, key: PlatformKey) -> bool:
        """Close the conversation at ``key``: the next message there starts a new one."""
        async with self._locks.hold(key.canonical):
            conversation = await self._store.find_conversation(key=key)
            if conversation is None:
                return False
            logger.info("conversation reset", extra=_context(conversation))
            return await self._store.close_conversation(conversation_id=conversation.id)

    # goal checks -------------------------------------------------------------------------

    async def check_goal(self, conversation_id: str) -> GoalCheck:
        """Ask the model whether the agent's goal has been reached; store and return the check.

        A failing model or invalid JSON is recorded as a check with ``error`` set.
        """
        conversation = await self._store.get_conversation(conversation_id=conversation_id)
        if conversation is None:
            raise NotFound(f"conversation {conversation_id} not found")
        agent = self.agent_of(conversation)
        if not agent.goal:
            raise NoGoal(f"agent {agent.id!r} has no goal")
        history = await self._recent(conversation, agent)
        covered = history[-1].seq if history else conversation.summary_seq
        request = ChatRequest(
            model=self.model_for(agent),
            messages=(
                ChatMessage(role="system", content=_goal_instructions(agent)),
                ChatMessage(role="user", content=_transcript(conversation.summary, history, agent)),
            ),
            temperature=0,
            metadata={"conversation_id": conversation.id, "purpose": "goal_check"},
        )
        error: str | None = None
        data: dict[str, Any] | None = None
        try:
            generated = await self._replies.generate(
                request, schema=GOAL_SCHEMA, reply_field=None, stream=False
            )
            data, error = generated.data, generated.error
        except ModelError as exc:
            error = str(exc)
        if error:
            logger.warning("goal check failed: %s", error, extra=_context(conversation))
        values = data or {}
        missing = values.get("missing") or []
        return await self._store.add_goal_check(
            NewGoalCheck(
                conversation_id=conversation.id,
                agent_id=agent.id,
                reached=bool(values.get("goal_reached", False)),
                summary=str(values.get("summary", "")),
                missing=tuple(str(item) for item in missing),
                covered_seq=covered,
                error=error if data is None else None,
            )
        )

    # rolling summary ---------------------------------------------------------------------

    def _schedule_summary(self, conversation: Conversation, agent: Agent, through: int) -> None:
        if conversation.id in self._summaries or len(self._summaries) >= self._max_summaries:
            return
        task = asyncio.create_task(self._summarize(conversation.id, agent, through))
        self._summaries[conversation.id] = task
        task.add_done_callback(lambda _: self._summaries.pop(conversation.id, None))

    async def _summarize(self, conversation_id: str, agent: Agent, through: int) -> None:
        async with self._summary_slots:
            conversation = await self._store.get_conversation(conversation_id=conversation_id)
            if conversation is None or conversation.summary_seq >= through:
                return
            context = _context(conversation)
            try:
                summary = await self._fold(conversation, agent, through)
            except ModelError as exc:
                logger.warning("summary not updated: %s", exc, extra=context)
                return
            except Exception:
                logger.exception("summary update failed", extra=context)
                return
            await self._store.set_summary(
                conversation_id=conversation_id, summary=summary, summary_seq=through
            )
            logger.debug("summary now covers messages 1-%d", through, extra=context)

    async def _fold(self, conversation: Conversation, agent: Agent, through: int) -> str:
        """The summary extended with every message up to ``through``, a page at a time."""
        summary = conversation.summary
        after = conversation.summary_seq
        while after < through:
            page = await self._store.list_messages(
                conversation_id=conversation.id,
                after_seq=after,
                before_seq=through + 1,
                limit=_PAGE * 2,
            )
            if not page:
                break
            after = page[-1].seq
            turns = usable_history(page, agent)
            if not turns:
                continue
            request = ChatRequest(
                model=self.model_for(agent),
                messages=(
                    ChatMessage(role="system", content=_summary_instructions(agent)),
                    ChatMessage(role="user", content=_transcript(summary, turns, agent)),
                ),
                temperature=0.2,
                max_tokens=_SUMMARY_MAX_TOKENS,
                metadata={"conversation_id": conversation.id, "purpose": "summary"},
            )
            summary = (await self._model.complete(request)).strip() or summary
        return summary

    async def aclose(self, grace: float = 10.0) -> None:
        """Let running turns and summaries finish (up to ``grace`` seconds), then cancel."""
        pending = [*self._turns, *self._summaries.values()]
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.gather(*late, return_exceptions=True)


def _context(conversation: Conversation) -> dict[str, str]:
    return conversation_context(
        conversation_id=conversation.id,
        platform=conversation.key.platform,
        agent_id=conversation.agent_id,
    )


def _title(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _TITLE_LENGTH else line[: _TITLE_LENGTH - 1] + "…"


def _compaction_target(prompt: Prompt) -> int:
    """Summarise what fell out and the older half of the window, so the next turns have room
    to grow before another summary is needed (one summary call every few turns, not each)."""
    keep = prompt.included_seqs[len(prompt.included_seqs) // 2 :]
    older = [seq for seq in prompt.included_seqs if seq < keep[0]] if keep else []
    return max([prompt.dropped_through, *older])


def _transcript(summary: str, messages: list[Message], agent: Agent) -> str:
    lines = []
    if summary.strip():
        lines += ["Summary of earlier turns:", summary.strip(), ""]
    lines.append("Conversation:")
    for message in messages:
        if message.role == "user":
            lines.append(f"{message.author_name or 'User'}: {message.text}")
        else:
            lines.append(f"{agent.name}: {message.text}")
    return "\n".join(lines)


def _summary_instructions(agent: Agent) -> str:
    return (
        f"{SUMMARY_MARKER} You keep the memory of a conversation between {agent.name} and "
        "the people it talks to. Rewrite the summary so that it covers the earlier summary and "
        "the new turns. Keep every durable fact: names, preferences, allergies, decisions, "
        "open questions and promises. Plain text, at most 200 words, no preamble."
    )


def _goal_instructions(agent: Agent) -> str:
    return (
        f"{GOAL_MARKER} You review a conversation of the agent {agent.name}.\n"
        f"Who the agent is: {agent.context.strip()}\n"
        f"The goal of the conversation: {(agent.goal or '').strip()}\n"
        "Decide whether the goal has been reached. Answer with goal_reached (true or false), "
        "summary (what happened, one to three sentences) and missing (what is still needed; "
        "empty when the goal is reached).\n\n" + shape_directive_for_goal()
    )


def shape_directive_for_goal() -> str:
    schema = json.dumps(GOAL_SCHEMA, separators=(",", ":"))
    return (
        "Answer with exactly one JSON object and nothing else, matching this JSON Schema:\n"
        + schema
    )
