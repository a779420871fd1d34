"""``/api/v1/conversations``: create (platform ``api``), search, read, change, delete, export,
goal checks; Slack and Discord conversations are readable here too."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status

from adapters.http.auth import Admin, Reader, ServicesDep, Writer, check_agent
from adapters.http.errors import ApiError
from adapters.http.openapi import route_errors
from adapters.http.schemas import ConversationChanges, NewConversation, valid_id
from adapters.http.services import Services
from bot.errors import NotFound
from bot.keys import conversation_allowed, place_allowed, within_limits
from memory.base import (
    UNSET,
    ApiKeyRecord,
    Conversation,
    ConversationOrder,
    ConversationPage,
    ConversationQuery,
    GoalCheck,
    Platform,
    PlatformKey,
)
from memory.export import export_conversation

router = APIRouter(prefix="/conversations", tags=["conversations"])
ERRORS = route_errors(404, 409)
MAX_LIMIT = 100
PLACE_REFUSED = "this key is limited to other platforms or workspaces"


def check_conversation(key: ApiKeyRecord, conversation: Conversation) -> None:
    """403 unless the key may see the conversation (its agent, platform and workspace).

    A place outside the key's limits is refused without naming the conversation's agent or
    place, which belong to another workspace."""
    if conversation_allowed(key, conversation):
        return
    if not place_allowed(key, conversation.key.platform, conversation.key.workspace):
        raise ApiError(403, PLACE_REFUSED)
    check_agent(key, conversation.agent_id)


async def load(services: Services, conversation_id: str, key: ApiKeyRecord) -> Conversation:
    """The conversation, if it exists and the key may see it (404 / 403 otherwise)."""
    if not valid_id(conversation_id):
        raise ApiError(404, f"no conversation {conversation_id!r}")
    conversation = await services.store.get_conversation(conversation_id=conversation_id)
    if conversation is None:
        raise ApiError(404, f"no conversation {conversation_id!r}")
    check_conversation(key, conversation)
    return conversation


def api_key_for_new_conversation() -> PlatformKey:
    return PlatformKey(platform="api", channel=uuid.uuid4().hex)


async def open_api_conversation(
    services: Services, key: ApiKeyRecord, body: NewConversation
) -> Conversation:
    agent_id = body.agent_id or services.catalog.default.id
    check_agent(key, agent_id)
    place = api_key_for_new_conversation()
    if not place_allowed(key, place.platform, place.workspace):
        raise ApiError(403, f"{PLACE_REFUSED}: API conversations are on platform api, no workspace")
    if await services.catalog.lookup(agent_id) is None:
        raise ApiError(422, f"agent_id: no agent {agent_id!r}")
    conversation, _ = await services.engine.open_conversation(
        key=place,
        agent_id=agent_id,
        data=body.data,
        source=body.source,
        tags=list(body.tags),
        user=body.user,
    )
    return conversation


@router.post("", response_model=Conversation, status_code=status.HTTP_201_CREATED, responses=ERRORS)
async def create_conversation(
    body: NewConversation, request: Request, response: Response, key: Writer, services: ServicesDep
) -> Conversation:
    """A new conversation on platform ``api``; its history opens with the agent's first
    message."""
    conversation = await open_api_conversation(services, key, body)
    response.headers["Location"] = f"{request.url.path}/{conversation.id}"
    return conversation


@router.get("", response_model=ConversationPage, responses=ERRORS)
async def search_conversations(
    *,
    key: Reader,
    services: ServicesDep,
    agent_id: str | None = None,
    platform: Platform | None = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    order: ConversationOrder = "updated_desc",
) -> ConversationPage:
    """Search by agent, platform, tag and text (a literal, case-insensitive substring of the
    title, summary or source), among the conversations the key may see. ``total`` counts every
    match."""
    if agent_id is not None:
        check_agent(key, agent_id)
    if platform is not None and key.platforms and platform not in key.platforms:
        raise ApiError(403, f"this key may not see platform {platform!r}")
    query = ConversationQuery(
        agent_id=agent_id,
        platform=platform,
        tag=tag,
        text=q or None,
        limit=limit,
        offset=offset,
        order=order,
    )
    return await services.store.list_conversations(within_limits(key, query))


@router.get("/{conversation_id}", response_model=Conversation, responses=ERRORS)
async def get_conversation(
    conversation_id: str, key: Reader, services: ServicesDep
) -> Conversation:
    """Its metadata, rolling summary and goal state; ``key`` says where it lives."""
    return await load(services, conversation_id, key)


@router.patch("/{conversation_id}", response_model=Conversation, responses=ERRORS)
async def change_conversation(
    conversation_id: str, changes: ConversationChanges, key: Writer, services: ServicesDep
) -> Conversation:
    """Replace ``data``, ``source`` or ``tags``: only the fields given."""
    await load(services, conversation_id, key)
    given = changes.model_fields_set
    updated = await services.store.update_conversation(
        conversation_id=conversation_id,
        data=(changes.data or {}) if "data" in given else UNSET,
        source=changes.source if "source" in given else UNSET,
        tags=list(changes.tags or ()) if "tags" in given else UNSET,
    )
    if updated is None:
        raise ApiError(404, f"no conversation {conversation_id!r}")
    return updated


@router.delete("/{conversation_id}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
async def delete_conversation(conversation_id: str, key: Admin, services: ServicesDep) -> Response:
    """Delete it with its messages and goal checks (after a turn in progress ends)."""
    conversation = await load(services, conversation_id, key)
    if not await services.engine.forget(conversation):
        raise ApiError(404, f"no conversation {conversation_id!r}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{conversation_id}/goal-check",
    response_model=GoalCheck,
    status_code=status.HTTP_201_CREATED,
    responses=ERRORS,
)
async def run_goal_check(conversation_id: str, key: Writer, services: ServicesDep) -> GoalCheck:
    """Run the agent's goal check now and return the stored record (409 if the agent has no
    goal). A failing model gives a record with ``error`` set."""
    await load(services, conversation_id, key)
    return await services.engine.check_goal(conversation_id)


@router.get("/{conversation_id}/goal-checks", response_model=list[GoalCheck], responses=ERRORS)
async def list_goal_checks(
    conversation_id: str,
    key: Reader,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> list[GoalCheck]:
    """Newest first."""
    await load(services, conversation_id, key)
    return await services.store.list_goal_checks(conversation_id=conversation_id, limit=limit)


@router.get(
    "/{conversation_id}/export",
    responses={
        **ERRORS,
        200: {"content": {"text/markdown": {}, "application/json": {}}},
    },
    response_class=Response,
)
async def export(
    conversation_id: str,
    key: Reader,
    services: ServicesDep,
    format: Literal["md", "json"] = "md",
) -> Response:
    """The whole conversation as a download: Markdown for people, JSON for programs."""
    await load(services, conversation_id, key)
    return await export_download(services, conversation_id, format)


async def export_download(
    services: Services, conversation_id: str, format: Literal["md", "json"]
) -> Response:
    """An export as an attachment (the API's and the console's); the caller checked access."""
    try:
        text = await export_conversation(
            services.store, conversation_id=conversation_id, fmt=format
        )
    except NotFound:
        raise ApiError(404, f"no conversation {conversation_id!r}") from None
    media = "application/json" if format == "json" else "text/markdown; charset=utf-8"
    filename = f"conversation-{conversation_id}.{format}"
    return Response(
        text,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
