"""``/api/v1/agents``: file agents (read-only) and agents stored through the API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from adapters.http.auth import Admin, Reader, ServicesDep, check_agent
from adapters.http.errors import ApiError, ErrorBody
from adapters.http.schemas import AgentOut
from bot.catalog import AgentCatalog
from bot.keys import agent_allowed
from config.agents import Agent

router = APIRouter(prefix="/agents", tags=["agents"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422, 429, 503)
}


def out(catalog: AgentCatalog, agent: Agent) -> AgentOut:
    return AgentOut(**agent.model_dump(), source=catalog.source_of(agent.id))


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
    return [out(catalog, agent) for agent in agents if agent_allowed(key, agent.id)]


@router.get("/{agent_id}", response_model=AgentOut, responses=_ERRORS)
async def get_agent(agent_id: str, key: Reader, services: ServicesDep) -> AgentOut:
    check_agent(key, agent_id)
    agent = await services.catalog.lookup(agent_id)
    if agent is None:
        raise ApiError(404, f"no agent {agent_id!r}")
    return out(services.catalog, agent)


@router.post("", response_model=AgentOut, status_code=status.HTTP_201_CREATED, responses=_ERRORS)
async def create_agent(
    agent: Agent, request: Request, response: Response, key: Admin, services: ServicesDep
) -> AgentOut:
    """Validated exactly like an entry of the agents file; usable at once by every process
    sharing the store. 409 if the id is taken (by the file or by a stored agent)."""
    check_agent(key, agent.id)
    created = await services.catalog.create(await _body(request))
    response.headers["Location"] = f"{request.url.path}/{created.id}"
    return out(services.catalog, created)


@router.put("/{agent_id}", response_model=AgentOut, responses=_ERRORS)
async def replace_agent(
    agent_id: str, agent: Agent, request: Request, key: Admin, services: ServicesDep
) -> AgentOut:
    """Replace a stored agent (409 for agents from the file: edit the file instead)."""
    check_agent(key, agent_id)
    replaced = await services.catalog.replace(agent_id, await _body(request))
    return out(services.catalog, replaced)


@router.delete("/{agent_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_ERRORS)
async def delete_agent(agent_id: str, key: Admin, services: ServicesDep) -> Response:
    """Delete a stored agent. Its conversations stay; they are answered by the default agent."""
    check_agent(key, agent_id)
    if not await services.catalog.delete(agent_id):
        raise ApiError(404, f"no stored agent {agent_id!r}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
