"""``/api/v1/agents/{agent_id}/documents``: an agent's knowledge documents (issue #16): list,
upload (a new name is indexed, an upload's name again re-indexes it), read, delete.

Documents named by the agents file (``source: file``) are managed by the file and re-indexed
from it (``python -m bot knowledge sync`` and at start): here they are read-only, 409.
Documents belong to an agent, which is shared by every platform and workspace, so reading
them follows the agent's rule (:func:`adapters.http.auth.check_agent`) and changing them the
rule for changing agents (:func:`adapters.http.routes.agents.check_manages`).

An upload is the document's bytes as the request body, its name in the ``name`` query
parameter (``curl --data-binary @guide.md '.../documents?name=guide.md'``): no form encoding
to decode. Its body may be as large as a document (:data:`UPLOAD_LIMIT`), far above the API's
``API_MAX_BODY``.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response, status

from adapters.http.auth import Admin, Reader, ServicesDep, check_agent
from adapters.http.errors import ApiError
from adapters.http.openapi import route_errors
from adapters.http.routes.agents import check_manages
from adapters.http.schemas import DOCUMENT_NAME_RULE, valid_document_name
from adapters.http.services import Services
from bot.knowledge import MAX_DOCUMENT_BYTES, SUFFIXES, DocumentError
from config.agents import Agent
from memory.base import MAX_DOCUMENT_NAME, ApiKeyRecord, KnowledgeDocument

UPLOAD_PATH = "/agents/{agent_id}/documents"
"""Where uploads are posted (under the API's prefix): the path of their body limit, see
:class:`adapters.http.limits.BodyLimit`."""
router = APIRouter(prefix=UPLOAD_PATH, tags=["documents"])
ERRORS = route_errors(404, 409)
UPLOAD_LIMIT = MAX_DOCUMENT_BYTES
"""An upload's body is the document: larger ones are refused (413) before they are read."""
WRAPPED_TYPES = ("multipart/form-data", "application/json")
"""Content types that say the body is not the document itself but something wrapping it."""
READ_ONLY = "read_only"
_KINDS = ", ".join(sorted(SUFFIXES))

_UPLOAD_BODY: dict[str, Any] = {
    "required": True,
    "description": (
        "The document's bytes, as they are (Markdown, plain text, HTML or PDF; the name's"
        f" suffix says which), at most {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB."
    ),
    "content": {
        kind: {"schema": {"type": "string", "format": "binary"}}
        for kind in (
            "application/octet-stream",
            "text/markdown",
            "text/plain",
            "text/html",
            "application/pdf",
        )
    },
}


async def reader_agent(services: Services, key: ApiKeyRecord, agent_id: str) -> Agent:
    """The agent whose documents ``key`` reads (403 outside its agents, 404 unknown)."""
    check_agent(key, agent_id)
    return await _agent(services, agent_id)


async def managed_agent(services: Services, key: ApiKeyRecord, agent_id: str) -> Agent:
    """The agent whose documents ``key`` changes: as for changing the agent itself."""
    check_manages(key, agent_id)
    return await _agent(services, agent_id)


async def _agent(services: Services, agent_id: str) -> Agent:
    agent = await services.catalog.lookup(agent_id)
    if agent is None:
        raise ApiError(404, f"no agent {agent_id!r}")
    return agent


def _file_refused(name: str) -> ApiError:
    return ApiError(
        409,
        f"{name!r} is a document of the agents file (knowledge:); change the file instead",
        code=READ_ONLY,
    )


async def upload(
    services: Services, agent: Agent, name: str, content: bytes
) -> tuple[KnowledgeDocument, bool]:
    """Index ``content`` as the agent's upload ``name``; returns the document and whether it
    is new (else an earlier upload of that name was replaced). 422 for a bad name or a
    document that cannot be read, 409 for a name of the agents file's documents."""
    if not valid_document_name(name):
        raise ApiError(422, f"name: {DOCUMENT_NAME_RULE}")
    if not content:
        raise ApiError(422, f"{name}: the document is empty")
    store = services.store
    earlier = await store.get_document(agent_id=agent.id, name=name)
    if earlier is not None and earlier.source == "file":
        raise _file_refused(name)
    engine = services.engine
    try:
        await engine.knowledge.put(
            agent,
            name,
            content,
            source="upload",
            count=lambda text: engine.count_tokens(text, agent),
        )
    except DocumentError as exc:
        raise ApiError(422, str(exc)) from None
    document = await store.get_document(agent_id=agent.id, name=name)
    if document is None:
        raise ApiError(409, f"{name!r} was deleted while it was being indexed; send it again")
    return document, earlier is None


async def load_document(services: Services, agent: Agent, name: str) -> KnowledgeDocument:
    found = None
    if len(name) <= MAX_DOCUMENT_NAME:
        found = await services.store.get_document(agent_id=agent.id, name=name)
    if found is None:
        raise ApiError(404, f"agent {agent.id!r} has no document {name!r}")
    return found


async def remove(services: Services, agent: Agent, name: str) -> None:
    """Delete the agent's upload ``name`` with its chunks (409 for the agents file's)."""
    document = await load_document(services, agent, name)
    if document.source == "file":
        raise _file_refused(name)
    if not await services.store.delete_document(agent_id=agent.id, name=name):
        raise ApiError(404, f"agent {agent.id!r} has no document {name!r}")


@router.get("", response_model=list[KnowledgeDocument], responses=ERRORS)
async def list_documents(
    agent_id: str, key: Reader, services: ServicesDep
) -> list[KnowledgeDocument]:
    """The agent's documents by name, without their text: from the agents file
    (``source: file``) and uploaded (``source: upload``)."""
    agent = await reader_agent(services, key, agent_id)
    return await services.store.list_documents(agent_id=agent.id)


@router.post(
    "",
    response_model=KnowledgeDocument,
    status_code=status.HTTP_201_CREATED,
    responses={
        **ERRORS,
        200: {"model": KnowledgeDocument, "description": "An upload of that name replaced"},
        **route_errors(415),
    },
    openapi_extra={"requestBody": _UPLOAD_BODY},
)
async def upload_document(
    *,
    agent_id: str,
    request: Request,
    response: Response,
    key: Admin,
    services: ServicesDep,
    name: Annotated[
        str,
        Query(
            max_length=MAX_DOCUMENT_NAME,
            description=f"The document's name, unique for the agent; its suffix ({_KINDS})"
            " says its kind. Slashes allowed: guides/pasta.md.",
        ),
    ],
) -> KnowledgeDocument:
    """Upload one document: split into chunks and indexed at once, then given to the agent's
    turns when relevant. 201 for a new name; an earlier upload of the same name is replaced
    and indexed again (200). 409 for a name of the agents file's documents, 422 for a
    document that cannot be read (unknown kind, not UTF-8, unreadable PDF), 413 past the
    size limit."""
    agent = await managed_agent(services, key, agent_id)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in WRAPPED_TYPES:
        raise ApiError(
            415,
            f"send the document's bytes as the body, not {kind}"
            " (curl --data-binary @guide.md '...?name=guide.md')",
        )
    document, created = await upload(services, agent, name, await request.body())
    response.headers["Location"] = f"{request.url.path}/{quote(document.name)}"
    if not created:
        response.status_code = status.HTTP_200_OK
    return document


@router.get("/{name:path}", response_model=KnowledgeDocument, responses=ERRORS)
async def get_document(
    agent_id: str, name: str, key: Reader, services: ServicesDep
) -> KnowledgeDocument:
    """One document's metadata (``name`` may hold slashes: ``guides/pasta.md``)."""
    agent = await reader_agent(services, key, agent_id)
    return await load_document(services, agent, name)


@router.delete("/{name:path}", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
async def delete_document(agent_id: str, name: str, key: Admin, services: ServicesDep) -> Response:
    """Delete an uploaded document and its chunks: no turn is given them again. Documents of
    the agents file are 409: remove them from its ``knowledge`` instead."""
    agent = await managed_agent(services, key, agent_id)
    await remove(services, agent, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
