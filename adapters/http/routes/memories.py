"""``/api/v1/memories``: what the agents remember about people (issue #16): list and search,
add, read, forget one memory or a person's whole scope.

A memory is within a key's limits when its platform and workspace are and its agent is: the
two rules a conversation is held to (:func:`bot.keys.place_allowed`,
:func:`bot.keys.agent_allowed`). Memories shared by every agent of a workspace (agent ``""``)
belong to no single agent, so a key limited to agents neither sees nor forgets them. Outside
its limits a key finds nothing: 404 for one memory, an empty list or nothing deleted for many,
never a hint that something is there.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Annotated, TypeVar

from fastapi import APIRouter, Query, Request, Response, status

from adapters.http.auth import Admin, Reader, ServicesDep, Writer, check_agent
from adapters.http.errors import ApiError
from adapters.http.openapi import route_errors
from adapters.http.routes.conversations import MAX_LIMIT, PLACE_REFUSED
from adapters.http.schemas import SHARED_OR_AGENT, ForgottenMemories, NewPersonMemory, valid_id
from bot.keys import agent_allowed, place_allowed
from memory.base import (
    MAX_MEMORY_PART,
    MAX_PAGE,
    ApiKeyRecord,
    Memory,
    MemoryQuery,
    MemoryRecords,
    MemoryScope,
    NewMemory,
    Platform,
)
from memory.recall import newest_first
from memory.rules import MAX_SEARCH_TEXT

router = APIRouter(prefix="/memories", tags=["memories"])
ERRORS = route_errors(404)
MAX_QUERIES = 100
"""Store queries one listing may take for a key limited to several platforms, workspaces or
agents: one per combination of the limits the caller left open."""
SHARED_REFUSED = (
    "this key is limited to some agents; memories shared by every agent are outside its limits"
)

T = TypeVar("T")

AgentFilter = Annotated[
    str | None,
    Query(
        max_length=64,
        pattern=SHARED_OR_AGENT,
        description="an agent id; empty (`agent=`) for the memories its workspace's agents share",
    ),
]
PartFilter = Annotated[str | None, Query(max_length=MAX_MEMORY_PART)]


def memory_allowed(key: ApiKeyRecord, scope: MemoryScope) -> bool:
    """The one rule for every route that reads or forgets memories."""
    return place_allowed(key, scope.platform, scope.workspace) and agent_allowed(
        key, scope.agent_id
    )


def check_scope(key: ApiKeyRecord, scope: MemoryScope) -> None:
    """403 unless ``key`` may add memories to ``scope``."""
    if memory_allowed(key, scope):
        return
    if not place_allowed(key, scope.platform, scope.workspace):
        raise ApiError(403, PLACE_REFUSED)
    if scope.agent_id:
        check_agent(key, scope.agent_id)
    raise ApiError(403, SHARED_REFUSED)


def _choices(asked: T | None, limits: Sequence[T]) -> list[T | None]:
    """The values one filter takes within a limit: what was asked (nothing when the limit
    excludes it), or each value of the limit when nothing was asked."""
    if not limits:
        return [asked]
    if asked is None:
        return list(limits)
    return [asked] if asked in limits else []


def within_limits(key: ApiKeyRecord, query: MemoryQuery) -> list[MemoryQuery]:
    """``query`` as the store queries that find only what ``key`` may see (none when a filter
    asks outside its limits). The store takes one value per filter, so a limit the caller left
    open is one query per value. 422 past :data:`MAX_QUERIES`."""
    platforms = _choices(query.platform, key.platforms)
    workspaces = _choices(query.workspace, key.workspaces)
    agents = _choices(query.agent_id, key.agents)
    count = len(platforms) * len(workspaces) * len(agents)
    if count > MAX_QUERIES:
        raise ApiError(
            422,
            f"this key is limited to {count} combinations of platforms, workspaces and "
            "agents; name a platform, workspace or agent",
        )
    return [
        query.model_copy(update={"platform": p, "workspace": w, "agent_id": a})
        for p, w, a in itertools.product(platforms, workspaces, agents)
    ]


async def find_memories(
    store: MemoryRecords, key: ApiKeyRecord, query: MemoryQuery
) -> list[Memory]:
    """The memories matching ``query`` that ``key`` may see: newest first, ``query.limit`` at
    most (the API's and the console's listing)."""
    found: list[Memory] = []
    for part in within_limits(key, query):
        found.extend(await store.list_memories(part))
    return [memory for memory in newest_first(found) if memory_allowed(key, memory.scope)][
        : query.limit
    ]


async def load_memory(store: MemoryRecords, memory_id: str, key: ApiKeyRecord) -> Memory:
    """The memory, if it exists and ``key`` may see it; 404 otherwise, alike."""
    memory = await store.get_memory(memory_id=memory_id) if valid_id(memory_id) else None
    if memory is None or not memory_allowed(key, memory.scope):
        raise ApiError(404, f"no memory {memory_id!r}")
    return memory


async def forget_where(store: MemoryRecords, key: ApiKeyRecord, query: MemoryQuery) -> int:
    """Delete every memory matching ``query`` (superseded ones too) that ``key`` may see;
    returns how many. A whole scope is one store write; a wider match is deleted a page at a
    time."""
    if (
        query.platform is not None
        and query.workspace is not None
        and query.person is not None
        and query.agent_id is not None
        and not query.text
    ):
        scope = MemoryScope(
            platform=query.platform,
            workspace=query.workspace,
            person=query.person,
            agent_id=query.agent_id,
        )
        if not memory_allowed(key, scope):
            return 0
        return await store.forget_memories(scope=scope)
    page = query.model_copy(update={"include_superseded": True, "limit": MAX_PAGE})
    deleted = 0
    while True:
        found = await find_memories(store, key, page)
        gone = await store.forget_memories(ids=[memory.id for memory in found]) if found else 0
        deleted += gone
        if gone == 0 or len(found) < MAX_PAGE:
            return deleted


@router.get("", response_model=list[Memory], responses=ERRORS)
async def list_memories(
    *,
    key: Reader,
    services: ServicesDep,
    platform: Platform | None = None,
    workspace: PartFilter = None,
    person: PartFilter = None,
    agent: AgentFilter = None,
    text: Annotated[str, Query(max_length=MAX_SEARCH_TEXT)] = "",
    include_superseded: bool = False,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> list[Memory]:
    """Newest first, among the memories the key may see. ``text`` is a literal,
    case-insensitive substring of the memory; superseded memories (replaced by a newer fact,
    kept as history) only with ``include_superseded``."""
    query = MemoryQuery(
        platform=platform,
        workspace=workspace,
        person=person,
        agent_id=agent,
        text=text.strip(),
        include_superseded=include_superseded,
        limit=limit,
    )
    return await find_memories(services.store, key, query)


@router.post("", response_model=Memory, status_code=status.HTTP_201_CREATED, responses=ERRORS)
async def add_memory(
    body: NewPersonMemory,
    request: Request,
    response: Response,
    key: Writer,
    services: ServicesDep,
) -> Memory:
    """Remember a fact about a person, for one agent (or, with ``agent`` empty, for every
    agent of the workspace). ``private``: recalled only in direct messages."""
    scope = body.scope()
    check_scope(key, scope)
    if scope.agent_id and await services.catalog.lookup(scope.agent_id) is None:
        raise ApiError(422, f"agent: no agent {scope.agent_id!r}")
    [memory] = await services.store.add_memories(
        [NewMemory(scope=scope, text=body.text, private=body.private)]
    )
    response.headers["Location"] = f"{request.url.path}/{memory.id}"
    return memory


@router.delete("", response_model=ForgottenMemories, responses=ERRORS)
async def forget_scope(
    *,
    key: Admin,
    services: ServicesDep,
    platform: Platform,
    person: Annotated[str, Query(min_length=1, max_length=MAX_MEMORY_PART)],
    workspace: PartFilter = None,
    agent: AgentFilter = None,
) -> ForgottenMemories:
    """Delete for good what the agents remember about a person on a platform, superseded
    memories included: in every workspace and for every agent the key may reach, or only in
    ``workspace`` and of ``agent`` when given (``agent=``: the shared ones)."""
    query = MemoryQuery(platform=platform, workspace=workspace, person=person, agent_id=agent)
    return ForgottenMemories(deleted=await forget_where(services.store, key, query))


@router.get("/{memory_id}", response_model=Memory, responses=ERRORS)
async def get_memory(memory_id: str, key: Reader, services: ServicesDep) -> Memory:
    """One memory, with where it was learned (``conversation_id``, ``message_id``)."""
    return await load_memory(services.store, memory_id, key)


@router.delete("/{memory_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
async def forget_memory(memory_id: str, key: Admin, services: ServicesDep) -> Response:
    """Delete one memory for good."""
    await load_memory(services.store, memory_id, key)
    if not await services.store.forget_memories(ids=[memory_id]):
        raise ApiError(404, f"no memory {memory_id!r}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
