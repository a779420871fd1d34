"""The Memory page: what the agents remember about people, searched and filtered, each with
where and when it was learned; ``admin`` keys delete one (as through the API).

The key's limits are the API's (:mod:`adapters.http.routes.memories`): the page lists, and a
delete reaches, only memories within them.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from adapters.http.console.auth import Admin, User
from adapters.http.console.csrf import checked_form
from adapters.http.console.errors import ConsoleRoute
from adapters.http.console.pages import PLATFORMS, allowed_agents
from adapters.http.console.state import console_of
from adapters.http.console.templating import page
from adapters.http.errors import ApiError
from adapters.http.routes.memories import find_memories, load_memory
from config.agents import AGENT_ID
from memory.base import MAX_MEMORY_PART, MemoryQuery
from memory.rules import MAX_SEARCH_TEXT

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

PAGE_SIZE = 100
SHARED = "_shared"
"""The agent filter's value for memories every agent of a workspace shares (never an agent
id: those start with a letter or digit)."""
FILTERS = ("q", "platform", "workspace", "person", "agent", "superseded")
_AGENT_ID = re.compile(AGENT_ID)

Part = Annotated[str, Query(max_length=MAX_MEMORY_PART)]


@router.get("/console/memories")
async def memories(
    request: Request,
    user: User,
    *,
    q: Annotated[str, Query(max_length=MAX_SEARCH_TEXT)] = "",
    platform: Annotated[str, Query(max_length=16)] = "",
    workspace: Part = "",
    person: Part = "",
    agent: Annotated[str, Query(max_length=64)] = "",
    superseded: bool = False,
) -> Response:
    services = console_of(request).services
    if platform and platform not in PLATFORMS:
        raise ApiError(422, f"platform: must be one of {', '.join(PLATFORMS)}")
    if agent and agent != SHARED and not _AGENT_ID.fullmatch(agent):
        raise ApiError(422, f"agent: {agent!r} is not an agent id")
    query = MemoryQuery(
        platform=platform or None,  # checked against PLATFORMS above
        workspace=workspace.strip() or None,
        person=person.strip() or None,
        agent_id="" if agent == SHARED else agent or None,
        text=q.strip(),
        include_superseded=superseded,
        limit=PAGE_SIZE + 1,
    )
    found = await find_memories(services.store, user.key, query)
    key = user.key
    filters = {
        "q": q,
        "platform": platform,
        "workspace": workspace,
        "person": person,
        "agent": agent,
        "superseded": "1" if superseded else "",
    }
    return page(
        request,
        "memories.html",
        user=user,
        section="memories",
        memories=found[:PAGE_SIZE],
        more=len(found) > PAGE_SIZE,
        page_size=PAGE_SIZE,
        filters=filters,
        back=urlencode({name: value for name, value in filters.items() if value}),
        agents=await allowed_agents(services, user),
        shared=SHARED if not key.agents else None,
        platforms=[p for p in PLATFORMS if not key.platforms or p in key.platforms],
    )


@router.post("/console/memories/{memory_id}/delete")
async def delete(memory_id: str, request: Request, user: Admin) -> Response:
    store = console_of(request).services.store
    form = await checked_form(request, user.session)
    await load_memory(store, memory_id, user.key)
    if not await store.forget_memories(ids=[memory_id]):
        raise ApiError(404, f"no memory {memory_id!r}")
    kept = [(name, value) for name, value in parse_qsl(form.get("back", "")) if name in FILTERS]
    target = urlencode([*kept, ("notice", "memory-forgotten")])
    return RedirectResponse(f"/console/memories?{target}", status_code=303)
