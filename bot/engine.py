"""The agent engine: one turn of a conversation, goal checks and the rolling summary.

A turn stores the user's message before the model is called, builds the prompt within the
agent's token budget, streams the visible reply, stores the reply, and (off the critical
path) folds turns that fell out of the budget into the rolling summary. Turns of one
conversation run strictly in order; different conversations run concurrently.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from bot.admission import Admission, ApiShareFull, ConversationBusy, EngineBusy, KeyBusy, Ticket
from bot.catalog import AgentCatalog
from bot.consolidation import Consolidation
from bot.embeddings import Embedder, QueryVector
from bot.errors import NotFound, ParleyError, StoreError
from bot.extraction import BackgroundExtraction
from bot.goals import GOAL_SCHEMA, check_goal
from bot.history import RecentHistory, read_recent
from bot.knowledge import Knowledge
from bot.llm import ChatRequest, ModelClient, ModelError
from bot.locks import KeyedLocks
from bot.logs import context_of
from bot.memory import PeopleMemory, answering_agent, take_facts
from bot.observed_model import ObservedModelClient
from bot.prompt import build_prompt, reply_content, user_content
from bot.structured import Generated, StructuredReplies
from bot.summary import RollingSummary, compaction_target
from bot.telemetry import Telemetry, TurnWatch
from bot.tokens import TokenCounter
from bot.usage import UsageLedger
from config.agents import Agent, AgentsFile
from memory.base import (
    Conversation,
    ConversationStore,
    GoalCheck,
    Message,
    NewMessage,
    PlatformKey,
)

__all__ = [
    "GOAL_SCHEMA",
    "ApiShareFull",
    "ConversationBusy",
    "Engine",
    "EngineBusy",
    "IncomingMessage",
    "KeyBusy",
    "NoGoal",
    "Turn",
    "TurnResult",
    "UnknownAgent",
]

logger = logging.getLogger(__name__)

_TITLE_LENGTH = 80
_RESUME_WINDOW = 50
"""Latest messages searched for a message the journal retries (a conversation's queue of
turns is far shorter)."""


class UnknownAgent(ParleyError):
    """No agent has that id."""

    status = 404
    code = "not_found"
    client_line = None


class NoGoal(ParleyError):
    """The conversation's agent has no goal to check."""

    status = 409
    code = "no_goal"
    client_line = None


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
    quota: str | None = None
    """Who the turn is charged to: the API key's id for the HTTP API and the web console; None
    for Slack, Discord and the terminal. See :meth:`Engine.reply`."""
    resume: bool = False
    """The journal retries a message a process may have started: a user message already
    stored with this ``platform_message_id`` is used (not stored again), and a reply already
    stored after it is the turn's result (the model is not asked again)."""
    person: str | None = None
    """Whose people memory the turn reads and keeps when that is not its author: the user of
    the caller's system an API conversation is with. None: the author."""
    admitted: Ticket | None = None
    """The turn's place in the engine, taken when the message arrived (:meth:`Engine.admit`:
    the API refuses at once instead of queueing); the turn keeps it instead of asking again."""


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
        self._parts: list[str] = []
        """The visible text in pieces, joined only when it is read."""
        self._version = 0
        """Moves with every change, so readers compare numbers rather than texts."""
        self.first_shown: float | None = None
        """When text was first shown (monotonic seconds), if it was."""
        self._changed = asyncio.Event()
        self._result: asyncio.Future[TurnResult] = asyncio.get_running_loop().create_future()
        self._task: asyncio.Task[None] | None = None

    def extend(self, gained: str) -> None:
        """For the engine: the visible text grew by ``gained``."""
        if gained:
            self._shown_now()
            self._parts.append(gained)
            self._version += 1
            self._changed.set()

    def replace(self, text: str) -> None:
        """For the engine: the visible text is now ``text``."""
        if text and text != self.text:
            self._shown_now()
            self._parts = [text]
            self._version += 1
            self._changed.set()

    def _shown_now(self) -> None:
        if self.first_shown is None:
            self.first_shown = time.monotonic()

    def _finish(self, result: TurnResult) -> None:
        self.replace(result.text)
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
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    async def __aiter__(self) -> AsyncIterator[str]:
        shown = 0
        while True:
            await self._changed.wait()
            self._changed.clear()
            if self._version != shown:
                shown = self._version
                yield self.text
            if self._result.done():
                if self._version != shown:
                    yield self.text
                return

    async def result(self) -> TurnResult:
        return await asyncio.shield(self._result)

    @property
    def done(self) -> bool:
        return self._result.done()

    def finish(self, result: TurnResult) -> None:
        """End a turn answered elsewhere (another process, or read back from the store)."""
        self._finish(result)

    def fail(self, exc: BaseException) -> None:
        """End a turn that will not be answered here."""
        self._fail(exc)

    def cancel(self) -> bool:
        """Stop the turn where it is (a person asked): the model is no longer asked and no
        reply is stored. False when it had already ended."""
        if self._result.done() or self._task is None:
            return False
        return self._task.cancel()

    async def follow(self, source: Turn) -> TurnResult:
        """Show what ``source`` shows and end as it ends; returns its result (raises its
        failure, which this turn does not take: the caller decides whether it is final)."""
        async for text in source:
            self.replace(text)
        result = await source.result()
        self._finish(result)
        return result


