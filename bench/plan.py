"""How much work each store gets: the full run, ``--quick``, and reductions for slow stores.

The full run is sized to finish in about ten minutes on a 2-core machine. SecantusDB (the
MongoDB stand-in) is a Python server roughly ten times slower than SQLite here, so its run
keeps 1,000 concurrent conversations but sends fewer messages each and measures fewer turns
per growth checkpoint; every reduction is printed with the results.
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
        checkpoints=(10, 100, 1_000, 10_000),
        engine_turns=20,
        naive_turns=20,
        naive_turns_largest=10,
        notes=(
            "reduced for SecantusDB (a Python test server): 1 warm-up and 1 measured message "
            "per conversation per phase (1,000 turns a phase); 20 engine and 20 naive turns "
            "per growth checkpoint, 10 naive turns at 10,000 messages",
        ),
    )
