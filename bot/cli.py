"""``python -m bot``: parse arguments, load configuration, hand over, map outcomes to exit codes.

Exit codes: 0 done, 1 a runtime failure (store unreachable...), 2 bad configuration or usage,
3 a platform connection was lost for good while running (``run``: restart the process).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from adapters.terminal import TerminalAdapter, TerminalSession
from bot.catalog import AgentCatalog
from bot.embeddings import build_embedder
from bot.errors import EXIT_CONFIG, EXIT_FAILURE, ConfigError, NotFound, ParleyError
from bot.keys import PLATFORMS, SCOPES, WORKSPACE, ApiKeys
from bot.knowledge import Knowledge, count_with
from bot.listings import agent_lines, conversation_lines, describe_agent
from bot.logs import configure_logging
from bot.runtime import Runtime
from bot.scheduler import GoalCheckPoster, GoalCheckRunner, PrintingPoster
from bot.tokens import TokenCounter
from bot.usage import report_lines, usage_report
from config.agents import Agent, AgentsFile, load_agents
from config.pricing import Prices, load_prices
from config.redact import redact_url
from config.settings import Settings, load_settings
from memory.base import (
    MAX_KEY_LIMITS,
    MAX_PAGE,
    USAGE_GROUPS,
    ApiKeyRecord,
    ConversationQuery,
    Memory,
    MemoryQuery,
    MemoryScope,
    Platform,
    UsageGroup,
    UsageQuery,
)
from memory.export import export_conversation
from memory.factory import build_store

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_PLATFORM_LOST = 3
"""``run`` stopped because an adapter gave up reconnecting: a supervisor should restart it."""

PLATFORM_HELP = """\
No chat platform is configured, so there is nothing to connect to yet.
Set these in .env or the environment:
  Slack:   SLACK_BOT_TOKEN and SLACK_APP_TOKEN (Socket Mode),
           or SLACK_MODE=http with SLACK_SIGNING_SECRET
  Discord: DISCORD_BOT_TOKEN
  Model:   OPENAI_API_KEY, or OPENAI_BASE_URL for any OpenAI-compatible server (Ollama, vLLM...)
See README.md for creating the Slack and Discord apps.
Meanwhile you can talk to an agent in this terminal: python -m bot chat [--agent ID]"""


API_ONLY = """\
No chat platform is configured (see README.md for Slack and Discord); serving the HTTP API.
  Docs:     http://localhost:{port}/api/docs
  Console:  http://localhost:{port}/console
  A key:    python -m bot keys create --name me --scope admin
