"""The pages that read: conversations (filtered, paged), one conversation (with the passages
each reply was given), its export, agents (with their documents)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from adapters.http.console import views
from adapters.http.console.auth import ConsoleUser, User
from adapters.http.console.chart import chart_since, daily_counts, goal_chart_svg
from adapters.http.console.errors import ConsoleRoute
from adapters.http.console.sources import sources_of
from adapters.http.console.state import console_of
from adapters.http.console.templating import page
from adapters.http.console.usage import agent_usage, conversation_usage
from adapters.http.errors import ApiError
from adapters.http.routes.conversations import export_download, load
from adapters.http.services import Services
from bot.keys import (
    agent_allowed,
    place_limited,
    visible_agent,
    visible_bindings,
    within_limits,
)
from bot.knowledge import MAX_DOCUMENT_BYTES, SUFFIXES
from config.agents import AGENT_ID, Agent
from memory.base import (
    MAX_DOCUMENT_NAME,
    Conversation,
    ConversationQuery,
    KnowledgeDocument,
    Platform,
    utc_now,
)

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

PAGE_SIZE = 50
MESSAGES_SHOWN = 100
GOAL_CHECKS_SHOWN = 50
MAX_PAGE = 20_000
MAX_SEQ = 2**53
"""Above any message's seq; bigger numbers would overflow the store's integers."""
PLATFORMS: tuple[Platform, ...] = ("slack", "discord", "console", "api")
_AGENT_ID = re.compile(AGENT_ID)


@router.get("/console")
async def home() -> Response:
    return RedirectResponse("/console/conversations", status_code=303)


async def allowed_agents(services: Services, user: ConsoleUser) -> list[Agent]:
    agents = await services.catalog.refresh()
    return [agent for agent in agents if agent_allowed(user.key, agent.id)]


@router.get("/console/conversations")
async def conversations(
    request: Request,
    user: User,
    *,
    agent: Annotated[str, Query(max_length=64)] = "",
    platform: Annotated[str, Query(max_length=16)] = "",
    tag: Annotated[str, Query(max_length=64)] = "",
    q: Annotated[str, Query(max_length=200)] = "",
    page_number: Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE)] = 1,
) -> Response:
    services = console_of(request).services
    if agent and not _AGENT_ID.fullmatch(agent):
        raise ApiError(422, f"agent: {agent!r} is not an agent id")
    if platform and platform not in PLATFORMS:
        raise ApiError(422, f"platform: must be one of {', '.join(PLATFORMS)}")
    key = user.key
    if len(key.agents) == 1 and not agent:
        agent = key.agents[0]
    if agent and not agent_allowed(key, agent):
        raise ApiError(403, f"this key may not use agent {agent!r}")
    platforms = [p for p in PLATFORMS if not key.platforms or p in key.platforms]
    if platform and platform not in platforms:
        raise ApiError(403, f"this key may not see platform {platform!r}")
    query = ConversationQuery(
        agent_id=agent or None,
        platform=platform or None,  # checked against PLATFORMS above
        tag=tag.strip() or None,
        text=q.strip() or None,
        limit=PAGE_SIZE,
        offset=(page_number - 1) * PAGE_SIZE,
    )
    found = await services.store.list_conversations(within_limits(key, query))
    filters = {"agent": agent, "platform": platform, "tag": tag, "q": q}
    pages = max(1, math.ceil(found.total / PAGE_SIZE))

    def page_url(number: int) -> str:
        query = {name: value for name, value in filters.items() if value}
        return f"/console/conversations?{urlencode({**query, 'page': number})}"

    first = (page_number - 1) * PAGE_SIZE + 1 if found.items else 0
    return page(
        request,
        "conversations.html",
        user=user,
        section="conversations",
        conversations=found.items,
        total=found.total,
        first=first,
        last=first + len(found.items) - 1 if found.items else 0,
        page_number=page_number,
        pages=pages,
        previous_url=page_url(page_number - 1) if page_number > 1 else None,
        next_url=page_url(page_number + 1) if page_number < pages else None,
        filters=filters,
        agents=await allowed_agents(services, user),
        platforms=platforms,
        restricted=len(key.agents) == 1,
    )


async def conversation_agent(services: Services, conversation: Conversation) -> Agent:
    return await services.catalog.lookup(conversation.agent_id) or services.catalog.default


async def conversation_page(
    request: Request,
    user: ConsoleUser,
    conversation: Conversation,
    *,
    before: int | None = None,
    status: int = 200,
    form: dict[str, str] | None = None,
    form_error: str = "",
) -> Response:
    services = console_of(request).services
    newest = await services.store.list_messages(
        conversation_id=conversation.id, before_seq=before, limit=MESSAGES_SHOWN, newest_first=True
    )
    messages = list(reversed(newest))
    older = messages[0].seq if messages and messages[0].seq > 1 else None
    checks = await services.store.list_goal_checks(
        conversation_id=conversation.id, limit=GOAL_CHECKS_SHOWN
    )
    agent = await conversation_agent(services, conversation)
    shown = await console_of(request).markdown.messages(messages, summary=conversation.summary)
    if shown.summary is not None:
        conversation = conversation.model_copy(update={"summary": shown.summary})
    values = {
        "tags": ", ".join(conversation.tags),
        "source": conversation.source or "",
        "data": views.pretty_json(conversation.data) if conversation.data else "",
    }
    if form is not None:
        values = {name: form.get(name, "") for name in values}
    return page(
        request,
        "conversation.html",
        user=user,
        status=status,
        section="conversations",
        conversation=conversation,
        agent=agent,
        messages=shown.messages,
        sources=await sources_of(services.store, messages),
        older_url=f"/console/conversations/{conversation.id}?before={older}" if older else None,
        checks=checks,
        usage=await conversation_usage(services.engine.usage, conversation.id),
        form=values,
        form_error=form_error,
    )


@router.get("/console/conversations/{conversation_id}")
async def conversation(
    conversation_id: str,
    request: Request,
    user: User,
    before: Annotated[int | None, Query(ge=2, le=MAX_SEQ)] = None,
) -> Response:
    found = await load(console_of(request).services, conversation_id, user.key)
    return await conversation_page(request, user, found, before=before)


@router.get("/console/conversations/{conversation_id}/export")
async def export(
    conversation_id: str,
    request: Request,
    user: User,
    format: Literal["md", "json"] = "md",
) -> Response:
    services = console_of(request).services
    await load(services, conversation_id, user.key)
    return await export_download(services, conversation_id, format)


@dataclass(frozen=True)
class UploadError:
    """Why an upload to an agent's documents was refused, shown beside its form."""

    agent_id: str
    message: str


