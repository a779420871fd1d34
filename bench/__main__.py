"""``python -m bench [--quick] [--stores sqlite,mongo] [--no-api | --api-only |
--journal-only | --memory-only | --stream-only | --footprint-only] [--no-footprint]
[--slack on|off|only] [--json PATH]``.

Runs every scenario of ``bench.engine_bench``, ``bench.journal_bench`` and
``bench.memory_bench`` (people memory; its quality workload on SQLite only) for each store on
one asyncio event loop:
SQLite on a file in a temporary directory, MongoDB through a SecantusDB subprocess started on
a free loopback port (skipped, with the reason printed, when ``secantusd-py`` is missing).
Then Slack's acknowledgement through a bot process (``bench.slack_ack``), the bot process's
memory footprint in issue #18's configuration (``bench.footprint``: ``python -m bot run`` with
Slack, Discord, the API and the console on, after 1,000 conversations; 200 with ``--quick``)
and the HTTP API's share (``bench.api_bench``: SQLite, a server process and a client
process). Progress goes to stderr; the report goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from pathlib import Path
from time import perf_counter

from bench.api_bench import run_api
from bench.engine_bench import Bench, concurrency, growth
from bench.fake_model import InstantModel
from bench.footprint import run_footprint
from bench.journal_bench import run_journal
from bench.memory_bench import run_memory
from bench.plan import Plan, plan_for
from bench.report import Report, Target, judge, load_average, machine, render, write_json
from bench.secantus import SecantusServer, SecantusUnavailable
from bench.slack_ack import run_slack_ack
from bench.stats import Row
from bench.stream_bench import run_stream
from bench.workload import CONTEXT_TOKENS, MODEL, bench_agents
from bot.tokens import TokenCounter, encoding_name_for
from config.settings import Settings
from memory.base import ConversationStore

STORES = ("sqlite", "mongo")
FOOTPRINT_CONVERSATIONS = 1000
FOOTPRINT_QUICK_CONVERSATIONS = 200


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure Parley's per-message overhead, prompt growth and throughput "
        "with an instant fake model.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small numbers for a sanity run (100 conversations, checkpoints up to 1,000; "
        f"the footprint after {FOOTPRINT_QUICK_CONVERSATIONS} conversations)",
    )
    parser.add_argument(
        "--stores",
        default=",".join(STORES),
        help="comma-separated stores to measure: sqlite, mongo (default: both)",
    )
    parser.add_argument(
        "--tokens",
        choices=("estimate", "exact"),
        default=Settings.model_fields["token_counting"].default,
        help="how the in-process engine counts tokens (TOKEN_COUNTING; default: the bot's)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    api = parser.add_mutually_exclusive_group()
    api.add_argument("--no-api", action="store_true", help="skip the HTTP API benchmark")
    api.add_argument("--api-only", action="store_true", help="only the HTTP API benchmark (SQLite)")
    api.add_argument(
        "--journal-only", action="store_true", help="only the turn journal's benchmark, per store"
    )
    api.add_argument(
        "--stream-only",
        action="store_true",
        help="only the streaming benchmark (CPU per character of a short and a long reply)",
    )
    api.add_argument(
        "--memory-only",
        action="store_true",
        help="only the people memory benchmark: quality on SQLite, recall time per store",
    )
    api.add_argument(
        "--footprint-only",
        action="store_true",
        help="only the memory footprint of python -m bot run with Slack, Discord, the API and "
        f"the console on, after {FOOTPRINT_CONVERSATIONS:,} conversations",
    )
    parser.add_argument(
        "--no-footprint",
        action="store_true",
        help="skip the memory footprint benchmark (a bot process, about a minute)",
    )
    parser.add_argument(
        "--slack",
        choices=("on", "off", "only"),
        default="on",
        help="the Slack acknowledgement benchmark (a bot process over the fake Slack): "
        "with the rest (on), skipped (off), or alone (only)",
    )
    args = parser.parse_args(argv)
    if args.footprint_only and (args.no_footprint or args.slack == "only"):
        parser.error(
            "--footprint-only runs the footprint alone: not with --no-footprint or --slack only"
        )
    stores = [name.strip() for name in args.stores.split(",") if name.strip()]
    unknown = sorted(set(stores) - set(STORES))
    if unknown or not stores:
        parser.error(f"--stores takes sqlite and/or mongo (got {args.stores!r})")
    args.stores = list(dict.fromkeys(stores))
    return args


_STARTED = perf_counter()


def progress(store: str) -> Callable[[str], None]:
    def say(text: str) -> None:
        elapsed = perf_counter() - _STARTED
        print(f"[{elapsed:6.1f}s {store}] {text}", file=sys.stderr, flush=True)

    return say


def _secantus_version() -> str:
    try:
        return metadata.version("secantusdb")
    except metadata.PackageNotFoundError:
        return "unknown version"


StoreFactory = Callable[[str], ConversationStore]
"""Makes an empty store for one section ("concurrency" or "growth")."""


async def _section(
    *,
    name: str,
    section: str,
    make_store: StoreFactory,
    tokens: TokenCounter,
    plan: Plan,
    run: Callable[[Bench], Awaitable[list[Row]]],
) -> list[Row]:
    store = make_store(section)
    model = InstantModel()
    await store.open()
    try:
        bench = Bench(
            store_name=name,
            store=store,
            agents=bench_agents(),
            model=model,
            tokens=tokens,
            plan=plan,
            progress=progress(name),
        )
        return await run(bench)
    finally:
        await store.close()
        await model.close()


async def _measure(
    name: str,
    make_store: StoreFactory,
    report: Report,
    tokens: TokenCounter,
    quick: bool,
    *,
    journal_only: bool = False,
    memory_only: bool = False,
) -> list[Row]:
    """Concurrency on one store, then growth on a fresh one (so the 1,000 conversations do
    not weigh on the growing conversation), then the journal and people memory, each on a
    fresh store too."""
    plan = plan_for(name, quick=quick)
    engine = not (journal_only or memory_only)
    if engine:  # the plan describes the engine's sections only
        report.plans[name] = plan
    rows: list[Row] = []
    for section, run in (("concurrency", concurrency), ("growth", growth)) if engine else ():
        rows += await _section(
            name=name, section=section, make_store=make_store, tokens=tokens, plan=plan, run=run
        )
    if not memory_only:
        rows += await _journal(name, make_store, report, tokens, quick)
    if not journal_only:
        memory_rows, targets, details = await run_memory(
            make_store,
            store_name=name,
            quick=quick,
            quality_here=name == "sqlite",
            tokens=tokens,
            progress=progress(name),
        )
        rows += memory_rows
        report.targets += targets
        report.details += details
    return rows


async def _journal(
    name: str, make_store: StoreFactory, report: Report, tokens: TokenCounter, quick: bool
) -> list[Row]:
    store = make_store("journal")
    await store.open()
    try:
        places, per_place = (50, 4) if quick else (200, 10)
        rows, targets = await run_journal(
            store,
            store_name=name,
            tokens=tokens,
            places=places,
            per_place=per_place,
            progress=progress(name),
        )
    finally:
        await store.close()
    report.targets += targets
    return rows


async def run(args: argparse.Namespace) -> Report:
    started = perf_counter()
    tokens = TokenCounter(args.tokens)
    tokens.warm(MODEL)
    if tokens.exact(MODEL):
        counting = f"tiktoken {encoding_name_for(MODEL)} (TOKEN_COUNTING=exact)"
    elif args.tokens == "exact":
        counting = "the estimate (TOKEN_COUNTING=exact, but tiktoken's table was unavailable)"
    else:
        counting = "the estimate (TOKEN_COUNTING=estimate)"
    report = Report(
        started=datetime.now(UTC),
        machine=machine(),
        setup=[
            "Model: instant in-process fake (zero latency); every figure is engine + store "
            "overhead.",
            f"Tokens: {MODEL}, counted with {counting}; agent 'chef' with context_tokens "
            f"{CONTEXT_TOKENS:,} and a 4-field response shape.",
            "Stores: SQLite = files in a temporary directory (WAL); MongoDB = SecantusDB "
            f"{_secantus_version()} subprocess on loopback (a Python test server, much slower "
            "than a real MongoDB). Growth runs on a fresh file / database.",
        ],
        budget=CONTEXT_TOKENS,
    )
    alone = args.api_only or args.stream_only or args.footprint_only or args.slack == "only"
    stores = [] if alone else args.stores
    if stores and not args.journal_only:
        report.setup.append(
            "People memory: agent 'chef' with memory {extract: inline} and memory_tokens 300; "
            "the fake model lists first-person sentences as facts and answers consolidations "
            "by a fixed rule; quality on SQLite only"
            + ("" if "sqlite" in stores else " (not selected: skipped)")
            + "; recall time per store, keyword only (no embeddings)."
        )
    with tempfile.TemporaryDirectory(prefix="parley-bench-") as tmp:
        workdir = Path(tmp)
        for name in stores:
            if name == "sqlite":
                from memory.sqlite import SqliteStore

                def sqlite_store(section: str) -> ConversationStore:
                    return SqliteStore(path=workdir / f"{section}.sqlite3")

                report.rows += await _measure(
                    name,
                    sqlite_store,
                    report,
                    tokens,
                    args.quick,
                    journal_only=args.journal_only,
                    memory_only=args.memory_only,
                )
                continue
            from memory.mongo import MongoStore

            try:
                async with SecantusServer(workdir) as uri:

                    def mongo_store(section: str, uri: str = uri) -> ConversationStore:
                        return MongoStore(uri=uri, database=f"parley_bench_{section}")

                    report.rows += await _measure(
                        name,
                        mongo_store,
                        report,
                        tokens,
                        args.quick,
                        journal_only=args.journal_only,
                        memory_only=args.memory_only,
                    )
            except SecantusUnavailable as exc:
                report.skipped[name] = f"MongoDB rows skipped: {exc}"
                progress(name)(report.skipped[name])
    judge(report)
    if not _alone(args, "stream"):
        targets, setup = await run_stream(progress("stream"))
        report.targets += targets
        report.setup.append(setup)
    if not args.stream_only:
        await _processes(args, report)
    report.elapsed_s = perf_counter() - started
    report.machine["load_at_end"] = load_average()
    return report


def _alone(args: argparse.Namespace, section: str) -> bool:
    """Whether another section was asked for alone (``--api-only``, ``--slack only``...),
    which leaves ``section`` out."""
    alone = {
        "api": args.api_only,
        "journal": args.journal_only,
        "memory": args.memory_only,
        "stream": args.stream_only,
        "footprint": args.footprint_only,
        "slack": args.slack == "only",
    }
    return any(chosen for name, chosen in alone.items() if name != section)


async def _processes(args: argparse.Namespace, report: Report) -> None:
    """The sections that run the bot as processes: Slack's acknowledgement, the footprint,
    the HTTP API's share."""
    sections: list[Callable[[], Awaitable[tuple[list[Row], list[Target], str]]]] = []
    if args.slack != "off" and not _alone(args, "slack"):
        threads, rounds = (10, 3) if args.quick else (30, 5)
        sections.append(
            partial(
                run_slack_ack,
                threads=threads,
                rounds=rounds,
                rate=20.0,
                progress=progress("slack"),
            )
        )
    if not (args.no_footprint or _alone(args, "footprint")):
        conversations = FOOTPRINT_QUICK_CONVERSATIONS if args.quick else FOOTPRINT_CONVERSATIONS
        sections.append(
            partial(run_footprint, conversations=conversations, progress=progress("footprint"))
        )
    if not (args.no_api or _alone(args, "api")):
        sections.append(partial(run_api, quick=args.quick, progress=progress("api")))
    for section in sections:
        rows, targets, setup = await section()
        report.rows += rows
        report.targets += targets
        report.setup.append(setup)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    report = asyncio.run(run(args))
    print(render(report))
    if args.json is not None:
        write_json(report, args.json)
        print(f"Figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
