"""How much work each store gets: the full run, ``--quick``, and reductions for slow stores.

The full run is sized to finish in about ten minutes on a 2-core machine. SecantusDB (the
MongoDB stand-in) is a Python server that scans the whole conversations collection on every
lookup by platform key (``explain()`` shows a COLLSCAN: it does not use the partial unique
index on ``key_id``) and whose appends slow down with the number of conversations, so a turn
costs it ~85 ms at 1,000 conversations against ~2 ms for SQLite; its inserts also slow down
as the messages collection grows. Its run keeps 1,000 conversations but times fewer turns,
and its growth stops at 1,000 messages; every reduction is printed with the results.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Plan:
    conversations: int
    """Concurrent conversations (distinct platform keys)."""
    warm_turns: int
    """Unmeasured turns per conversation before the measured phases."""
    turns_per_conversation: int
    """Measured turns per conversation in each concurrency phase."""
    pool: int
    """Turns in flight in the middle concurrency phase."""
    checkpoints: tuple[int, ...]
    """Conversation sizes (messages) at which growth is measured."""
    engine_turns: int
    """Measured engine turns per growth checkpoint."""
    naive_turns: int
    """Measured naive turns per growth checkpoint."""
    naive_turns_largest: int
    """Measured naive turns at the largest checkpoint (each loads the whole history)."""
    sampled_turns: int | None = None
    """If set, the in-flight-1 and pool phases time only the first this many turns of their
    round-robin order (the all-at-once phase always sends from every conversation)."""
    notes: tuple[str, ...] = field(default=())

    def turns_for(self, approach: str, messages: int) -> int:
        if approach == "engine":
            return self.engine_turns
        if messages == max(self.checkpoints):
            return self.naive_turns_largest
        return self.naive_turns


def plan_for(store: str, *, quick: bool) -> Plan:
    if quick:
        return Plan(
            conversations=100,
            warm_turns=2,
            turns_per_conversation=3 if store == "sqlite" else 2,
            pool=50,
            checkpoints=(10, 100, 1_000),
            engine_turns=20 if store == "sqlite" else 10,
            naive_turns=20 if store == "sqlite" else 10,
            naive_turns_largest=20 if store == "sqlite" else 10,
            notes=("quick run: 100 conversations, checkpoints up to 1,000 messages",),
        )
    if store == "sqlite":
        return Plan(
            conversations=1_000,
            warm_turns=3,
            turns_per_conversation=5,
            pool=50,
            checkpoints=(10, 100, 1_000, 10_000),
            engine_turns=50,
            naive_turns=50,
            naive_turns_largest=20,
            notes=("naive baseline: 20 turns at 10,000 messages (each loads everything)",),
        )
    return Plan(
        conversations=1_000,
        warm_turns=1,
        turns_per_conversation=1,
        pool=50,
        checkpoints=(10, 100, 1_000),
        engine_turns=10,
        naive_turns=10,
        naive_turns_largest=10,
        sampled_turns=200,
        notes=(
            "reduced for SecantusDB, whose key lookups scan the conversations collection and "
            "whose appends slow down with it (~85 ms a turn at 1,000 conversations): 1 warm-up "
            "turn per conversation, 200 timed turns in flight 1 and 50, 1 message per "
            "conversation in flight 1,000; 10 engine and 10 naive turns per growth checkpoint",
            "growth stops at 1,000 messages on SecantusDB: its inserts slow down as the "
            "messages collection grows, so pre-filling 10,000 messages alone takes ~8 minutes",
        ),
    )
