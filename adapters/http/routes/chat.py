"""The seed's plain-text chat, kept so its two-session curl demo runs unchanged but for an
``Authorization`` header: ``POST /chat`` gives a conversation id, ``POST /chat/{id}`` with a
text body streams the default agent's reply as plain text."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import PlainTextResponse, StreamingResponse

from adapters.http.auth import ServicesDep, Writer
from adapters.http.errors import ApiError
from adapters.http.openapi import route_errors
from adapters.http.routes.conversations import load, open_api_conversation
from adapters.http.routes.messages import start_turn
from adapters.http.schemas import NewConversation
from adapters.http.streaming import plain_text

router = APIRouter(tags=["chat (plain text)"])
_MAX_TEXT = 32_000
_ERRORS = route_errors(400, 404, 409, 422)
"""Not UTF-8 (400), no such conversation (404), closed or not an API one (409), an empty
or too long message (422); the answers every route gives are added to the document."""
_TEXT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"text/plain": {"schema": {"type": "string", "maxLength": _MAX_TEXT}}},
    }
}
"""The message is read raw, so its schema is declared here for the OpenAPI document."""


@router.post(
    "/chat",
    response_class=PlainTextResponse,
    status_code=status.HTTP_201_CREATED,
    responses={**_ERRORS, 201: {"content": {"text/plain": {"example": "0f8c2d...\n"}}}},
)
async def new_chat(key: Writer, services: ServicesDep) -> PlainTextResponse:
    """A new conversation with the default agent; the body is its id."""
    conversation = await open_api_conversation(services, key, NewConversation())
    return PlainTextResponse(conversation.id + "\n", status_code=status.HTTP_201_CREATED)


@router.post(
    "/chat/{conversation_id}",
    response_class=StreamingResponse,
    responses={**_ERRORS, 200: {"content": {"text/plain": {}}}},
    openapi_extra=_TEXT_BODY,
)
async def chat(
    conversation_id: str, request: Request, key: Writer, services: ServicesDep
) -> StreamingResponse:
    """The request body is the message, as plain text; the reply streams back as it grows."""
    conversation = await load(services, conversation_id, key)
    raw = await request.body()
    try:
        text = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise ApiError(400, "the body must be UTF-8 text") from None
    if not text:
        raise ApiError(422, "the body is empty: send the message as plain text")
    if len(text) > _MAX_TEXT:
        raise ApiError(422, f"the message is longer than {_MAX_TEXT} characters")
    turn = await start_turn(services, conversation, text, author="", key=key)
    return StreamingResponse(plain_text(turn), media_type="text/plain; charset=utf-8")
