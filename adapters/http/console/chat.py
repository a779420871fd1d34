"""Chat with an agent in the browser.

Starting a chat opens an ``api`` conversation (its history starts with the agent's first
message) and goes to its chat page. The page's script posts each message to ``.../stream``
and shows the server-sent events of the API's stream as they come; without the script the
form posts to ``.../messages`` and the page comes back with the reply.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response, StreamingResponse

from adapters.http.console.auth import ConsoleUser, Editor, SignInRequired, User, signed_in, spend
from adapters.http.console.csrf import HEADER, CsrfRefused, check_token, checked_form
from adapters.http.console.errors import ConsoleRoute
from adapters.http.console.pages import MAX_SEQ, MESSAGES_SHOWN, allowed_agents
from adapters.http.console.sources import sources_of
from adapters.http.console.state import console_of
from adapters.http.console.templating import page, render
from adapters.http.errors import ApiError, describe_validation
from adapters.http.routes.conversations import load, open_api_conversation
from adapters.http.routes.messages import SSE_HEADERS, start_turn
from adapters.http.schemas import NewConversation, NewUserMessage
from adapters.http.security import SECURITY_HEADERS
from adapters.http.streaming import sse_events
from memory.base import Conversation

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
stream_router = APIRouter(include_in_schema=False)
"""The stream answers errors as the API does (JSON), for the page's script to show."""

FRAGMENT_LIMIT = 20


def _chat_url(conversation_id: str) -> str:
    return f"/console/conversations/{conversation_id}/chat"


@router.get("/console/chats")
async def new_chat_form(request: Request, user: User) -> Response:
    agents = await allowed_agents(console_of(request).services, user)
    return page(request, "new_chat.html", user=user, section="chat", agents=agents)


@router.post("/console/chats")
async def new_chat(request: Request, user: Editor) -> Response:
    form = await checked_form(request, user.session)
    try:
        body = NewConversation(agent_id=form.get("agent_id") or None, source="console")
    except ValidationError as exc:
        raise ApiError(422, describe_validation(list(exc.errors()))) from None
    conversation = await open_api_conversation(console_of(request).services, user.key, body)
    return RedirectResponse(_chat_url(conversation.id), status_code=303)


async def _chat_page(request: Request, user: ConsoleUser, conversation: Conversation) -> Response:
    services = console_of(request).services
    newest = await services.store.list_messages(
        conversation_id=conversation.id, limit=MESSAGES_SHOWN, newest_first=True
    )
    messages = list(reversed(newest))
    latest = next((m for m in newest if m.role == "assistant" and m.data is not None), None)
    shown = await console_of(request).markdown.messages(messages)
    return page(
        request,
        "chat.html",
        user=user,
        section="chat",
        conversation=conversation,
        messages=shown.messages,
        sources=await sources_of(services.store, messages),
        latest_data=latest.data if latest is not None else None,
        agent=await services.catalog.lookup(conversation.agent_id) or services.catalog.default,
    )


@router.get("/console/conversations/{conversation_id}/chat")
async def chat_page(conversation_id: str, request: Request, user: User) -> Response:
    conversation = await load(console_of(request).services, conversation_id, user.key)
    if conversation.key.platform != "api":
        return RedirectResponse(f"/console/conversations/{conversation_id}", status_code=303)
    return await _chat_page(request, user, conversation)


@router.post("/console/conversations/{conversation_id}/messages")
async def send_without_script(conversation_id: str, request: Request, user: Editor) -> Response:
    """The form's answer without JavaScript: wait for the whole reply, then show the page."""
    services = console_of(request).services
    form = await checked_form(request, user.session)
    try:
        message = NewUserMessage(text=form.get("text", "").strip())
    except ValidationError as exc:
        raise ApiError(422, describe_validation(list(exc.errors()))) from None
    conversation = await load(services, conversation_id, user.key)
    turn = await start_turn(services, conversation, message.text, author="", key=user.key)
    await turn.result()
    return RedirectResponse(f"{_chat_url(conversation_id)}#latest", status_code=303)


@router.get("/console/conversations/{conversation_id}/messages")
async def messages_fragment(
    conversation_id: str,
    request: Request,
    user: User,
    after: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
) -> Response:
    """The messages after ``after`` as list items, rendered as on the page (for the script)."""
    services = console_of(request).services
    await load(services, conversation_id, user.key)
    found = await services.store.list_messages(
        conversation_id=conversation_id, after_seq=after, limit=FRAGMENT_LIMIT
    )
    shown = await console_of(request).markdown.messages(found)
    sources = await sources_of(services.store, found)
    html = render("_messages.html", messages=shown.messages, sources=sources, user=user)
    return Response(html, media_type="text/html; charset=utf-8")


@stream_router.post("/console/conversations/{conversation_id}/stream")
async def stream(conversation_id: str, request: Request) -> StreamingResponse:
    """One turn as server-sent events (``delta``, then ``message``, then ``done``)."""
    services = console_of(request).services
    try:
        user = await signed_in(request)
        check_token(user.session, request.headers.get(HEADER))
    except SignInRequired:
        raise ApiError(401, "sign in to the console again") from None
    except CsrfRefused:
        raise ApiError(403, "missing or wrong X-CSRF-Token; reload the page") from None
    if not user.can_write:
        raise ApiError(403, f"this key has scope {user.key.scope!r}; this needs 'write'")
    spend(services.limiter, user)
    try:
        message = NewUserMessage.model_validate_json(await request.body())
    except ValidationError as exc:
        raise ApiError(422, describe_validation(list(exc.errors()))) from None
    conversation = await load(services, conversation_id, user.key)
    turn = await start_turn(
        services, conversation, message.text, author=message.author, key=user.key
    )
    return StreamingResponse(
        sse_events(turn),
        media_type="text/event-stream",
        headers={**SECURITY_HEADERS, **SSE_HEADERS},
    )
