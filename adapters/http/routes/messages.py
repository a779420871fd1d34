"""``/api/v1/conversations/{id}/messages``: read the history, or take a turn (JSON or SSE)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from adapters.http.auth import Reader, ServicesDep, Writer
from adapters.http.errors import ApiError
from adapters.http.routes.conversations import ERRORS, MAX_LIMIT, load
from adapters.http.schemas import MAX_SEQ, MessagePage, NewUserMessage
from adapters.http.services import Services
from adapters.http.streaming import TurnOut, sse_events
from bot.engine import Turn
from memory.base import ApiKeyRecord, Conversation

router = APIRouter(prefix="/conversations", tags=["messages"])

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def wants_events(request: Request) -> bool:
    return "text/event-stream" in request.headers.get("accept", "")


async def start_turn(
    services: Services, conversation: Conversation, text: str, *, author: str, key: ApiKeyRecord
) -> Turn:
    """Start a turn in an ``api`` conversation (Slack and Discord ones are answered there).

    The message is in the turn journal when this returns (see :mod:`adapters.http.turns`):
    answered in arrival order, and answered by the next process if this one dies.

    This is where the API, ``/chat`` and the web console start turns: each is charged to the
    key, so the engine refuses it when the key already has its ``API_TURNS_PER_KEY`` turns in
    flight (429 ``too_many_turns``), when the conversation has ``MAX_QUEUED_PER_CONVERSATION``
    (429 ``conversation_busy``: too many requests to this conversation, not a state conflict;
    it clears as its turns finish) and when API turns hold their ``API_TURN_SHARE`` of the
    engine, or the engine is full (503 ``busy``). Each answer carries ``Retry-After``.
    """
    if conversation.key.platform != "api":
        raise ApiError(
            409,
            f"this conversation lives on {conversation.key.platform}; "
            "read it here and answer it there",
        )
    if conversation.closed_at is not None:
        raise ApiError(409, "this conversation is closed; start a new one")
    return await services.turns.start(conversation, text, author=author, key=key)


@router.get("/{conversation_id}/messages", response_model=MessagePage, responses=ERRORS)
async def list_messages(
    conversation_id: str,
    key: Reader,
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    before: Annotated[int | None, Query(ge=1, le=MAX_SEQ)] = None,
) -> MessagePage:
    """Newest first; page back with ``before`` = the previous page's ``next_before``."""
    await load(services, conversation_id, key)
    items = await services.store.list_messages(
        conversation_id=conversation_id, before_seq=before, limit=limit, newest_first=True
    )
    more = len(items) == limit and items[-1].seq > 1
    return MessagePage(items=items, next_before=items[-1].seq if more else None)


@router.post(
    "/{conversation_id}/messages",
    response_model=TurnOut,
    responses={
        **ERRORS,
        200: {
            "description": "The turn (TurnOut); with Accept: text/event-stream, server-sent"
            " events: delta events (the growing visible text), then one message event"
            " (TurnOut), then done",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
    },
)
async def post_message(
    conversation_id: str,
    body: NewUserMessage,
    request: Request,
    key: Writer,
    services: ServicesDep,
) -> TurnOut | StreamingResponse:
    """Run one turn. With ``Accept: text/event-stream`` the reply streams as server-sent
    events; a client that disconnects loses nothing, the turn completes and is stored."""
    conversation = await load(services, conversation_id, key)
    turn = await start_turn(services, conversation, body.text, author=body.author, key=key)
    if wants_events(request):
        return StreamingResponse(
            sse_events(turn), media_type="text/event-stream", headers=SSE_HEADERS
        )
    return TurnOut.of(await turn.result())
