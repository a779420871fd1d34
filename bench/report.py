"""The printed report (plain text, aligned columns), the targets, and the optional JSON.

Targets:

* p99 overhead < 5 ms per message with 1,000 concurrent conversations on SQLite, judged
  separately on the "in flight 1" row (pure overhead) and the "in flight 50" row (overhead
  plus waiting behind the other 49 turns on the one event loop); the "in flight 1,000" row
  measures throughput, its latency is mostly waiting in line;
* per-turn prompt tokens flat: the history part of every engine prompt stays within the
  agent's ``context_tokens`` at every checkpoint while the naive prompt grows;
* engine overhead (p50) at 10,000 messages within 1.5x of that at 10 messages.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.plan import Plan
from bench.stats import Row

P99_TARGET_MS = 5.0
GROWTH_RATIO_TARGET = 1.5
THROUGHPUT_TARGET = 1000
"""Turns a second one process carries with the instant model (issue #18)."""
THROUGHPUT_CONVERSATIONS = 1000
"""Judged with at least this many conversations in flight (not in ``--quick`` runs)."""


@dataclass
class Target:
    store: str
    name: str
    met: bool
    detail: str


@dataclass
class Report:
    started: datetime
    machine: dict[str, str]
    setup: list[str]
    plans: dict[str, Plan] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    budget: int = 0
    elapsed_s: float = 0.0
    ratios: dict[str, dict[str, float]] = field(default_factory=dict)
    targets: list[Target] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    """Figures that fit no table row (the memory benchmark's quality measures)."""


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_at_start": load_average(),
    }


def load_average() -> str:
    """The 1-minute load average: other work on the machine inflates every figure."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


# judging ---------------------------------------------------------------------------------


def _find(rows: list[Row], store: str, **match: Any) -> Row | None:
    for row in rows:
        if row.store == store and all(getattr(row, k) == v for k, v in match.items()):
            return row
    return None


def judge(report: Report) -> None:
    """Fill in the ratios, the targets and the table's target column."""
    for store in report.plans:
        _judge_concurrency(report, store)
        _judge_growth(report, store)


def _judge_concurrency(report: Report, store: str) -> None:
    plan = report.plans[store]
    single = _find(report.rows, store, section="concurrency", in_flight=1)
    pooled = _find(report.rows, store, section="concurrency", in_flight=plan.pool)
    if single is None or pooled is None:
        return
    if store != "sqlite":
        single.target = pooled.target = "(no target)"
        return
    for row in (single, pooled):
        verdict = "met" if row.p99_ms < P99_TARGET_MS else "NOT met"
        row.target = f"p99<{P99_TARGET_MS:g}ms {verdict}"
    where = f"{plan.conversations:,} concurrent conversations"
    report.targets.append(
        Target(
            store=store,
            name=f"p99 overhead < {P99_TARGET_MS:g} ms per message at {where}, judged on the "
            "in flight 1 row (pure per-message overhead)",
            met=single.p99_ms < P99_TARGET_MS,
            detail=f"in flight 1: p50 {single.p50_ms:.2f} ms, "
            f"p99 {single.p99_ms:.2f} ms over {single.samples:,} turns",
        )
    )
    amortised = pooled.wall_s / pooled.samples * 1000
    crowd = _find(report.rows, store, section="concurrency", in_flight=plan.conversations)
    if crowd is not None and plan.conversations >= THROUGHPUT_CONVERSATIONS:
        met = crowd.msgs_per_s >= THROUGHPUT_TARGET
        crowd.target = f">={THROUGHPUT_TARGET:,} msgs/s {'met' if met else 'NOT met'}"
        report.targets.append(
            Target(
                store=store,
                name=f"engine >= {THROUGHPUT_TARGET:,} turns/s with {plan.conversations:,} "
                "conversations in flight",
                met=met,
                detail=f"{crowd.msgs_per_s:,.0f} msgs/s over {crowd.samples:,} turns "
                f"({crowd.wall_s / crowd.samples * 1000:.2f} ms wall, "
                f"{crowd.cpu_ms_per_msg:.2f} ms CPU per message)",
            )
        )
    report.targets.append(
        Target(
            store=store,
            name=f"p99 latency < {P99_TARGET_MS:g} ms per message at {where}, judged on the "
            f"in flight {plan.pool} row (overhead plus queueing)",
            met=pooled.p99_ms < P99_TARGET_MS,
            detail=f"in flight {plan.pool}: p50 {pooled.p50_ms:.2f} ms, p99 "
            f"{pooled.p99_ms:.2f} ms; all turns share one event loop, so a turn waits for "
            f"the ~{plan.pool - 1} ahead of it (latency ~= {plan.pool} x {amortised:.2f} ms, "
            "the amortised cost per message)",
        )
    )