async def agents_page(
    request: Request,
    user: ConsoleUser,
    *,
    status: int = 200,
    upload_error: UploadError | None = None,
) -> Response:
    services = console_of(request).services
    await services.engine.usage.flush()
    now = utc_now()
    since = chart_since(now)
    cards: list[dict[str, Any]] = []
    key = user.key
    documents: dict[str, list[KnowledgeDocument]] = {}
    for document in await services.store.list_documents():
        documents.setdefault(document.agent_id, []).append(document)
    for agent in await allowed_agents(services, user):
        checks = await services.store.list_agent_goal_checks(
            agent_id=agent.id, since=since, platforms=key.platforms, workspaces=key.workspaces
        )
        bound = await services.store.list_channel_bindings(agent_id=agent.id)
        stored = visible_bindings(key, bound)
        counts = daily_counts(checks, now=now)
        usage = None if place_limited(key) else await agent_usage(services.engine.usage, agent)
        cards.append(
            {
                "agent": agent,
                "source": services.catalog.source_of(agent.id),
                "fields": views.shape_fields(agent),
                "schedule": views.schedule(agent),
                "bindings": views.bindings(visible_agent(key, agent), stored),
                "chart": goal_chart_svg(counts, label=f"Goal checks of {agent.name}"),
                "checked": sum(count.total for count in counts),
                "is_default": agent.id == services.catalog.default.id,
                "usage": usage,
                "documents": documents.get(agent.id, []),
                "upload_error": (
                    upload_error.message
                    if upload_error is not None and upload_error.agent_id == agent.id
                    else ""
                ),
            }
        )
    return page(
        request,
        "agents.html",
        user=user,
        status=status,
        section="agents",
        cards=cards,
        max_document_mb=MAX_DOCUMENT_BYTES // (1024 * 1024),
        max_document_name=MAX_DOCUMENT_NAME,
        document_suffixes=",".join(sorted(SUFFIXES)),
    )


@router.get("/console/agents")
async def agents(request: Request, user: User) -> Response:
    return await agents_page(request, user)


@router.get("/console/{rest:path}")
async def not_found(rest: str, request: Request, user: User) -> Response:
    raise ApiError(404, "There is no such page in the console.")