Stop with Ctrl+C.
"""


@dataclass(frozen=True, slots=True)
class Loaded:
    settings: Settings
    agents: AgentsFile


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot", description="Parley: AI agents that remember, in Slack and Discord."
    )
    parser.add_argument("--env-file", type=Path, default=Path(".env"), help="default: .env")
    parser.add_argument("--version", action="version", version=f"parley {version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", help="run the bot on the configured platforms")
    commands.add_parser("check", help="validate settings and the agents file, say what is set up")
    commands.add_parser(
        "agents", help="list the agents: the agents file's and those stored through the API"
    )
    conversations = commands.add_parser(
        "conversations", help="list stored conversations, most recently updated first"
    )
    conversations.add_argument("--platform", choices=PLATFORMS)
    conversations.add_argument("--agent", help="only this agent's")
    conversations.add_argument("--tag", help="only those with this tag")
    conversations.add_argument("--text", help="a literal piece of the title, summary or source")
    conversations.add_argument("--open", action="store_true", help="leave out closed ones")
    conversations.add_argument("--limit", type=_limit, default=20, help="default: 20")
    chat = commands.add_parser("chat", help="talk to an agent in this terminal")
    chat.add_argument("--agent", help="agent id (default: the default agent)")
    chat.add_argument(
        "--conversation", help="conversation name, to resume it later (default: the agent id)"
    )
    chat.add_argument("--as", dest="author", default="", help="your name, as the agent sees it")
    summarize = commands.add_parser("summarize", help="run the agents' goal checks once")
    summarize.add_argument("--now", action="store_true", required=True, help="run them now")
    summarize.add_argument("--agent", help="only this agent (it needs a goal)")
    summarize.add_argument("--dry-run", action="store_true", help="print instead of posting")
    export = commands.add_parser("export", help="print one conversation as Markdown or JSON")
    export.add_argument("conversation_id")
    export.add_argument("--format", choices=("md", "json"), default="md")
    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="make a key; it is printed once, on the last line")
    create.add_argument("--name", required=True, help="who or what uses it, e.g. web-shop")
    create.add_argument("--scope", required=True, choices=SCOPES)
    create.add_argument("--agents", default="", help="comma-separated agent ids (default: all)")
    create.add_argument(
        "--platforms",
        type=_platforms,
        default=(),
        help=f"comma-separated, of {','.join(PLATFORMS)}: only their conversations (default: all)",
    )
    create.add_argument(
        "--workspaces",
        type=_workspaces,
        default=(),
        help="comma-separated Slack team ids, Discord guild ids or dm (Discord's direct "
        "messages): only their conversations, so no API or terminal ones (default: all)",
    )
    actions.add_parser("list", help="list keys (never the keys themselves)")
    revoke = actions.add_parser("revoke", help="revoke a key by id or name")
    revoke.add_argument("key", help="the key's id or name")
    _memory_parser(commands)
    _usage_parser(commands)
    knowledge = commands.add_parser("knowledge", help="index and list the agents' documents")
    steps = knowledge.add_subparsers(dest="action", required=True, metavar="ACTION")
    steps.add_parser("sync", help="index the agents' knowledge files that changed")
    steps.add_parser("list", help="the indexed documents, per agent")
    return parser


def _memory_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    memory = commands.add_parser("memory", help="list and forget what agents remember of people")
    actions = memory.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="one line per memory, newest first")
    listing.add_argument("--platform", choices=PLATFORMS)
    listing.add_argument("--workspace", help="Slack team id, Discord guild id or dm")
    listing.add_argument("--person", help="the person's user id on the platform")
    listing.add_argument("--agent", help="the agent's id ('' for memories agents share)")
    listing.add_argument("--text", default="", help="only memories holding this, ignoring case")
    listing.add_argument(
        "--all", action="store_true", help="include superseded memories (kept as history)"
    )
    listing.add_argument("--limit", type=_limit, default=50, help=f"at most 1 to {MAX_PAGE}")
    forget = actions.add_parser(
        "forget", help="delete memories by id, or all of one person's for an agent"
    )
    forget.add_argument("ids", nargs="*", metavar="ID", help="memory ids, from memory list")
    forget.add_argument("--platform", choices=PLATFORMS)
    forget.add_argument("--workspace", default="", help="Slack team id, Discord guild id or dm")
    forget.add_argument("--person", help="the person's user id on the platform")
    whose = forget.add_mutually_exclusive_group()
    whose.add_argument("--agent", help="the memories this agent keeps of the person")
    whose.add_argument(
        "--shared", action="store_true", help="the memories all agents share of the person"
    )


def _usage_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    usage = commands.add_parser("usage", help="tokens the model used and what they cost")
    usage.add_argument("--agent", help="only this agent")
    usage.add_argument("--conversation", help="only this conversation (its id)")
    usage.add_argument(
        "--from", dest="since", type=_moment, help="from this UTC date or time (inclusive)"
    )
    usage.add_argument(
        "--to", dest="until", type=_moment, help="to this UTC date or time (not included)"
    )
    usage.add_argument(
        "--by",
        type=_groups,
        default=("agent",),
        help=f"comma-separated, of {','.join(USAGE_GROUPS)}; '' for one total (default: agent)",
    )


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text[:40]!r} is not a date or time (2026-12-01, 2026-12-01T09:30)"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _groups(text: str) -> tuple[UsageGroup, ...]:
    items = _items(text)
    for item in items:
        if item not in USAGE_GROUPS:
            raise argparse.ArgumentTypeError(
                f"{item[:40]!r} is not a grouping; use {', '.join(USAGE_GROUPS)}"
            )
    return tuple(group for group in USAGE_GROUPS if group in items)


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a number") from None
    if not 1 <= value <= MAX_PAGE:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_PAGE}")
    return value


def _items(text: str) -> list[str]:
    items = list(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))
    if len(items) > MAX_KEY_LIMITS:
        raise argparse.ArgumentTypeError(f"at most {MAX_KEY_LIMITS}")
    return items


def _platforms(text: str) -> tuple[Platform, ...]:
    items = _items(text)
    for item in items:
        if item not in PLATFORMS:
            raise argparse.ArgumentTypeError(
                f"{item[:70]!r} is not a platform; use {', '.join(PLATFORMS)}"
            )
    return tuple(platform for platform in PLATFORMS if platform in items)


def _workspaces(text: str) -> tuple[str, ...]:
    items = _items(text)
    for item in items:
        if not WORKSPACE.fullmatch(item):
            raise argparse.ArgumentTypeError(
                f"{item[:70]!r} is not a workspace id (letters, digits, '.', '_', '-'; "
                "at most 64 characters, like T0123ABCD, 123456789012345678 or dm)"
            )
    return tuple(items)


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    args = build_parser().parse_args(argv)
    try:
        loaded = _load(args.env_file)
    except ConfigError as exc:
        print(f"parley: {exc}", file=sys.stderr)
        return exc.exit_code
    settings = loaded.settings
    configure_logging(level=settings.log_level, fmt=settings.log_format, secrets=settings.secrets())
    command = _COMMANDS[args.command]
    try:
        return command(loaded, args, out)
    except KeyboardInterrupt:
        return EXIT_OK
    except ParleyError as exc:
        logger.debug("command failed", exc_info=True)
        print(f"parley: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # the CLI's one edge: a short line, details in DEBUG
        logger.debug("unexpected failure", exc_info=True)
        print(
            f"parley: unexpected {exc.__class__.__name__}; run with LOG_LEVEL=DEBUG for details",
            file=sys.stderr,
        )
        return EXIT_FAILURE


def _check(loaded: Loaded, args: argparse.Namespace, out: TextIO) -> int:
    out.write(describe(loaded))
    return EXIT_OK


def version() -> str:
    """The installed release (``pyproject.toml``'s version)."""
    try:
        return metadata.version("parley")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _agents_command(loaded: Loaded, args: argparse.Namespace, out: TextIO) -> int:
    return asyncio.run(_agents(loaded, out))


async def _agents(loaded: Loaded, out: TextIO) -> int:
    store = build_store(loaded.settings)
    await store.open()
    try:
        catalog = AgentCatalog(loaded.agents, store)
        agents = await catalog.refresh()
    finally:
        await store.close()
    lines = agent_lines(
        ((agent, catalog.source_of(agent.id)) for agent in agents),
        default=catalog.default.id,
        settings=loaded.settings,
    )
    out.write("\n".join(lines) + "\n")
    return EXIT_OK


def _conversations_command(loaded: Loaded, args: argparse.Namespace, out: TextIO) -> int:
    try:
        query = ConversationQuery(
            platform=args.platform,
            agent_id=args.agent,
            tag=args.tag,
            text=args.text or None,
            include_closed=not args.open,
            limit=args.limit,
        )
    except ValidationError as exc:
        print(f"parley: conversations: {_first_error(exc)}", file=sys.stderr)
        return EXIT_CONFIG
    return asyncio.run(_conversations(loaded, query, out))


async def _conversations(loaded: Loaded, query: ConversationQuery, out: TextIO) -> int:
    store = build_store(loaded.settings)
    await store.open()
    try:
        page = await store.list_conversations(query)
    finally:
        await store.close()
    out.write("\n".join(conversation_lines(page)) + "\n")
    return EXIT_OK


def _chat(loaded: Loaded, args: argparse.Namespace, out: TextIO) -> int:
    if not loaded.settings.model_configured:
        print(
            "parley: chat needs a model: set OPENAI_API_KEY for OpenAI, or OPENAI_BASE_URL "
            "for an OpenAI-compatible server (e.g. http://localhost:11434/v1 for Ollama)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    if args.agent and loaded.agents.find(args.agent) is None:
        known = ", ".join(agent.id for agent in loaded.agents.agents)
        print(f"parley: no agent {args.agent!r} (agents: {known})", file=sys.stderr)
        return EXIT_CONFIG
    if loaded.settings.log_level != "DEBUG":
        logging.getLogger().setLevel(logging.WARNING)
    return asyncio.run(_chat_session(loaded, args, out))


async def _chat_session(loaded: Loaded, args: argparse.Namespace, out: TextIO) -> int:
    async with Runtime(loaded.settings, loaded.agents) as runtime:
        name = args.conversation or args.agent or loaded.agents.default.id
        session = TerminalSession(
            runtime.engine, name=name, agent_id=args.agent, author=args.author
        )
        interactive = sys.stdin.isatty() and out.isatty()
        await TerminalAdapter(session, stdin=sys.stdin, stdout=out, interactive=interactive).run()
    return EXIT_OK


def _run_command(loaded: Loaded, args: argparse.Namespace, out: TextIO) -> int:
    return asyncio.run(_run(loaded, out))


def _export_command(loaded: Loaded, args: argparse.Namespace, out: TextIO) -> int:
    return asyncio.run(_export(loaded, args.conversation_id, args.format, out))


def _summarize_command(loaded: Loaded, args: argparse.Namespace, out: TextIO) -> int:
    if args.agent:
        agent = asyncio.run(_find_agent(loaded, args.agent))
        if agent is None or not agent.goal:
            print(f"parley: no agent {args.agent!r} with a goal", file=sys.stderr)
            return EXIT_CONFIG
    if not loaded.settings.model_configured:
        print(
            "parley: goal checks need a model: set OPENAI_API_KEY or OPENAI_BASE_URL",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    return asyncio.run(_summarize(loaded, args.agent, dry_run=args.dry_run, out=out))


async def _summarize(loaded: Loaded, agent_id: str | None, *, dry_run: bool, out: TextIO) -> int:
    """Every scheduled agent's checks once (agents stored through the API included), or one
    agent's (any agent with a goal)."""
    async with Runtime(loaded.settings, loaded.agents) as runtime:
        if agent_id:
            agent = await runtime.catalog.lookup(agent_id)
            if agent is None:
                raise NotFound(f"no agent {agent_id!r}")
            agents = [agent]
        else:
            everyone = await runtime.catalog.refresh()
            agents = [agent for agent in everyone if agent.goal_check is not None]
        if dry_run:  # every platform's checks, the terminal's and the API's too
            posters: dict[str, GoalCheckPoster] = dict.fromkeys(PLATFORMS, PrintingPoster(out))
        else:
            posters = await runtime.posters()
        runner = GoalCheckRunner(engine=runtime.engine, posters=posters, mark_posted=not dry_run)
        for agent in agents:
            report = await runner.run(agent, claim_run=False)
            failed = sum(1 for check in report.checked if check.error)
            out.write(
                f"{agent.id}: {len(report.checked)} checked, {failed} failed, "
                f"{report.posted} {'printed' if dry_run else 'posted'}\n"
            )
    return EXIT_OK


async def _find_agent(loaded: Loaded, agent_id: str) -> Agent | None:
    """An agent of the file, or one stored through the API."""
    store = build_store(loaded.settings)
    await store.open()
    try:
        return await AgentCatalog(loaded.agents, store).lookup(agent_id)
    finally:
        await store.close()


def _keys_command(loaded: Loaded, args: argparse.Namespace, out: TextIO) -> int:
    return asyncio.run(_keys(loaded, args, out))


async def _keys(loaded: Loaded, args: argparse.Namespace, out: TextIO) -> int:
    store = build_store(loaded.settings)
    await store.open()
    try:
        keys = ApiKeys(store)
        if args.action == "create":
            agents = [a.strip() for a in args.agents.split(",") if a.strip()]
            key, record = await keys.create(
                name=args.name,
                scope=args.scope,
                agents=agents,
                platforms=args.platforms,
                workspaces=args.workspaces,
            )
            out.write(
                f"Created API key {record.name!r} (id {record.id}), scope {record.scope}, "
                f"{_limits(record)}.\nIt is shown only this once; keep it secret:\n{key}\n"
            )
        elif args.action == "list":
            records = await keys.list()
            if not records:
                out.write("No API keys yet: python -m bot keys create --name NAME --scope read\n")
            for r in records:
                state = f"revoked {r.revoked_at:%Y-%m-%d}" if r.revoked_at else "active"
                used = f"{r.last_used_at:%Y-%m-%d %H:%M}" if r.last_used_at else "never"
                only = ",".join(r.agents) or "all"
                platforms = ",".join(r.platforms) or "all"
                workspaces = ",".join(r.workspaces) or "all"
                out.write(
                    f"{r.id}  {r.name}  {r.hint}  {r.scope}  agents={only}  "
                    f"platforms={platforms}  workspaces={workspaces}  "
                    f"created={r.created_at:%Y-%m-%d}  last-used={used}  {state}\n"
                )
        else:
            record = await keys.revoke(args.key)
            out.write(f"Revoked API key {record.name!r} ({record.id}).\n")
    finally:
        await store.close()
    return EXIT_OK


def _memory_command(loaded: Loaded, args: argparse.Namespace, out: TextIO) -> int:
    if args.action == "list":
        try:
            query = MemoryQuery(
                platform=args.platform,
                workspace=args.workspace,
                person=args.person,
                agent_id=args.agent,
                text=args.text,
                include_superseded=args.all,
                limit=args.limit,
            )
        except ValidationError as exc:
            print(f"parley: memory list: {_first_error(exc)}", file=sys.stderr)
            return EXIT_CONFIG
        return asyncio.run(_list_memories(loaded, query, out))
    scope, problem = _forget_scope(args)
    if problem:
        print(f"parley: memory forget: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    return asyncio.run(_forget_memories(loaded, args.ids, scope, out))


def _forget_scope(args: argparse.Namespace) -> tuple[MemoryScope | None, str]:
    """The scope ``memory forget`` names with its options, or what is wrong with them."""
    options = args.platform or args.person or args.workspace or args.agent is not None
    if args.ids:
        if options or args.shared:
            return None, "give memory ids, or --platform and --person, not both"
        return None, ""
    if not (args.platform and args.person):
        return None, "give memory ids, or --platform and --person (and --agent or --shared)"
    if args.agent is None and not args.shared:
        return None, "say whose: --agent ID (that agent's memories) or --shared (all agents')"
    try:
        scope = MemoryScope(
            platform=args.platform,
            workspace=args.workspace,
            person=args.person,
            agent_id="" if args.shared else args.agent,
        )
    except ValidationError as exc:
        return None, _first_error(exc)
    return scope, ""


def _usage_command(loaded: Loaded, args: argparse.Namespace, out: TextIO) -> int:
    try:
        query = UsageQuery(
            agent_id=args.agent,
            conversation_id=args.conversation,
            since=args.since,
            until=args.until,
            group_by=args.by,
        )
    except ValidationError as exc:
        print(f"parley: usage: {_first_error(exc)}", file=sys.stderr)
        return EXIT_CONFIG
    prices = load_prices(loaded.settings.prices_file)
    return asyncio.run(_usage_report(loaded, prices, query, out))


async def _usage_report(loaded: Loaded, prices: Prices, query: UsageQuery, out: TextIO) -> int:
    store = build_store(loaded.settings)
    await store.open()
    try:
        report = await usage_report(store, prices, query)
    finally:
        await store.close()
    since = query.since.isoformat() if query.since else "the start"
    until = query.until.isoformat() if query.until else "now"
    by = ", ".join(query.group_by) or "nothing"
    out.write(f"Usage from {since} to {until}, by {by}:\n")
    for line in report_lines(report):
        out.write(line + "\n")
    return EXIT_OK


def _first_error(exc: ValidationError) -> str:
    """``--text: String should have at most 200 characters``: the option and the problem."""
    error = exc.errors()[0]
    names = {"agent_id": "agent", "include_superseded": "all"}
    field = str(error["loc"][0]) if error["loc"] else ""
    return f"--{names.get(field, field)}: {error['msg']}" if field else str(error["msg"])


async def _list_memories(loaded: Loaded, query: MemoryQuery, out: TextIO) -> int:
    store = build_store(loaded.settings)
    await store.open()
    try:
        memories = await store.list_memories(query)
    finally:
        await store.close()
    if not memories:
        out.write("No memories match.\n")
    for memory in memories:
        out.write(_memory_line(memory) + "\n")
    return EXIT_OK


def _memory_line(memory: Memory) -> str:
    """``id  created  platform/workspace/person  agent  private  text``, on one line."""
    scope = memory.scope
    place = f"{scope.platform}/{scope.workspace or '-'}/{scope.person}"
    agent = f"agent={scope.agent_id}" if scope.agent_id else "shared"
    marks = ["private" if memory.private else "-"]
    if memory.superseded_by is not None:
        marks.append(f"superseded-by={memory.superseded_by}")
    text = " ".join("".join(c if c.isprintable() else " " for c in memory.text).split())
    created = f"{memory.created_at:%Y-%m-%d %H:%M:%S}"
    return f"{memory.id}  {created}  {place}  {agent}  {' '.join(marks)}  {text}"


async def _forget_memories(
    loaded: Loaded, ids: Sequence[str], scope: MemoryScope | None, out: TextIO
) -> int:
    store = build_store(loaded.settings)
    await store.open()
    try:
        count = await store.forget_memories(ids=ids, scope=scope)
    finally:
        await store.close()
    missing = f" ({len(ids) - count} not found)" if ids and count < len(ids) else ""
    out.write(f"Deleted {count} {'memory' if count == 1 else 'memories'}{missing}.\n")
    return EXIT_OK


def _limits(record: ApiKeyRecord) -> str:
    """What the key reaches, e.g. ``agents chef, platform slack, workspaces T1, T2``."""
    parts = [f"agents {', '.join(record.agents)}" if record.agents else "all agents"]
    if record.platforms:
        parts.append(f"platforms {', '.join(record.platforms)}")
    if record.workspaces:
        parts.append(f"workspaces {', '.join(record.workspaces)}")
    return ", ".join(parts)


Command = Callable[[Loaded, argparse.Namespace, TextIO], int]


def _knowledge_command(loaded: Loaded, args: argparse.Namespace, out: TextIO) -> int:
    return asyncio.run(_knowledge(loaded, args.action, out))


async def _knowledge(loaded: Loaded, action: str, out: TextIO) -> int:
    settings = loaded.settings
    store = build_store(settings)
    await store.open()
    try:
        if action == "list":
            documents = await store.list_documents()
            if not documents:
                out.write("No documents.\n")
            for document in documents:
                out.write(
                    f"{document.agent_id}  {document.name}  {document.source}  "
                    f"{document.chunks} chunks  {document.size} bytes  "
                    f"{document.updated_at:%Y-%m-%d %H:%M:%S}\n"
                )
            return EXIT_OK
        tokens = TokenCounter(settings.token_counting)
        embedder = build_embedder(settings)
        try:
            report = await Knowledge(store, embedder).sync(
                loaded.agents.agents,
                settings.agents_file.parent,
                lambda agent: count_with(
                    tokens, agent.effective_model(settings.bot_model, settings.provider_models)
                ),
            )
        finally:
            if embedder is not None:
                await embedder.close()
    finally:
        await store.close()
    out.write(report.line() + "\n")
    for line in report.failed:
        print(f"parley: {line}", file=sys.stderr)
    return EXIT_FAILURE if report.failed else EXIT_OK


_COMMANDS: dict[str, Command] = {
    "knowledge": _knowledge_command,
    "check": _check,
    "agents": _agents_command,
    "conversations": _conversations_command,
    "run": _run_command,
    "chat": _chat,
    "export": _export_command,
    "summarize": _summarize_command,
    "keys": _keys_command,
    "memory": _memory_command,
    "usage": _usage_command,
}


def _load(env_file: Path) -> Loaded:
    settings = load_settings(env_file)
    agents = load_agents(settings.agents_file, providers=settings.provider_names)
    return Loaded(settings=settings, agents=agents)


async def _run(loaded: Loaded, out: TextIO) -> int:
    settings = loaded.settings
    platforms = settings.slack_enabled or settings.discord_enabled
    if not platforms and not settings.api_enabled:
        store = build_store(settings)
        await store.open()
        await store.close()
        out.write(describe(loaded))
        out.write("\n" + PLATFORM_HELP + "\n")
        return EXIT_OK
    if not settings.model_configured:
        logger.warning("no model configured: every reply will be the agents' apology")
    async with Runtime(settings, loaded.agents) as runtime:
        adapters = runtime.build_adapters()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, runtime.request_stop)
        serving = [a.name for a in adapters]
        if settings.api_enabled:
            serving.append(f"the HTTP API on port {settings.port}")
        if not platforms:
            out.write(API_ONLY.format(port=settings.port))
            out.flush()
        logger.info("Parley is running: %s", ", ".join(serving))
        await runtime.serve(adapters)
    if runtime.lost is not None:
        print(
            f"parley: {runtime.lost.name} connection lost for good: {runtime.lost.detail} "
            f"(exit status {EXIT_PLATFORM_LOST}: restart to reconnect)",
            file=sys.stderr,
        )
        return EXIT_PLATFORM_LOST
    return EXIT_OK


async def _export(loaded: Loaded, conversation_id: str, fmt: str, out: TextIO) -> int:
    store = build_store(loaded.settings)
    await store.open()
    try:
        text = await export_conversation(
            store, conversation_id=conversation_id, fmt="json" if fmt == "json" else "md"
        )
    except NotFound:
        print(f"parley: no conversation {conversation_id!r}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        await store.close()
    out.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK


RETRIEVAL_WORDS = "memory and knowledge by keyword only (set EMBEDDING_MODEL for vectors too)"
RETRIEVAL_VECTORS = "memory and knowledge by keyword and by vectors from {model} at {where}"


def describe(loaded: Loaded) -> str:
    """What is configured, for people: platforms, store, model, agents. Never a secret."""
    settings, agents = loaded.settings, loaded.agents
    lines = ["Parley configuration is valid.", ""]
    count = len(agents.agents)
    lines.append(
        f"Agents file  {settings.agents_file} ({count} agents, default: {agents.default.id})"
    )
    lines.extend(f"  - {describe_agent(agent, settings)}" for agent in agents.agents)
    lines.append(f"Model        {_describe_model(settings)}")
    lines.extend(f"  - {_describe_provider(name, settings)}" for name in settings.model_providers)
    lines.append(f"Store        {_describe_store(settings)}")
    lines.append(f"Retrieval    {_describe_retrieval(settings)}")
    lines.append(f"Prices       {_describe_prices(settings, agents)}")
    lines.append(f"Slack        {_describe_slack(settings)}")
    lines.append(f"Discord      {_describe_discord(settings)}")
    api = "on" if settings.api_enabled else "off (API_ENABLED=false)"
    lines.append(f"HTTP         {settings.host}:{settings.port}; API {api}")
    lines.append(f"Logging      {settings.log_level}, {settings.log_format}")
    lines.append(f"Telemetry    {_describe_telemetry(settings)}")
    return "\n".join(lines) + "\n"


def _describe_prices(settings: Settings, agents: AgentsFile) -> str:
    """The price file (checked), and the agents' models it has no price for."""
    if settings.prices_file is None:
        return "none (set PRICES_FILE): costs are shown as unknown"
    prices = load_prices(settings.prices_file)
    models = sorted(
        {
            agent.effective_model(settings.bot_model, settings.provider_models)
            for agent in agents.agents
        }
    )
    unpriced = [model for model in models if prices.of(model) is None]
    text = f"{settings.prices_file} ({len(prices.models)} models, {prices.currency})"
    if unpriced:
        text += f"; no price for {', '.join(unpriced)} (cost unknown)"
    return text


def _describe_retrieval(settings: Settings) -> str:
    if not settings.embedding_model:
        return RETRIEVAL_WORDS
    url = settings.embedding_base_url or settings.openai_base_url or ""
    where = redact_url(url) or "OpenAI (api.openai.com)"
    return RETRIEVAL_VECTORS.format(model=settings.embedding_model, where=where)


def _describe_model(settings: Settings) -> str:
    where = redact_url(settings.openai_base_url or "") or "OpenAI (api.openai.com)"
    if not settings.model_configured:
        return f"{settings.bot_model}: NOT configured (set OPENAI_API_KEY, or OPENAI_BASE_URL)"
    key = "key set" if settings.openai_api_key is not None else "no key"
    return f"{settings.bot_model} via {where} ({key})"


def _describe_provider(name: str, settings: Settings) -> str:
    """One more model provider: its model, server, whether a key is set, its cap."""
    provider = settings.model_providers[name]
    where = redact_url(provider.base_url or "") or "OpenAI (api.openai.com)"
    key = "key set" if provider.api_key is not None else "no key"
    limit = provider.concurrency or settings.model_concurrency
    return (
        f"provider {name}: {provider.model or settings.bot_model} via {where} ({key}), "
        f"{limit} calls at once"
    )


def _describe_telemetry(settings: Settings) -> str:
    guard = "behind METRICS_TOKEN" if settings.metrics_token is not None else "open"
    endpoint = settings.otel_exporter_otlp_endpoint
    traces = (
        f"traces to {redact_url(endpoint)} (OTLP/HTTP)"
        if endpoint
        else "traces off (set OTEL_EXPORTER_OTLP_ENDPOINT)"
    )
    return f"/metrics {guard}; {traces}"


def _describe_store(settings: Settings) -> str:
    return build_store(settings).description


def _describe_discord(settings: Settings) -> str:
    if not settings.discord_enabled:
        return "off (set DISCORD_BOT_TOKEN)"
    api = f", API {redact_url(settings.discord_api_url)}" if settings.discord_api_url else ""
    sync = {
        "auto": "when they change",
        "always": "at every start",
        "never": "never (DISCORD_COMMAND_SYNC=never)",
    }[settings.discord_command_sync]
    return f"on{api}; /agent commands registered {sync}"


def _describe_slack(settings: Settings) -> str:
    if not settings.slack_enabled:
        return "off (set SLACK_BOT_TOKEN and SLACK_APP_TOKEN)"
    mode = (
        "Socket Mode" if settings.slack_mode == "socket" else f"HTTP mode on port {settings.port}"
    )
    api = f", API {redact_url(settings.slack_api_url)}" if settings.slack_api_url else ""
    return f"on, {mode}{api}"