def _judge_growth(report: Report, store: str) -> None:
    engine = [
        r
        for r in report.rows
        if r.store == store and r.section == "growth" and r.approach == "engine"
    ]
    naive = [
        r
        for r in report.rows
        if r.store == store and r.section == "growth" and r.approach == "naive"
    ]
    if not engine or not naive:
        return
    small, large = engine[0], engine[-1]
    naive_large = naive[-1]
    ratios = {
        "engine_p50_largest_over_smallest": large.p50_ms / small.p50_ms,
        "engine_p99_largest_over_smallest": large.p99_ms / small.p99_ms,
        "naive_over_engine_tokens_at_largest": (naive_large.prompt_tokens or 0)
        / max(1, large.prompt_tokens or 0),
        "naive_over_engine_p50_at_largest": naive_large.p50_ms / large.p50_ms,
        "naive_over_engine_p99_at_largest": naive_large.p99_ms / large.p99_ms,
    }
    report.ratios[store] = ratios

    history_max = max(r.history_tokens_max or 0 for r in engine)
    bounded = history_max <= report.budget
    grows = (naive_large.prompt_tokens or 0) > (large.prompt_tokens or 0) and (
        naive_large.prompt_tokens or 0
    ) > (naive[0].prompt_tokens or 0)
    for row in engine:
        row.target = f"hist<={report.budget} " + (
            "met" if (row.history_tokens_max or 0) <= report.budget else "NOT met"
        )
    engine_tokens = " -> ".join(f"{r.prompt_tokens:,}" for r in engine)
    naive_tokens = " -> ".join(f"{r.prompt_tokens:,}" for r in naive)
    report.targets.append(
        Target(
            store=store,
            name="per-turn prompt tokens flat (bounded by the budget) while the naive ones grow",
            met=bounded and grows,
            detail=f"engine history <= {report.budget:,} at every checkpoint (max "
            f"{history_max:,}); engine prompt {engine_tokens}; naive prompt {naive_tokens}",
        )
    )
    ratio = ratios["engine_p50_largest_over_smallest"]
    large.target += f"; <={GROWTH_RATIO_TARGET:g}x " + (
        "met" if ratio <= GROWTH_RATIO_TARGET else "NOT met"
    )
    report.targets.append(
        Target(
            store=store,
            name=f"engine overhead at {large.messages:,} msgs within {GROWTH_RATIO_TARGET:g}x of "
            f"that at {small.messages:,}",
            met=ratio <= GROWTH_RATIO_TARGET,
            detail=f"p50 {large.p50_ms:.2f} / {small.p50_ms:.2f} ms = {ratio:.2f}x "
            f"(p99 {ratios['engine_p99_largest_over_smallest']:.2f}x, not judged: few samples)",
        )
    )


# rendering -------------------------------------------------------------------------------

_COLUMNS = (
    ("store", "<"),
    ("scenario", "<"),
    ("n", ">"),
    ("msgs at turn", ">"),
    ("p50 ms", ">"),
    ("p99 ms", ">"),
    ("msgs/s", ">"),
    ("ms/msg", ">"),
    ("prompt tokens", ">"),
    ("target", "<"),
)


def _cells(row: Row) -> tuple[str, ...]:
    return (
        row.store,
        row.scenario,
        f"{row.samples:,}",
        row.span or "-",
        f"{row.p50_ms:.2f}",
        f"{row.p99_ms:.2f}",
        f"{row.msgs_per_s:,.0f}" if row.msgs_per_s else "-",
        f"{row.wall_s / row.samples * 1000:.2f}" if row.wall_s else "-",
        "-" if row.prompt_tokens is None else f"{row.prompt_tokens:,}",
        row.target,
    )


