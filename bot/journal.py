"""The turn journal: every message the bot will answer is in the store before it is
acknowledged, and is answered once and shown once, in platform order, by whichever process
holds its conversation's lease.

An adapter records a message (:meth:`TurnJournal.record`) before it acknowledges it (Slack) or
as soon as it arrives (Discord), then :meth:`~TurnJournal.kick` its place. One drain per place
runs in the process that holds the place's lease (a claim in the store): it takes the place's
unfinished entries in order, answers each through the engine and has the platform's
:class:`Shower` show it, recording each step. A process that dies leaves its entries behind;
once its lease expires, the sweeper of any process takes the place over: an entry that was
answered is shown from the stored reply, one that was not is answered (the engine finds a user
message it already stored, so nothing is stored twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from bot.engine import Engine, EngineBusy, IncomingMessage, Turn
from bot.errors import ParleyError, StoreError
from bot.logs import conversation_context
from bot.lru import BoundedLRU
from memory.base import (
    UNSET,
    Clock,
    ConversationStore,
    JournalEntry,
    JournalFinish,
    Message,
    NewJournalEntry,
    PlatformKey,
    utc_now,
)

logger = logging.getLogger(__name__)

LEASE_PREFIX = "turns:"
KEEP_FINISHED = timedelta(days=1)
"""Finished entries are kept this long: a redelivery within it is recognised (Slack retries
for about an hour, Discord never)."""
PRUNE_EVERY = 3600.0
MAX_ATTEMPTS = 5
"""Times an entry is started before it is given up (a message that crashes every process)."""
CATCHING_UP_LINE = "I'm having trouble with my memory; I'll answer as soon as it's back."
GAVE_UP_LINE = "Sorry, I couldn't answer this message."
QUEUED_LINE = "I'm handling a lot of messages right now; I'll answer this as soon as I can."
STOPPED = "stopped by the person"
"""The ``error`` of an entry whose turn a person stopped (:meth:`TurnJournal.stop_turn`): it
is finished as failed, so it is never answered again."""


@dataclass(slots=True)
class _InHand:
    """The entry a drain is processing, and its turn once the engine started one."""

    entry_id: str
    task: asyncio.Task[None]
    """The drain's task (:meth:`TurnJournal.stop_turn` cancels it)."""
    turn: Turn | None = None
    stopped: bool = False


@dataclass(frozen=True, slots=True)
class Shown:
    """What the platform shows of a reply."""

    complete: bool
    """The whole reply is visible (not cut off by a failure)."""
    ref: str | None = None
    """The platform's id of the message showing it (Slack ts, Discord message id)."""


class Shower(Protocol):
    """A platform's side of the journal: what an entry asks, and where its reply appears.

    An entry's ``message`` is the platform's own record of the message (its raw text, who
    wrote it, where to answer), made by the adapter that recorded it and read back only by it.
    """

    async def incoming(self, entry: JournalEntry) -> IncomingMessage | None:
        """The engine's message for an entry, or None when there is nothing to answer."""
        ...

    async def show_live(self, entry: JournalEntry, turn: Turn) -> Shown:
        """Show a turn as it streams, where the entry says; the turn's result is stored.

        A reply an earlier attempt left cut (``entry.shown_ref``, from a process that died
        mid-stream) is deleted first; the reply's first message is told to
        :meth:`TurnJournal.reply_posted` as soon as it is posted."""
        ...

    async def show_stored(self, entry: JournalEntry, text: str) -> Shown:
        """Show a stored reply in full (after a crash or a failed stream): update the message
        ``entry.shown_ref`` when there is one, else post."""
        ...

    async def tell(self, entry: JournalEntry, line: str) -> None:
        """One short line where the entry's reply would go (busy, catching up, failed)."""
        ...

    async def clear_leftovers(self, entry: JournalEntry, since: datetime) -> None:
        """Delete the bot's messages in the entry's place posted after the person's message
        and after ``since`` (other than ``entry.shown_ref``, which the showing replaces): what
        an attempt that died left there before the journal recorded it. Best effort: a
        failure is logged, never raised."""
        ...


