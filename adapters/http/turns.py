"""Turns of the HTTP API and the web console, through the turn journal.

A message sent through the API is first given its place in the engine (so a busy key or
conversation is refused at once, 429, and nothing is kept), then recorded in the journal and
only then answered, by whichever process holds the conversation's lease, in arrival order. The
request follows its turn: live when this process answers it, from the store when another
process does. A process that dies after recording leaves the message in the journal; the next
one answers and stores it, and the client reads it back from the conversation's messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

from bot.admission import Ticket
from bot.engine import Engine, IncomingMessage, Turn, TurnResult
from bot.errors import ParleyError, StoreError
from bot.journal import Shown, TurnJournal, stored_messages
from memory.base import (
    API_KEY_AUTHOR,
    ApiKeyRecord,
    Conversation,
    JournalEntry,
    NewJournalEntry,
    PlatformKey,
)

logger = logging.getLogger(__name__)

PLATFORM = "api"
POLL_FIRST = 0.2
POLL_MAX = 2.0
"""How often a request whose turn is not answered here looks at its journal entry."""
WAIT_LIMIT = 600.0
"""How long a request follows its turn before it gives up (the turn goes on and is stored)."""


class TurnNotAnswered(ParleyError):
    """The journal gave the message up, or the request stopped waiting for it."""


@dataclass
class _Waiter:
    turn: Turn
    ticket: Ticket
    following: bool = False
    """This process is answering it now: the request follows the engine's turn."""
    woken: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when something happened here (its turn ended, or this process stopped answering
    it): the watcher looks at once instead of after its pause."""


class ApiTurns:
    """Starts API turns through the journal, and is the journal's shower for ``api`` entries.

    Requests waiting here are bounded by the engine's admission (each holds a ticket)."""

    def __init__(
        self,
        *,
        engine: Engine,
        journal: TurnJournal,
        poll_first: float = POLL_FIRST,
        poll_max: float = POLL_MAX,
        wait_limit: float = WAIT_LIMIT,
    ) -> None:
        self._engine = engine
        self._store = engine.store
        self._journal = journal
        self._poll_first = poll_first
        self._poll_max = poll_max
        self._wait_limit = wait_limit
        self._waiting: dict[str, _Waiter] = {}
        self._watchers: set[asyncio.Task[None]] = set()
        journal.register(PLATFORM, self)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def start(
        self, conversation: Conversation, text: str, *, author: str, key: ApiKeyRecord
    ) -> Turn:
        """Record ``text`` for ``conversation`` and return its turn (answered in order).

        Raises :class:`bot.admission.EngineBusy` (nothing kept) and :class:`StoreError` (the
        message is not accepted, so the client may send it again)."""
        ticket = self._engine.admit(
            _incoming(
                conversation.key,
                text,
                author=author,
                key_id=key.id,
                agent_id=conversation.agent_id,
                user=conversation.user,
            )
        )
        entry = NewJournalEntry(
            id=f"{PLATFORM}:{uuid.uuid4().hex}",
            key=conversation.key,
            position=f"{time.time_ns():020d}",
            message={
                "text": text,
                "author": author,
                "key_id": key.id,
                "agent_id": conversation.agent_id,
                "user": conversation.user,
            },
        )
        waiter = _Waiter(turn=Turn(), ticket=ticket)
        self._waiting[entry.id] = waiter
        try:
            await self._journal.record(entry)
        except BaseException:
            self._forget(entry.id)
            raise
        watcher = asyncio.create_task(self._watch(entry.id, waiter), name=f"follow {entry.id}")
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)
        self._journal.kick(entry.key)
        return waiter.turn

    async def aclose(self) -> None:
        """Stop following (the turns themselves go on in the journal)."""
        watchers = list(self._watchers)
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)

    # the journal's Shower ---------------------------------------------------------------------

    async def incoming(self, entry: JournalEntry) -> IncomingMessage | None:
        message = entry.message
        text, author, key_id = message.get("text"), message.get("author"), message.get("key_id")
        if not (isinstance(text, str) and isinstance(author, str) and isinstance(key_id, str)):
            return None
        agent_id, user = message.get("agent_id"), message.get("user")
        waiter = self._waiting.get(entry.id)
        return replace(
            _incoming(
                entry.key,
                text,
                author=author,
                key_id=key_id,
                agent_id=agent_id if isinstance(agent_id, str) else None,
                user=user if isinstance(user, str) else None,
            ),
            platform_message_id=entry.id,
            admitted=None if waiter is None or waiter.ticket.released else waiter.ticket,
        )

    async def show_live(self, entry: JournalEntry, turn: Turn) -> Shown:
        """The request (when it waits here) follows the turn as it streams. A failure (the
        store, mid-turn) ends the request with its error at once; the message stays in the
        journal, which tries it again and stores the reply for the client to read later."""
        waiter = self._waiting.get(entry.id)
        if waiter is None:  # taken over from a process that died, or its request ended
            await turn.result()
            return Shown(complete=True)
        waiter.following = True
        try:
            await waiter.turn.follow(turn)
        except Exception as exc:
            waiter.turn.fail(exc)
            raise
        finally:
            waiter.following = False
            waiter.woken.set()
        return Shown(complete=True)

    async def show_stored(self, entry: JournalEntry, text: str) -> Shown:
        waiter = self._waiting.get(entry.id)
        if waiter is not None and not waiter.turn.done:
            await self._settle_from_store(entry, waiter)
        return Shown(complete=True)

    async def tell(self, entry: JournalEntry, line: str) -> None:
        """Nothing: the request sees its entry's state (a failed entry ends it with an
        error), and API conversations hold only what was asked and answered."""
        return

    async def clear_leftovers(self, entry: JournalEntry, since: datetime) -> None:
        """Nothing: an API reply is shown only from the store, so no attempt leaves one cut."""
        return

    # following ----------------------------------------------------------------------------

    async def _watch(self, entry_id: str, waiter: _Waiter) -> None:
        """Until the request's turn ends: answered here (it is woken), or elsewhere (read from
        the entry's state, looked at with a growing pause while nothing happens here)."""
        pause = self._poll_first
        deadline = asyncio.get_running_loop().time() + self._wait_limit
        try:
            while not waiter.turn.done:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    waiter.turn.fail(
                        TurnNotAnswered(
                            "the reply is taking too long; it will be stored in the "
                            "conversation's messages"
                        )
                    )
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.woken.wait(), timeout=min(pause, left))
                waiter.woken.clear()
                if waiter.turn.done or waiter.following:
                    pause = self._poll_first
                    continue
                pause = min(pause * 2, self._poll_max)
                try:
                    entry = await self._store.journal_get(entry_id=entry_id)
                except StoreError as exc:
                    logger.warning("api turn: could not read its journal entry (%s)", exc)
                    continue
                if entry is None or entry.state == "failed":
                    reason = entry.error if entry is not None else "the message is gone"
                    logger.warning("api turn not answered: %s", reason)
                    waiter.turn.fail(TurnNotAnswered("this message could not be answered"))
                elif entry.state in ("answered", "shown") and not waiter.following:
                    await self._settle_from_store(entry, waiter)
        finally:
            self._forget(entry_id)

    async def _settle_from_store(self, entry: JournalEntry, waiter: _Waiter) -> None:
        result = await self._stored_result(entry)
        if result is not None and not waiter.turn.done:
            waiter.turn.finish(result)
            waiter.woken.set()

    async def _stored_result(self, entry: JournalEntry) -> TurnResult | None:
        if entry.conversation_id is None:
            return None
        conversation = await self._store.get_conversation(conversation_id=entry.conversation_id)
        user_message, reply = await stored_messages(self._store, entry)
        if conversation is None or user_message is None or reply is None:
            return None
        return TurnResult(
            conversation=conversation,
            user_message=user_message,
            reply=reply,
            text=reply.text,
            data=reply.data,
            failed=reply.error is not None,
            closed=conversation.closed_at is not None,
        )

    def _forget(self, entry_id: str) -> None:
        waiter = self._waiting.pop(entry_id, None)
        if waiter is not None:
            waiter.ticket.release()


def _incoming(
    key: PlatformKey,
    text: str,
    *,
    author: str,
    key_id: str,
    agent_id: str | None,
    user: str | None = None,
) -> IncomingMessage:
    """An API message: authored by the key, and for the people memory of the conversation's
    user when it has one (a key alone keeps none: see ``memory.base.API_KEY_AUTHOR``)."""
    return IncomingMessage(
        person=user,
        key=key,
        text=text,
        author_id=f"{API_KEY_AUTHOR}{key_id}",
        author_name=author,
        agent_id=agent_id,
        quota=key_id,
    )