def table(rows: list[Row]) -> list[str]:
    lines = [tuple(name for name, _ in _COLUMNS), *(_cells(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(_COLUMNS))]

    def render(cells: tuple[str, ...]) -> str:
        parts = [
            f"{cell:{align}{width}}"
            for cell, (_, align), width in zip(cells, _COLUMNS, widths, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [render(lines[0]), "  ".join("-" * width for width in widths)]
    previous = None
    for row, cells in zip(rows, lines[1:], strict=True):
        if previous is not None and (row.store, row.section) != previous:
            out.append("")
        previous = (row.store, row.section)
        out.append(render(cells))
    return out


def render(report: Report) -> str:
    m = report.machine
    out = [
        f"Parley benchmark, {report.started:%Y-%m-%d %H:%M:%S %Z}",
        f"Machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, {m['platform']}",
        f"Load average (1 min): {m['load_at_start']} at start, {m.get('load_at_end', '?')} at "
        "end (anything else running on the machine inflates the figures)",
        *report.setup,
    ]
    for store, plan in report.plans.items():
        sampled = (
            f" (in flight 1 and {plan.pool}: the first {plan.sampled_turns:,} turns)"
            if plan.sampled_turns
            else ""
        )
        out.append(
            f"Plan ({store}): {plan.conversations:,} conversations x "
            f"{plan.turns_per_conversation} measured messages per phase{sampled} after "
            f"{plan.warm_turns} warm-up turns each; growth checkpoints "
            + ", ".join(f"{c:,}" for c in plan.checkpoints)
            + f" msgs, {plan.engine_turns} engine / {plan.naive_turns} naive turns each"
        )
        out += [f"  note: {note}" for note in plan.notes]
    for store, reason in report.skipped.items():
        out.append(f"Skipped ({store}): {reason}")
    out += ["", *table(report.rows), ""]
    out += _throughput(report)
    out += _ratios(report)
    if report.details:
        out += ["", *report.details]
    out += ["", "Targets"]
    when, before = previous_targets()
    for target in report.targets:
        verdict = "met" if target.met else "NOT met"
        out.append(f"  [{verdict:>7}] {target.store}: {target.name}")
        out.append(f"            {target.detail}")
        earlier = before.get((target.store, target.name))
        if earlier is not None:
            out.append(f"            before ({when}): {earlier}")
    out += [
        "",
        "Reading the table: 'msgs at turn' is the conversation size when the measured turns "
        "started; p99 over fewer than 100 turns is the slowest turn; 'ms/msg' is the phase's "
        "wall time / messages (the amortised cost, free of queueing).",
        f"Run took {report.elapsed_s:,.0f} s.",
    ]
    return "\n".join(out)


def _throughput(report: Report) -> list[str]:
    out = []
    for store, plan in report.plans.items():
        row = _find(report.rows, store, section="concurrency", in_flight=plan.conversations)
        if row is None:
            continue
        out.append(
            f"Throughput ({store}, {plan.conversations:,} in flight): {row.msgs_per_s:,.0f} "
            f"msgs/s; amortised {row.wall_s / row.samples * 1000:.2f} ms wall per message "
            f"({row.cpu_ms_per_msg:.2f} ms CPU of this process per message)"
        )
    return out


def _ratios(report: Report) -> list[str]:
    out = []
    for store, ratios in report.ratios.items():
        plan = report.plans[store]
        small, large = f"{plan.checkpoints[0]:,}", f"{plan.checkpoints[-1]:,}"
        out += [
            f"Ratios ({store}):",
            f"  engine overhead at {large} msgs / at {small} msgs: "
            f"p50 {ratios['engine_p50_largest_over_smallest']:.2f}x, "
            f"p99 {ratios['engine_p99_largest_over_smallest']:.2f}x "
            f"(target <= {GROWTH_RATIO_TARGET:g}x)",
            f"  naive / engine prompt tokens at {large} msgs: "
            f"{ratios['naive_over_engine_tokens_at_largest']:,.1f}x",
            f"  naive / engine overhead at {large} msgs: "
            f"p50 {ratios['naive_over_engine_p50_at_largest']:,.1f}x, "
            f"p99 {ratios['naive_over_engine_p99_at_largest']:,.1f}x",
        ]
    return out


PREVIOUS = Path(__file__).with_name("previous.json")
"""The figures of the run kept in the repository, printed beside each target's (replace them
with ``python -m bench --json bench/previous.json`` on a quiet machine)."""


def previous_targets(path: Path = PREVIOUS) -> tuple[str, dict[tuple[str, str], str]]:
    """The day of the kept run, and each of its targets' verdict and figures by (store,
    name); nothing when there is no readable file."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "", {}
    if not isinstance(document, dict):
        return "", {}
    found: dict[tuple[str, str], str] = {}
    for target in document.get("targets") or []:
        if isinstance(target, dict) and {"store", "name", "met", "detail"} <= target.keys():
            verdict = "met" if target["met"] else "NOT met"
            found[(str(target["store"]), str(target["name"]))] = f"{verdict}, {target['detail']}"
    return str(document.get("started", ""))[:10], found


def write_json(report: Report, path: Path) -> None:
    document = {
        "started": report.started.isoformat(),
        "elapsed_s": report.elapsed_s,
        "machine": report.machine,
        "setup": report.setup,
        "context_tokens": report.budget,
        "plans": {store: asdict(plan) for store, plan in report.plans.items()},
        "skipped": report.skipped,
        "rows": [asdict(row) for row in report.rows],
        "ratios": report.ratios,
        "targets": [asdict(target) for target in report.targets],
        "details": report.details,
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