class Engine:
    """Runs turns, goal checks and summaries for every agent over one store and one model."""

    def __init__(
        self,
        *,
        store: ConversationStore,
        agents: AgentsFile | AgentCatalog,
        model: ModelClient,
        tokens: TokenCounter,
        default_model: str,
        provider_models: Mapping[str, str] | None = None,
        max_pending_turns: int = 10_000,
        api_turns_per_key: int = 4,
        api_turn_share: float = 0.5,
        max_queued_per_conversation: int = 8,
        summary_concurrency: int = 2,
        consolidation_settle: float = 5.0,
        embedder: Embedder | None = None,
        usage: UsageLedger | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        """The turn limits are those of :class:`bot.admission.Admission`: ``max_pending_turns``
        in all, ``api_turns_per_key`` per API key, ``max_queued_per_conversation`` per
        conversation, and API turns together at most ``api_turn_share`` of the total.
        ``usage`` reports usage and what agents used today, for their ``daily_token_budget``
        (one without prices, reading the store, by default). ``telemetry``: where turns and
        model calls are counted and traced (metrics of its own, no tracing, when None)."""
        self._usage = usage or UsageLedger(store=store)
        self._telemetry = telemetry or Telemetry()
        model = ObservedModelClient(model, self._telemetry)
        self._store = store
        self._agents = agents if isinstance(agents, AgentCatalog) else AgentCatalog(agents, store)
        self._replies = StructuredReplies(model, metrics=self._telemetry.metrics)
        self._tokens = tokens
        self._default_model = default_model
        self._provider_models = dict(provider_models or {})
        self._locks = KeyedLocks()
        self._history = RecentHistory(store)
        """Each conversation's recent messages, so a turn reads only what it has not seen."""
        self._admission = Admission(
            total=max_pending_turns,
            per_quota=api_turns_per_key,
            per_conversation=max_queued_per_conversation,
            api_share=api_turn_share,
            on_refused=self._telemetry.metrics.busy_refusal,
        )
        self._turns: set[asyncio.Task[None]] = set()
        self._embedder = embedder
        self._memory = PeopleMemory(store, embedder)
        self._knowledge = Knowledge(store, embedder)
        self._consolidation = Consolidation(
            store=store,
            replies=self._replies,
            model_for=self.model_for,
            settle=consolidation_settle,
            max_pending=max_pending_turns,
        )
        self._extraction = BackgroundExtraction(
            store=store,
            memory=self._memory,
            replies=self._replies,
            model_for=self.model_for,
            on_learned=self._consolidation.schedule,
            max_pending=max_pending_turns,
        )
        self._summary = RollingSummary(
            store=store,
            replies=self._replies,
            model_for=self.model_for,
            concurrency=summary_concurrency,
            max_pending=max_pending_turns,
        )

    @property
    def agents(self) -> AgentCatalog:
        return self._agents

    @property
    def telemetry(self) -> Telemetry:
        """Where this engine's work, and the adapters' around it, is counted and traced."""
        return self._telemetry

    @property
    def knowledge(self) -> Knowledge:
        """The agents' documents: indexing them, and the passages a turn is given."""
        return self._knowledge

    @property
    def store(self) -> ConversationStore:
        return self._store

    @property
    def usage(self) -> UsageLedger:
        """Token usage and its cost."""
        return self._usage

    @property
    def pending_turns(self) -> int:
        return len(self._turns)

    @property
    def admission(self) -> Admission:
        """The turns in flight, counted by API key, conversation and class (read-only use)."""
        return self._admission

    @property
    def locked_conversations(self) -> int:
        """Conversations with a turn running or waiting: the size of the lock table."""
        return len(self._locks)

    def agent_of(self, conversation: Conversation) -> Agent:
        """The conversation's agent from what this process knows (see :meth:`resolve_agent`)."""
        return self._fallback(conversation, self._agents.find(conversation.agent_id))

    async def resolve_agent(self, conversation: Conversation) -> Agent:
        """The conversation's agent, reading a stored agent from the store when needed."""
        return self._fallback(conversation, await self._agents.lookup(conversation.agent_id))

    def _fallback(self, conversation: Conversation, agent: Agent | None) -> Agent:
        if agent is None:
            logger.warning(
                "agent %r is no longer defined; using the default agent",
                conversation.agent_id,
                extra=context_of(conversation),
            )
            return self._agents.default
        return agent

    def model_for(self, agent: Agent) -> str:
        return agent.effective_model(self._default_model, self._provider_models)

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
            agent = await self._agents.lookup(bound)
            if agent is not None:
                return agent
        return self._agents.for_channel(platform, channel, workspace=workspace)

    async def bind_channel(
        self, *, platform: Literal["slack", "discord"], workspace: str, channel: str, agent_id: str
    ) -> Agent:
        """Bind a channel to an agent for its new conversations (``/agent use``)."""
        agent = await self._agents.lookup(agent_id)
        if agent is None:
            known = ", ".join(a.id for a in self._agents.agents)
            raise UnknownAgent(f"no agent {agent_id!r} (agents: {known})")
        await self._store.bind_channel(
            platform=platform, workspace=workspace, channel=channel, agent_id=agent.id
        )
        return agent

    # turns -------------------------------------------------------------------------------

    def admit(self, incoming: IncomingMessage) -> Ticket:
        """Take ``incoming``'s place in the engine now, for a turn started later (see
        :attr:`IncomingMessage.admitted`); raises as :meth:`reply` does."""
        quota = incoming.quota
        is_api = quota is not None or incoming.key.platform == "api"
        return self._admission.admit(
            conversation=incoming.key.canonical, quota=quota, kind="api" if is_api else "chat"
        )

    def reply(self, incoming: IncomingMessage) -> Turn:
        """Start a turn for ``incoming`` and return it at once.

        A turn with a ``quota``, or any turn in an ``api`` conversation, is an API turn: capped
        per quota holder and, all together, at their share of the engine. Every turn counts
        against its conversation's cap and the engine's total.

        Raises:
            EngineBusy: refused, with a line for the person (see :mod:`bot.admission` for
                :class:`KeyBusy`, :class:`ConversationBusy` and :class:`ApiShareFull`).
        """
        ticket = incoming.admitted or self.admit(incoming)
        turn = Turn()
        task = asyncio.create_task(self._run_turn(incoming, turn, ticket))
        turn._task = task
        self._turns.add(task)
        task.add_done_callback(self._turns.discard)
        task.add_done_callback(lambda _: ticket.release())  # a task cancelled before it ran
        return turn

    async def _run_turn(self, incoming: IncomingMessage, turn: Turn, ticket: Ticket) -> None:
        """Run the turn in order; its place is given back in the same step that hands over the
        result, so a client that got its answer can start its next turn at once."""
        try:
            with self._telemetry.turn(
                platform=incoming.key.platform, first_shown=lambda: turn.first_shown
            ) as watch:
                async with self._locks.hold(incoming.key.canonical):
                    result = await self._turn(incoming, turn, watch)
                watch.ended(failed=result.failed, closed=result.closed)
        except asyncio.CancelledError as exc:
            turn._fail(exc)
            raise
        except Exception as exc:  # noqa: BLE001 - handed to whoever awaits the turn
            turn._fail(exc)
        else:
            turn._finish(result)
        finally:
            ticket.release()

    async def _turn(self, incoming: IncomingMessage, turn: Turn, watch: TurnWatch) -> TurnResult:
        conversation = await self._conversation_for(incoming)
        agent = await self.resolve_agent(conversation)
        watch.identify(
            conversation_id=conversation.id, agent_id=agent.id, model=self.model_for(agent)
        )
        context = context_of(conversation)
        stored = await self._stored_turn(conversation, incoming) if incoming.resume else None
        if stored is not None and stored[1] is not None:
            user_message, reply = stored[0], stored[1]
            logger.info("turn already answered; its reply is used", extra=context)
            return TurnResult(
                conversation=conversation,
                user_message=user_message,
                reply=reply,
                text=reply.text,
                data=reply.data,
                failed=reply.error is not None and reply.data is None,
            )
        if stored is not None:
            user_message = stored[0]
        else:
            user_message = await self._append(
                conversation.id,
                NewMessage(
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
        if await self._over_budget(conversation, agent):
            return await self._answer_plainly(
                conversation, agent, user_message, agent.budget_message
            )

        history = await self._history.read(  # kept between turns: most turns read nothing
            conversation,
            agent,
            count=lambda text: self.count_tokens(text, agent),
            before=user_message,
        )
        vector = None
        if self._embedder is not None:
            vector = QueryVector(
                self._embedder,
                incoming.text,
                lambda exc: logger.warning(
                    "embedding failed, searching by words only: %s", exc, extra=context
                ),
            )
        recalled = await self._memory.recall(
            agent,
            incoming.key,
            person=incoming.author_id if incoming.person is None else incoming.person,
            name=incoming.author_name,
            query=incoming.text,
            count=lambda text: self.count_tokens(text, agent),
            vector=vector,
        )
        passages = await self._knowledge.recall(
            agent, incoming.text, lambda text: self.count_tokens(text, agent), vector
        )
        answering = answering_agent(agent)
        prompt = build_prompt(
            agent=answering,
            summary=conversation.summary,
            history=history,
            new_text=incoming.text,
            new_author=incoming.author_name,
            count=lambda text: self.count_tokens(text, agent),
            memory=recalled.block if recalled is not None else "",
            knowledge=passages.block,
        )
        request = ChatRequest(
            model=self.model_for(agent),
            messages=prompt.messages,
            temperature=agent.temperature,
            max_tokens=agent.max_output_tokens,
            provider=agent.provider,
            metadata={
                "conversation_id": conversation.id,
                "agent_id": agent.id,
                "purpose": "reply",
            },
        )
        try:
            generated = await self._replies.generate(
                request,
                schema=answering.response_shape,
                reply_field=(
                    answering.reply_field if answering.response_shape is not None else None
                ),
                on_text=turn,
            )
        except ModelError as exc:
            logger.warning("model failed: %s", exc, extra=context)
            generated = Generated(text=agent.apology, data=None, raw="", error=str(exc))
            failed = True
        else:
            failed = False
            if generated.error:
                logger.warning("reply kept as raw text: %s", generated.error, extra=context)
        own_data, facts = take_facts(agent, generated.data)  # downstream sees its own shape
        reply = await self._store_reply(
            conversation,
            agent,
            replace(generated, data=own_data),
            sources=tuple(chunk.id for chunk in passages.chunks),
        )
        learned = await self._memory.learn(
            recalled,
            facts,
            private=incoming.key.is_direct,
            conversation_id=conversation.id,
            message_id=reply.id,
        )
        if learned and recalled is not None:
            self._consolidation.schedule(recalled.scope, agent)
        if recalled is not None and agent.memory.extract == "background":
            self._extraction.turn_done(
                agent,
                recalled,
                conversation_id=conversation.id,
                author_id=incoming.author_id,
                name=incoming.author_name,
                private=incoming.key.is_direct,
            )
        if prompt.dropped_through > conversation.summary_seq:
            self._summary.schedule(conversation, agent, compaction_target(prompt))
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

    async def _stored_turn(
        self, conversation: Conversation, incoming: IncomingMessage
    ) -> tuple[Message, Message | None] | None:
        """The user message already stored for ``incoming`` (by its platform id, among the
        latest messages) and the reply stored right after it, if any."""
        if not incoming.platform_message_id:
            return None
        latest = await self._store.list_messages(
            conversation_id=conversation.id, limit=_RESUME_WINDOW, newest_first=True
        )
        for index, message in enumerate(latest):
            if (
                message.role == "user"
                and message.platform_message_id == incoming.platform_message_id
            ):
                after = latest[index - 1] if index > 0 else None
                reply = after if after is not None and after.role == "assistant" else None
                return message, reply
        return None

    async def _conversation_for(self, incoming: IncomingMessage) -> Conversation:
        existing = await self._store.find_conversation(key=incoming.key)
        if existing is not None and not existing.title:
            titled = await self._store.update_conversation(
                conversation_id=existing.id, title=_title(incoming.text)
            )
            return titled or existing
        if existing is not None:
            return existing
        agent = await self._agents.lookup(incoming.agent_id or "") or self._agents.default
        conversation, _ = await self._store.get_or_create_conversation(
            key=incoming.key, agent_id=agent.id, title=_title(incoming.text)
        )
        return conversation

    async def _store_reply(
        self,
        conversation: Conversation,
        agent: Agent,
        generated: Generated,
        *,
        sources: tuple[str, ...] = (),
    ) -> Message:
        data = generated.data
        visible = generated.text
        return await self._append(
            conversation.id,
            NewMessage(
                role="assistant",
                text=visible,
                author_name=agent.name,
                data=data,
                token_count=self.count_tokens(reply_content(visible, data), agent),
                error=generated.error,
                sources=sources,
            ),
        )

    async def _close_politely(
        self, conversation: Conversation, agent: Agent, user_message: Message
    ) -> TurnResult:
        closing = agent.closing_message
        reply = await self._append(
            conversation.id,
            NewMessage(role="assistant", text=closing, author_name=agent.name),
        )
        await self._store.close_conversation(conversation_id=conversation.id)
        logger.info(
            "conversation closed after %d turns", agent.max_turns, extra=context_of(conversation)
        )
        return TurnResult(
            conversation=conversation,
            user_message=user_message,
            reply=reply,
            text=closing,
            data=None,
            closed=True,
        )

    async def _over_budget(self, conversation: Conversation, agent: Agent) -> bool:
        """True when the agent has used its ``daily_token_budget`` today (UTC)."""
        limit = agent.daily_token_budget
        if limit is None:
            return False
        try:
            spent = await self._usage.spent_today(agent.id)
        except StoreError as exc:  # the reply matters more than the budget
            logger.warning(
                "daily token budget not read (%s); answering", exc, extra=context_of(conversation)
            )
            return False
        if spent < limit:
            return False
        logger.info(
            "daily token budget spent (%d of %d); answering without the model",
            spent,
            limit,
            extra=context_of(conversation),
        )
        return True

    async def _answer_plainly(
        self, conversation: Conversation, agent: Agent, user_message: Message, text: str
    ) -> TurnResult:
        """Store ``text`` as the reply, without calling the model (so it uses no tokens)."""
        reply = await self._append(
            conversation.id,
            NewMessage(role="assistant", text=text, author_name=agent.name),
        )
        return TurnResult(
            conversation=conversation,
            user_message=user_message,
            reply=reply,
            text=text,
            data=None,
        )

    async def _recent(self, conversation: Conversation, agent: Agent) -> list[Message]:
        """The messages a prompt could show, after the summary and within the budget."""
        return await read_recent(
            self._store, conversation, agent, count=lambda text: self.count_tokens(text, agent)
        )

    async def _append(self, conversation_id: str, message: NewMessage) -> Message:
        """Store a message of a conversation this process is answering (under its lock)."""
        stored = await self._store.append_message(conversation_id=conversation_id, message=message)
        self._history.added(stored)
        return stored

    # conversations -----------------------------------------------------------------------

    async def open_conversation(
        self,
        *,
        key: PlatformKey,
        agent_id: str | None = None,
        data: dict[str, Any] | None = None,
        source: str | None = None,
        tags: list[str] | None = None,
        user: str | None = None,
    ) -> tuple[Conversation, bool]:
        """The open conversation at ``key``, or a new one whose history opens with the agent's
        first message. Returns it and whether it was created."""
        async with self._locks.hold(key.canonical):
            agent = await self._agents.lookup(agent_id or "") or self._agents.default
            conversation, created = await self._store.get_or_create_conversation(
                key=key, agent_id=agent.id
            )
            if not created:
                return conversation, False
            await self._append(
                conversation.id,
                NewMessage(
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
            if user is not None:
                changes["user"] = user
            updated = await self._store.update_conversation(
                conversation_id=conversation.id, **changes
            )
            logger.info("conversation opened with %s", agent.id, extra=context_of(conversation))
            return (updated or conversation), True

    async def reset(self, key: PlatformKey) -> bool:
        """Close the conversation at ``key``: the next message there starts a new one."""
        async with self._locks.hold(key.canonical):
            conversation = await self._store.find_conversation(key=key)
            if conversation is None:
                return False
            logger.info("conversation reset", extra=context_of(conversation))
            return await self._store.close_conversation(conversation_id=conversation.id)

    async def forget(self, conversation: Conversation) -> bool:
        """Delete a conversation and all its messages, after any turn of it in progress ends
        (a turn running meanwhile would otherwise fail half-way)."""
        async with self._locks.hold(conversation.key.canonical):
            deleted = await self._store.delete_conversation(conversation_id=conversation.id)
        if deleted:
            logger.info("conversation forgotten", extra=context_of(conversation))
        return deleted

    # goal checks -------------------------------------------------------------------------

    async def check_goal(self, conversation_id: str) -> GoalCheck:
        """Ask the model whether the agent's goal has been reached; store and return the check.

        A failing model or invalid JSON is recorded as a check with ``error`` set.
        """
        conversation = await self._store.get_conversation(conversation_id=conversation_id)
        if conversation is None:
            raise NotFound(f"conversation {conversation_id} not found")
        agent = await self.resolve_agent(conversation)
        if not agent.goal:
            raise NoGoal(f"agent {agent.id!r} has no goal")
        return await check_goal(
            store=self._store,
            replies=self._replies,
            conversation=conversation,
            agent=agent,
            history=await self._recent(conversation, agent),
            model=self.model_for(agent),
        )

    async def aclose(self, grace: float = 10.0) -> None:
        """Let running turns and summaries finish (up to ``grace`` seconds), then cancel.
        Memory consolidations waiting are cancelled at once (the next fact schedules them)."""
        waiting = [*self._consolidation.tasks, *self._extraction.tasks]
        for task in waiting:
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)
        pending = [*self._turns, *self._summary.tasks]
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.gather(*late, return_exceptions=True)


def _title(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _TITLE_LENGTH else line[: _TITLE_LENGTH - 1] + "…"
