"""The forms that change a conversation: run its goal check now, edit its tags and metadata."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import RedirectResponse, Response

from adapters.http.console.auth import Editor
from adapters.http.console.csrf import checked_form
from adapters.http.console.errors import ConsoleRoute
from adapters.http.console.pages import conversation_page
from adapters.http.console.state import console_of
from adapters.http.errors import ApiError, describe_validation
from adapters.http.routes.conversations import load
from adapters.http.schemas import ConversationChanges

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


@router.post("/console/conversations/{conversation_id}/goal-check")
async def goal_check(conversation_id: str, request: Request, user: Editor) -> Response:
    services = console_of(request).services
    await checked_form(request, user.session)
    await load(services, conversation_id, user.key)
    check = await services.engine.check_goal(conversation_id)
    notice = "goal-check-failed" if check.error else "goal-checked"
    return RedirectResponse(
        f"/console/conversations/{conversation_id}?notice={notice}#goal-checks", status_code=303
    )


def _changes(form: dict[str, str]) -> ConversationChanges:
    tags = [tag.strip() for tag in form.get("tags", "").split(",") if tag.strip()]
    source = form.get("source", "").strip() or None
    raw = form.get("data", "").strip()
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        raise ApiError(422, "metadata: not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(422, 'metadata: must be a JSON object, like {"order": 42}')
    try:
        return ConversationChanges(tags=list(dict.fromkeys(tags)), source=source, data=data)
    except ValidationError as exc:
        raise ApiError(422, describe_validation(list(exc.errors()))) from None


@router.post("/console/conversations/{conversation_id}/edit")
async def edit(conversation_id: str, request: Request, user: Editor) -> Response:
    services = console_of(request).services
    form = await checked_form(request, user.session)
    conversation = await load(services, conversation_id, user.key)
    try:
        changes = _changes(form)
    except ApiError as exc:
        return await conversation_page(
            request, user, conversation, status=422, form=form, form_error=exc.message
        )
    updated = await services.store.update_conversation(
        conversation_id=conversation_id,
        tags=list(changes.tags or ()),
        source=changes.source,
        data=changes.data or {},
    )
    if updated is None:
        raise ApiError(404, f"no conversation {conversation_id!r}")
    return RedirectResponse(
        f"/console/conversations/{conversation_id}?notice=saved", status_code=303
    )
