"""Percentiles and the record of one measured scenario."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (``q`` in 0-100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median_int(values: Sequence[int]) -> int | None:
    return round(statistics.median(values)) if values else None


@dataclass
class Row:
    """One line of the results table; times in milliseconds."""

    store: str
    section: str
    """"concurrency" or "growth"."""
    approach: str
    """"engine" or "naive"."""
    scenario: str
    samples: int
    p50_ms: float
    p99_ms: float
    msgs_per_s: float
    wall_s: float
    cpu_ms_per_msg: float
    prompt_tokens: int | None = None
    """Median prompt tokens of the measured turns (sampled for the concurrency rows)."""
    history_tokens_max: int | None = None
    """Largest history part of an engine prompt (must stay within the agent's budget)."""
    in_flight: int | None = None
    messages: int | None = None
    """Growth: messages in the conversation when a measured turn starts."""
    span: str = ""
    """Growth: the range of conversation sizes the turns started at."""
    target: str = ""


def summarise(
    *,
    latencies: Sequence[float],
    wall: float,
    cpu: float,
    store: str,
    section: str,
    approach: str,
    scenario: str,
) -> Row:
    """A row from per-turn latencies (seconds), the phase's wall time and process CPU time."""
    count = len(latencies)
    return Row(
        store=store,
        section=section,
        approach=approach,
        scenario=scenario,
        samples=count,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        msgs_per_s=count / wall if wall > 0 else 0.0,
        wall_s=wall,
        cpu_ms_per_msg=cpu / count * 1000,
    )
