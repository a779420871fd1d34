"""``/api/v1/agents``: file agents (read-only) and agents stored through the API.

Agents are shared by every platform and workspace, so a key limited to some of them reads
agents (with only the channel bindings in its places) but never creates, replaces or deletes
one: that would change what other workspaces' conversations run on.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from adapters.http.auth import Admin, Reader, ServicesDep, check_agent
from adapters.http.errors import ApiError
from adapters.http.openapi import route_errors
from adapters.http.schemas import AgentOut
from bot.catalog import AgentCatalog
from bot.keys import agent_allowed, place_limited, visible_agent
from config.agents import Agent
from memory.base import ApiKeyRecord

router = APIRouter(prefix="/agents", tags=["agents"])
_ERRORS = route_errors(404, 409)


def out(catalog: AgentCatalog, agent: Agent, key: ApiKeyRecord) -> AgentOut:
    shown = visible_agent(key, agent)
    return AgentOut(**shown.model_dump(), source=catalog.source_of(agent.id))


def check_manages(key: ApiKeyRecord, agent_id: str) -> None:
    """Agents are changed only by keys that reach every platform and workspace."""
    check_agent(key, agent_id)
    if place_limited(key):
        raise ApiError(
            403, "this key is limited to some platforms or workspaces; agents are shared by all"
        )


async def _body(request: Request) -> dict[str, Any]:
    """The agent as sent: stored as written, like an entry of the agents file."""
    raw = await request.json()
    if not isinstance(raw, dict):
        raise ApiError(422, "an agent is a JSON object")
    return raw


@router.get("", response_model=list[AgentOut], responses=_ERRORS)
async def list_agents(key: Reader, services: ServicesDep) -> list[AgentOut]:
    catalog = services.catalog
    agents = await catalog.refresh()
    return [out(catalog, agent, key) for agent in agents if agent_allowed(key, agent.id)]


@router.get("/{agent_id}", response_model=AgentOut, responses=_ERRORS)
async def get_agent(agent_id: str, key: Reader, services: ServicesDep) -> AgentOut:
    check_agent(key, agent_id)
    agent = await services.catalog.lookup(agent_id)
    if agent is None:
        raise ApiError(404, f"no agent {agent_id!r}")
    return out(services.catalog, agent, key)


@router.post("", response_model=AgentOut, status_code=status.HTTP_201_CREATED, responses=_ERRORS)
async def create_agent(
    agent: Agent, request: Request, response: Response, key: Admin, services: ServicesDep
) -> AgentOut:
    """Validated exactly like an entry of the agents file; usable at once by every process
    sharing the store. 409 if the id is taken (by the file or by a stored agent)."""
    check_manages(key, agent.id)
    created = await services.catalog.create(await _body(request))
    response.headers["Location"] = f"{request.url.path}/{created.id}"
    return out(services.catalog, created, key)


@router.put("/{agent_id}", response_model=AgentOut, responses=_ERRORS)
async def replace_agent(
    agent_id: str, agent: Agent, request: Request, key: Admin, services: ServicesDep
) -> AgentOut:
    """Replace a stored agent (409 for agents from the file: edit the file instead)."""
    check_manages(key, agent_id)
    replaced = await services.catalog.replace(agent_id, await _body(request))
    return out(services.catalog, replaced, key)


@router.delete("/{agent_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ERRORS)
async def delete_agent(agent_id: str, key: Admin, services: ServicesDep) -> Response:
    """Delete a stored agent. Its conversations stay; they are answered by the default agent."""
    check_manages(key, agent_id)
    if not await services.catalog.delete(agent_id):
        raise ApiError(404, f"no stored agent {agent_id!r}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