class TurnJournal:
    """Drains places in order under their leases, and takes over places of dead processes.

    ``lease_seconds``: how long a place stays with a process that stopped renewing it (a
    crashed one); renewed every third of it while the process works. ``max_drains``: places
    drained at once in this process; more wait in the journal (the sweeper comes back for
    them). ``sweep_every``: how often places left waiting are looked for: those whose head
    entry was not touched for two sweeps (a crashed process's, whose lease lapses, and those a
    stopping process recorded but left undrained, whose lease is free at once).
    """

    def __init__(
        self,
        *,
        engine: Engine,
        owner: str | None = None,
        lease_seconds: float = 30.0,
        sweep_every: float = 5.0,
        max_drains: int = 1000,
        retry_seconds: float = 1.0,
        clock: Clock = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._store = engine.store
        self.owner = owner or uuid.uuid4().hex
        self._lease = lease_seconds
        self._sweep_every = sweep_every
        self._max_drains = max_drains
        self._retry = retry_seconds
        self._clock = clock
        self._monotonic = monotonic
        self._showers: dict[str, Shower] = {}
        self._drains: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._taking: set[str] = set()
        """Places whose record is taking their lease and first entry now (at most one per
        place; bounded by the records in flight)."""
        self._unrecorded: BoundedLRU[str, str] = BoundedLRU(max_drains)
        """Replies posted while the store could not record where (entry id: ref): this
        process's next attempt at the entry deletes them. Bounded like the drains: a place
        answers one entry at a time."""
        self._in_hand: dict[str, _InHand] = {}
        """Per place drained here, the entry being processed (bounded like the drains)."""
        self._sweeper: asyncio.Task[None] | None = None
        self._working: set[str] = set()
        """Leases of the places whose entry is in work here (bounded like the drains)."""
        self._renewals: dict[str, asyncio.Task[None]] = {}
        self._renewer: asyncio.Task[None] | None = None
        self._closing = False
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def closing(self) -> bool:
        """Stopping: no place is drained here any more (what arrives waits for the next
        process)."""
        return self._closing

    @property
    def draining(self) -> int:
        """Places being drained by this process now."""
        return len(self._drains)

    def register(self, platform: str, shower: Shower) -> None:
        """The adapter that shows replies of ``platform``'s entries."""
        self._showers[platform] = shower

    def unregister(self, platform: str) -> None:
        self._showers.pop(platform, None)

    async def record(self, entry: NewJournalEntry) -> bool:
        """Keep the message in the store; False for a redelivery (already recorded).
        Raises :class:`StoreError` when the store cannot take it: do not acknowledge then.

        When no drain of the place runs here, the same write takes the place's lease and its
        first entry, and a drain starts with it in hand (no second write to begin answering);
        otherwise the running drain comes to it (see :meth:`kick`)."""
        place = entry.key.canonical
        if place in self._drains or place in self._taking or not self._may_drain():
            _, created = await self._store.journal_add(entry)
            return created
        self._taking.add(place)
        try:
            _, created, taken = await self._store.journal_add_and_take(
                entry,
                lease=LEASE_PREFIX + place,
                owner=self.owner,
                ttl_seconds=self._lease,
            )
        finally:
            self._taking.discard(place)
        if taken is not None:
            self._start_drain(entry.key, first=taken)
        elif place in self._again:  # kicked while taking: look now
            self._again.discard(place)
            self.kick(entry.key)
        return created

    async def reply_posted(self, entry: JournalEntry, ref: str) -> None:
        """Record the platform's id of the first message of ``entry``'s reply as soon as it
        is posted, so that a process that dies mid-reply leaves the cut reply findable: the
        next attempt deletes it instead of showing the reply twice. Best effort: the reply
        goes on when the store cannot take it."""
        try:
            await self._store.journal_update(entry_id=entry.id, shown_ref=ref)
        except StoreError as exc:
            self._unrecorded.put(entry.id, ref)
            logger.warning("journal: where a reply was posted is not recorded (%s)", exc)

    def kick(self, key: PlatformKey) -> None:
        """Drain ``key``'s entries in this process if its lease can be had (now, in a task)."""
        place = key.canonical
        if place in self._drains or place in self._taking:
            self._again.add(place)  # the drain (or the record taking) looks again
            return
        if not self._may_drain():
            return  # kept in the journal: the sweeper (here or elsewhere) takes it later
        self._start_drain(key)

    def _may_drain(self) -> bool:
        return not self._closing and len(self._drains) < self._max_drains

    def _start_drain(self, key: PlatformKey, first: JournalEntry | None = None) -> None:
        place = key.canonical
        task = asyncio.create_task(self._drain(key, first), name=f"drain {place}")
        self._drains[place] = task
        self._idle.clear()
        task.add_done_callback(lambda done: self._drained(place, done))  # if never started

    def _drained(self, place: str, task: asyncio.Task[None] | None) -> None:
        if self._drains.get(place) is task:
            del self._drains[place]
        if not self._drains:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Until no place is being drained here (callers bound the wait)."""
        await self._idle.wait()

    async def start(self) -> None:
        """Take over what was left unfinished, and keep looking for lapsed leases."""
        if self._sweeper is None:
            self._closing = False
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="journal sweeper")

    def stop_taking(self) -> None:
        """From now on start no drain and take no next entry (the process is stopping): what
        arrives is still recorded, for the next process; drains finish the entry in hand.
        :meth:`stop` then waits for them."""
        self._closing = True

    async def stop(self, *, grace: float) -> None:
        """Take nothing new; let drains finish the entry in hand within ``grace`` seconds,
        then cancel them (their entries stay in the journal for the next process)."""
        self._closing = True
        sweeper, self._sweeper = self._sweeper, None
        if sweeper is not None:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)
        drains = list(self._drains.values())
        if drains:
            _, late = await asyncio.wait(drains, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*drains, return_exceptions=True)
        renewer = self._renewer
        if renewer is not None:  # nothing left in work: its next tick would end it
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)

    async def sweep(self) -> int:
        """Kick every place whose oldest unfinished entry was not touched for two sweeps;
        returns how many places were kicked. Runs at start and every ``sweep_every`` seconds.

        The lease decides who drains: a place another live process holds costs this one a
        refused claim, while a place nobody holds (recorded by a process that stopped, during
        a rolling deploy) is taken within seconds instead of after a lease."""
        quiet = min(self._lease, 2 * self._sweep_every)
        places = await self._store.journal_pending(
            limit=100, updated_before=self._clock() - timedelta(seconds=quiet)
        )
        for key in places:
            self.kick(key)
        return len(places)

    # draining -------------------------------------------------------------------------------

    async def _sweep_forever(self) -> None:
        first = True
        pruned = self._monotonic()
        while True:
            try:
                if first:  # at start, everything unfinished whose owner is gone
                    await self._sweep_all_at_start()
                    first = False
                else:
                    await self.sweep()
                if self._monotonic() - pruned >= PRUNE_EVERY:
                    pruned = self._monotonic()
                    gone = await self._store.journal_prune(
                        finished_before=self._clock() - KEEP_FINISHED
                    )
                    logger.debug("journal: %d finished entries pruned", gone)
            except StoreError as exc:
                logger.warning("journal sweep failed: %s", exc)
            await asyncio.sleep(self._sweep_every)

    async def _sweep_all_at_start(self) -> None:
        places = await self._store.journal_pending(limit=1000)
        for key in places:
            self.kick(key)

    async def _drain(self, key: PlatformKey, first: JournalEntry | None) -> None:
        """Answer the place's entries in order while this process holds its lease (``first``:
        an entry already taken under it). A failure (the store, the platform) is retried with
        a growing pause; the person is told once. A drain stopped with the process gives its
        lease back, so the next process need not wait for it to lapse."""
        lease = LEASE_PREFIX + key.canonical
        try:
            await self._drain_held(key, lease, first)
        finally:
            if self._closing:
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._store.release_claim(key=lease, owner=self.owner))
            # Gone from the table with no await before the task ends: a kick from here on
            # starts a new drain instead of leaving a note for this one.
            self._drained(key.canonical, asyncio.current_task())

    async def _drain_held(self, key: PlatformKey, lease: str, first: JournalEntry | None) -> None:
        """Each step is one ``journal_advance``: it writes the entry just finished, renews
        the lease and takes the next entry (or lets the lease go when there is none)."""
        place = key.canonical
        pause = self._retry
        told: str | None = None
        finish: JournalFinish | None = None
        try:
            while not self._closing:
                entry: JournalEntry | None = first
                try:
                    self._again.discard(place)
                    if first is not None:
                        first = None
                    else:
                        entry = await self._store.journal_advance(
                            key=key,
                            lease=lease,
                            owner=self.owner,
                            ttl_seconds=self._lease,
                            finish=finish,
                        )
                        finish = None
                    if entry is None:  # another process has the place, or it is empty
                        if place in self._again:  # kicked here during that last look
                            continue
                        return
                    finish = await self._with_lease(lease, self._stoppable(key, entry))
                    pause = self._retry
                    continue
                except asyncio.CancelledError:
                    raise
                except (StoreError, ShowFailed) as exc:
                    logger.warning("journal: retrying in %.0fs (%s)", pause, exc)
                    if entry is not None and told != entry.id and isinstance(exc, StoreError):
                        told = entry.id
                        await self._tell(entry, CATCHING_UP_LINE)
                except Exception:
                    logger.exception("journal: an entry failed; retrying")
                await asyncio.sleep(pause)
                pause = min(pause * 2, 30.0)
        finally:
            if finish is not None:  # stopping with an entry done: record it, best effort
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._finish(finish))

    def stop_turn(self, key: PlatformKey) -> bool:
        """Stop the turn this process is answering at ``key`` (a person pressed Stop): the
        engine's turn is cancelled, the reply stops where it is, and the entry is finished as
        failed with :data:`STOPPED`, never to be answered again. False when no turn is being
        answered there in this process (nothing started yet, or already shown)."""
        in_hand = self._in_hand.get(key.canonical)
        if in_hand is None or in_hand.turn is None or in_hand.stopped:
            return False
        if in_hand.turn.done:  # answered: what is left is showing it
            return False
        in_hand.stopped = True
        in_hand.turn.cancel()
        in_hand.task.cancel()
        return True

    async def request_stop(self, key: PlatformKey) -> bool:
        """Stop the turn being answered at ``key`` wherever it is: here at once
        (:meth:`stop_turn`); in another process by finishing the place's head entry as stopped
        in the store, which that process notices (:meth:`stopped`). False when nothing waits
        there."""
        if key.canonical in self._in_hand:  # answered here: only this process can stop it
            return self.stop_turn(key)
        head = await self._store.journal_next(key=key)
        if head is None:
            return False
        await self._store.journal_update(entry_id=head.id, state="failed", error=STOPPED)
        return True

    async def stopped(self, entry: JournalEntry) -> bool:
        """Whether another process finished ``entry`` as stopped (:meth:`request_stop`); the
        process answering it then calls :meth:`stop_turn`."""
        stored = await self._store.journal_get(entry_id=entry.id)
        return stored is not None and stored.state == "failed" and stored.error == STOPPED

    async def _stoppable(self, key: PlatformKey, entry: JournalEntry) -> JournalFinish | None:
        """:meth:`_process`, which :meth:`stop_turn` may stop by cancelling the drain's task
        (no task of its own per entry): that one cancellation is taken back here, so the
        drain goes on to the next entry."""
        place = key.canonical
        task = asyncio.current_task()
        assert task is not None  # noqa: S101 - a drain is a task
        in_hand = self._in_hand[place] = _InHand(entry.id, task)
        try:
            return await self._process(entry)
        except asyncio.CancelledError:
            if not in_hand.stopped or task.cancelling() > 1:  # the drain itself is cancelled
                raise
            task.uncancel()
            logger.info("journal: a person stopped the turn", extra=self._context(entry))
            return JournalFinish.of(entry.id, state="failed", error=STOPPED)
        finally:
            if self._in_hand.get(place) is in_hand:
                del self._in_hand[place]

    async def _finish(self, finish: JournalFinish) -> None:
        changes = finish.changes
        await self._store.journal_update(
            entry_id=finish.entry_id,
            state=finish.state,
            conversation_id=changes.get("conversation_id", UNSET),
            user_message_id=changes.get("user_message_id", UNSET),
            reply_message_id=changes.get("reply_message_id", UNSET),
            shown_ref=changes.get("shown_ref", UNSET),
            error=changes.get("error", UNSET),
        )

    async def _tell(self, entry: JournalEntry, line: str) -> None:
        shower = self._showers.get(entry.key.platform)
        if shower is None:
            return
        try:
            await shower.tell(entry, line)
        except Exception as exc:  # noqa: BLE001 - telling is best effort; the entry is kept
            logger.warning("journal: could not tell the person (%s)", exc.__class__.__name__)

    async def _with_lease(
        self, lease: str, work: Coroutine[Any, Any, JournalFinish | None]
    ) -> JournalFinish | None:
        """Run ``work`` while :meth:`_renew_leases` renews ``lease`` (one timer for every
        entry in work here, not one per entry: most end long before a renewal is due)."""
        self._working.add(lease)
        if self._renewer is None:
            self._renewer = asyncio.create_task(self._renew_leases(), name="journal leases")
        try:
            return await work
        finally:
            self._working.discard(lease)
            renewal = self._renewals.get(lease)
            if renewal is not None:  # none may land after the next step lets the lease go
                await asyncio.gather(renewal, return_exceptions=True)

    async def _renew_leases(self) -> None:
        """Every third of a lease, renew the lease of each entry in work here: one in work
        at a tick was taken (or renewed) at most two thirds of a lease before it."""
        try:
            while self._working:
                await asyncio.sleep(self._lease / 3)
                for lease in self._working:
                    if lease not in self._renewals:
                        task = asyncio.create_task(self._renew(lease), name=f"renew {lease}")
                        self._renewals[lease] = task
                        task.add_done_callback(partial(self._renewed, lease))
        finally:
            self._renewer = None

    def _renewed(self, lease: str, task: asyncio.Task[None]) -> None:
        if self._renewals.get(lease) is task:
            del self._renewals[lease]

    async def _renew(self, lease: str) -> None:
        with contextlib.suppress(StoreError):
            await self._store.claim(key=lease, owner=self.owner, ttl_seconds=self._lease)

    async def _process(self, entry: JournalEntry) -> JournalFinish | None:
        """Answer (unless answered) and show (unless shown) one entry; returns its last
        write, for the drain's next step to make. Its log lines and spans (the turn's too)
        carry its platform, id and conversation."""
        with self._engine.telemetry.message(
            platform=entry.key.platform, event_id=entry.id, conversation_id=entry.conversation_id
        ):
            return await self._process_entry(entry)

    async def _process_entry(self, entry: JournalEntry) -> JournalFinish | None:
        shower = self._showers.get(entry.key.platform)
        if shower is None:
            logger.warning("journal: no adapter shows %s entries here", entry.key.platform)
            await asyncio.sleep(self._retry)  # another process may have one; keep the lease short
            return None
        if entry.attempts > 1 and entry.prior_touch is not None:
            # An earlier attempt stopped (its process died, or the store failed) after the
            # entry's last write; whatever it posted since then is recorded nowhere. Entries
            # of a place are answered one at a time, so what the bot posted there since
            # that write is this entry's.
            await shower.clear_leftovers(entry, entry.prior_touch)
        if entry.state == "received":
            return await self._answer(entry, shower)
        return await self._show_stored(entry, shower)

    async def _answer(self, entry: JournalEntry, shower: Shower) -> JournalFinish | None:
        """Answer an entry that :meth:`journal_advance` took (its attempt already counted)."""
        if entry.attempts > MAX_ATTEMPTS:
            logger.error(
                "journal: given up after %d attempts", MAX_ATTEMPTS, extra=self._context(entry)
            )
            await self._update(entry, state="failed", error="too many attempts")
            await self._tell(entry, GAVE_UP_LINE)
            return None
        incoming = await shower.incoming(entry)
        if incoming is None:
            return JournalFinish.of(entry.id, state="failed", error="nothing to answer")
        if entry.attempts > 1:  # an earlier attempt may have stored the message already
            incoming = replace(incoming, resume=True)
        pause, told = self._retry, False
        while True:
            try:
                turn = self._engine.reply(incoming)
            except EngineBusy:  # the entry is safe and first in line: wait for room
                if not told:
                    told = True
                    await self._tell(entry, QUEUED_LINE)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
                continue
            break
        in_hand = self._in_hand.get(entry.key.canonical)
        if in_hand is not None and in_hand.entry_id == entry.id:
            in_hand.turn = turn
        unrecorded = self._unrecorded.pop(entry.id)
        if unrecorded is not None:  # the latest post, made while the store was down
            entry = entry.model_copy(update={"shown_ref": unrecorded})
        shown = await shower.show_live(entry, turn)
        result = await turn.result()  # a StoreError leaves the entry received: retried
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("journal: answered", extra=self._context(entry, result.conversation.id))
        stored: dict[str, str | None] = {
            "conversation_id": result.conversation.id,
            "user_message_id": result.user_message.id,
            "reply_message_id": result.reply.id,
        }
        if shown.ref is not None:  # else keep the one reply_posted recorded
            stored["shown_ref"] = shown.ref
        self._unrecorded.pop(entry.id)  # stored after all: nothing for a retry to delete
        if shown.complete:  # shown in full as it streamed: one write records both steps
            return JournalFinish.of(entry.id, state="shown", **stored)
        entry = await self._update(entry, state="answered", **stored)
        return await self._show_stored(entry, shower)

    async def _show_stored(self, entry: JournalEntry, shower: Shower) -> JournalFinish:
        text = await self._reply_text(entry)
        if text is None:
            return JournalFinish.of(entry.id, state="failed", error="the stored reply is gone")
        shown = await shower.show_stored(entry, text)
        if not shown.complete:
            raise ShowFailed(entry.id)
        return JournalFinish.of(entry.id, state="shown", shown_ref=shown.ref or entry.shown_ref)

    async def _reply_text(self, entry: JournalEntry) -> str | None:
        _, reply = await stored_messages(self._store, entry)
        return None if reply is None else reply.text

    async def _update(self, entry: JournalEntry, **changes: Any) -> JournalEntry:
        updated = await self._store.journal_update(entry_id=entry.id, **changes)
        return updated or entry

    def _context(
        self, entry: JournalEntry, conversation_id: str | None = None
    ) -> Mapping[str, str]:
        return entry_context(entry, conversation_id)


def entry_context(entry: JournalEntry, conversation_id: str | None = None) -> dict[str, str]:
    """The log context of a line about a journal entry."""
    return conversation_context(
        conversation_id=conversation_id or entry.conversation_id or "-",
        platform=entry.key.platform,
        event_id=entry.id,
    )


READ_BACK = 50
"""Newest messages of its conversation read to find an entry's stored messages (they are among
them unless the conversation moved on by that much since)."""


async def stored_messages(
    store: ConversationStore, entry: JournalEntry
) -> tuple[Message | None, Message | None]:
    """The stored user message and reply of an answered entry (None where not found): one
    read of the conversation's newest messages."""
    if entry.conversation_id is None:
        return None, None
    messages = await store.list_messages(
        conversation_id=entry.conversation_id, limit=READ_BACK, newest_first=True
    )
    found = {message.id: message for message in messages}
    return found.get(entry.user_message_id or ""), found.get(entry.reply_message_id or "")


class ShowFailed(ParleyError):
    """The platform would not show a stored reply; the entry stays answered for a retry."""

    def __init__(self, entry_id: str) -> None:
        super().__init__(f"could not show the reply of {entry_id}")
