"""Agents' documents on the Agents page: ``admin`` keys upload one (a browser's file form)
and delete uploads, with the form's CSRF token, under the API's rules
(:mod:`adapters.http.routes.documents`): documents of the agents file are read-only, a
document that cannot be read is refused with its reason beside the form."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from adapters.http.console.auth import Admin, ConsoleUser
from adapters.http.console.csrf import FIELD, check_token, checked_form
from adapters.http.console.errors import ConsoleRoute
from adapters.http.console.pages import UploadError, agents_page
from adapters.http.console.state import console_of
from adapters.http.console.uploads import read_upload
from adapters.http.errors import ApiError
from adapters.http.routes.documents import UPLOAD_LIMIT, managed_agent, remove, upload

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

UPLOAD_PATH = "/console/agents/{agent_id}/documents/upload"
FORM_OVERHEAD = 64 * 1024
"""Room for the form around the document: its CSRF token, name and part headers."""
BODY_LIMITS = {UPLOAD_PATH: UPLOAD_LIMIT + FORM_OVERHEAD}
"""The upload's body limit (see :class:`adapters.http.limits.BodyLimit`): a whole document."""


def _agents_url(agent_id: str, notice: str) -> str:
    return f"/console/agents?notice={notice}#documents-{agent_id}"


async def _refused(
    request: Request, user: ConsoleUser, agent_id: str, status: int, message: str
) -> Response:
    """The Agents page again, with why the upload was refused beside its form."""
    refused = UploadError(agent_id=agent_id, message=message)
    return await agents_page(request, user, status=status, upload_error=refused)


@router.post(UPLOAD_PATH)
async def upload_document(agent_id: str, request: Request, user: Admin) -> Response:
    services = console_of(request).services
    form = await read_upload(request)
    check_token(user.session, form.fields.get(FIELD))
    agent = await managed_agent(services, user.key, agent_id)
    sent = form.files.get("file")
    if sent is None or not sent.filename:
        return await _refused(request, user, agent.id, 422, "choose a file to upload")
    name = form.fields.get("name", "").strip() or sent.filename
    try:
        _, created = await upload(services, agent, name, sent.content)
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        return await _refused(request, user, agent.id, exc.status, exc.message)
    notice = "document-uploaded" if created else "document-replaced"
    return RedirectResponse(_agents_url(agent.id, notice), status_code=303)


@router.post("/console/agents/{agent_id}/documents/delete")
async def delete_document(agent_id: str, request: Request, user: Admin) -> Response:
    services = console_of(request).services
    form = await checked_form(request, user.session)
    agent = await managed_agent(services, user.key, agent_id)
    await remove(services, agent, form.get("name", ""))
    return RedirectResponse(_agents_url(agent.id, "document-deleted"), status_code=303)
