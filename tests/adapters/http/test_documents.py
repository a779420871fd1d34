"""``/api/v1/agents/{id}/documents``: uploads are listed, read, indexed, replaced and deleted;
the agents file's documents are read-only; scopes and key limits as for agents; bad
documents are 422 with their reason; an upload may be as large as a document (20 MB), far
over the API's body limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from adapters.http.limits import BodyLimit
from bot.knowledge import MAX_DOCUMENT_BYTES
from memory.base import KnowledgeDocument
from tests.adapters.http.helpers import API, client_with, error_of
from tests.adapters.http.test_key_limits import limited
from tests.support.api import Api
from tests.support.documents import tiny_pdf

DOCUMENTS = f"{API}/agents/chef/documents"
GUIDE = b"# Courgettes\n\nGrate the courgettes, salt them and squeeze out the water.\n"


async def put(
    client: httpx.AsyncClient,
    name: str,
    content: bytes | AsyncIterator[bytes],
    *,
    agent: str = "chef",
    content_type: str = "application/octet-stream",
) -> httpx.Response:
    return await client.post(
        f"{API}/agents/{agent}/documents",
        params={"name": name},
        content=content,
        headers={"Content-Type": content_type},
    )


async def found(api: Api, words: str, agent: str = "chef") -> list[tuple[str, str]]:
    """(document, text) of the agent's chunks the store's search finds for ``words``."""
    chunks = await api.store.search_knowledge(agent_id=agent, query=words, limit=10)
    return [(chunk.document_name, chunk.text) for chunk in chunks]


async def file_document(api: Api, name: str, content: bytes, agent: str = "chef") -> None:
    """A document of the agents file's ``knowledge:``, indexed as the sync indexes it."""
    engine = api.engine
    found_agent = engine.agents.find(agent)
    assert found_agent is not None
    await engine.knowledge.put(
        found_agent,
        name,
        content,
        source="file",
        count=lambda text: engine.count_tokens(text, found_agent),
    )


async def test_upload_list_read_index_replace_delete(api: Api) -> None:
    admin = await api.as_key("admin")
    reader = await api.as_key("read")
    assert (await reader.get(DOCUMENTS)).json() == []

    created = await put(admin, "guides/courgettes.md", GUIDE, content_type="text/markdown")
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"{DOCUMENTS}/guides/courgettes.md"
    document = KnowledgeDocument.model_validate(created.json())
    assert (document.agent_id, document.name, document.source) == (
        "chef",
        "guides/courgettes.md",
        "upload",
    )
    assert (document.size, document.chunks) == (len(GUIDE), 1)
    assert not {"text", "content"} & set(created.json()), "metadata only"

    listed = await reader.get(DOCUMENTS)
    assert listed.status_code == 200
    assert listed.json() == [created.json()]
    one = await reader.get(f"{DOCUMENTS}/guides/courgettes.md")
    assert one.status_code == 200, one.text
    assert one.json() == created.json()
    [(name, text)] = await found(api, "squeeze the courgettes")
    assert name == "guides/courgettes.md"
    assert "squeeze out the water" in text
    assert await found(api, "squeeze", agent="plain") == [], "another agent's documents"

    replaced = await put(admin, "guides/courgettes.md", b"Aubergines want a hot oven.")
    assert replaced.status_code == 200, "an upload of the same name is replaced"
    assert replaced.json()["size"] == len(b"Aubergines want a hot oven.")
    assert [name for name, _ in await found(api, "aubergines oven")] == ["guides/courgettes.md"]
    assert await found(api, "squeeze courgettes") == [], "the old text is no longer indexed"
    assert len((await reader.get(DOCUMENTS)).json()) == 1

    deleted = await admin.delete(f"{DOCUMENTS}/guides/courgettes.md")
    assert deleted.status_code == 204
    assert (await reader.get(DOCUMENTS)).json() == []
    error_of(await reader.get(f"{DOCUMENTS}/guides/courgettes.md"), 404)
    assert await found(api, "aubergines") == []
    error_of(await admin.delete(f"{DOCUMENTS}/guides/courgettes.md"), 404)


async def test_a_pdf_is_read_and_indexed(api: Api) -> None:
    admin = await api.as_key("admin")
    response = await put(
        admin,
        "menu.pdf",
        tiny_pdf("Saffron risotto needs arborio rice"),
        content_type="application/pdf",
    )
    assert response.status_code == 201, response.text
    assert response.json()["chunks"] == 1
    [(name, text)] = await found(api, "arborio")
    assert name == "menu.pdf"
    assert "Saffron risotto needs arborio rice" in text


async def test_the_agents_file_documents_are_read_only(api: Api) -> None:
    await file_document(api, "knowledge/pantry.md", b"Keep chickpeas in the pantry.")
    admin = await api.as_key("admin")
    [listed] = (await admin.get(DOCUMENTS)).json()
    assert (listed["name"], listed["source"]) == ("knowledge/pantry.md", "file")
    assert (await admin.get(f"{DOCUMENTS}/knowledge/pantry.md")).json() == listed

    error = error_of(await put(admin, "knowledge/pantry.md", b"Replaced!"), 409)
    assert error["code"] == "read_only"
    assert "agents file" in error["message"]
    error = error_of(await admin.delete(f"{DOCUMENTS}/knowledge/pantry.md"), 409)
    assert error["code"] == "read_only"
    assert [name for name, _ in await found(api, "chickpeas")] == ["knowledge/pantry.md"]
    assert (await admin.get(f"{DOCUMENTS}/knowledge/pantry.md")).json() == listed


async def test_scopes_and_key_limits(api: Api) -> None:
    admin = await api.as_key("admin")
    assert (await put(admin, "guide.md", GUIDE)).status_code == 201
    url = f"{DOCUMENTS}/guide.md"

    for scope in ("read", "write"):
        client = await api.as_key(scope)
        assert (await client.get(DOCUMENTS)).status_code == 200
        assert (await client.get(url)).status_code == 200
        assert "needs 'admin'" in error_of(await put(client, "other.md", GUIDE), 403)["message"]
        error_of(await client.delete(url), 403)
    error_of(await client_with(api).get(DOCUMENTS), 401)
    error_of(await client_with(api, "pk_nope").post(DOCUMENTS, params={"name": "x.md"}), 401)

    plain_only = await api.as_key("admin", agents=["plain"])
    for response in (
        await plain_only.get(DOCUMENTS),
        await plain_only.get(url),
        await put(plain_only, "other.md", GUIDE),
        await plain_only.delete(url),
    ):
        assert "may not use agent 'chef'" in error_of(response, 403)["message"]
    assert (await put(plain_only, "mine.md", GUIDE, agent="plain")).status_code == 201

    in_one_place = await limited(api, "admin", workspaces=["T1"])
    assert (await in_one_place.get(DOCUMENTS)).status_code == 200, "reads as agents are read"
    error = error_of(await put(in_one_place, "other.md", GUIDE), 403)
    assert "shared by all" in error["message"]
    error_of(await in_one_place.delete(url), 403)
    assert (await admin.get(url)).status_code == 200

    for method, path in (
        ("GET", f"{API}/agents/nobody/documents"),
        ("GET", f"{API}/agents/nobody/documents/guide.md"),
        ("DELETE", f"{API}/agents/nobody/documents/guide.md"),
    ):
        assert "no agent 'nobody'" in error_of(await admin.request(method, path), 404)["message"]
    error_of(await put(admin, "guide.md", GUIDE, agent="nobody"), 404)
    error_of(await admin.get(f"{DOCUMENTS}/missing.md"), 404)
    error_of(await admin.get(f"{DOCUMENTS}/{'x' * 300}.md"), 404)


async def test_bad_documents_are_422_with_the_reason(api: Api) -> None:
    admin = await api.as_key("admin")
    cases: list[tuple[str, bytes, str]] = [
        ("tool.exe", b"MZ...", "tool.exe: unknown kind of document"),
        ("notes.txt", b"caf\xe9 au lait", "notes.txt: not UTF-8 text"),
        ("broken.pdf", b"%PDF-1.4 this is no PDF", "broken.pdf: not a readable PDF"),
        ("empty.md", b"", "empty.md: the document is empty"),
        ("bad\nname.md", GUIDE, "name: 1 to 200 characters"),
        (" spaced.md", GUIDE, "name: 1 to 200 characters"),
    ]
    for name, content, reason in cases:
        error = error_of(await put(admin, name, content), 422)
        assert error["message"].startswith(reason), (name, error)
    assert "name" in error_of(await admin.post(DOCUMENTS, content=GUIDE), 422)["message"]
    assert (await admin.get(DOCUMENTS)).json() == [], "nothing of them was kept"

    for kind in ("multipart/form-data; boundary=x", "application/json"):
        error = error_of(await put(admin, "guide.md", GUIDE, content_type=kind), 415)
        assert "--data-binary" in error["message"]


async def streamed(size: int, chunk: int = 1024 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, size, chunk):
        yield b"a" * min(chunk, size - start)


async def test_an_upload_may_be_as_large_as_a_document(api: Api) -> None:
    admin = await api.as_key("admin")
    default = api.services.settings.api_max_body
    sentence = b"Slow-cooked beans with rosemary and garlic. "
    big = sentence * (3 * default // len(sentence))
    assert default < len(big) < MAX_DOCUMENT_BYTES
    response = await put(admin, "beans.md", big)
    assert response.status_code == 201, response.text
    assert response.json()["size"] == len(big)
    assert response.json()["chunks"] > 1
    assert [name for name, _ in await found(api, "rosemary")][:1] == ["beans.md"]

    too_big = MAX_DOCUMENT_BYTES + 1
    error = error_of(await put(admin, "huge.md", b"a" * too_big), 413)
    assert f"{MAX_DOCUMENT_BYTES} bytes" in error["message"]
    error_of(await put(admin, "huge.md", streamed(too_big)), 413)
    names = [d["name"] for d in (await admin.get(DOCUMENTS)).json()]
    assert names == ["beans.md"]

    writer = await api.as_key("write")
    error = error_of(await writer.post(f"{API}/conversations", content=b"x" * len(big)), 413)
    assert f"{default} bytes" in error["message"], "the rest of the API keeps its limit"
    error = error_of(await admin.post(f"{API}/agents", content=b"x" * len(big)), 413)
    assert f"{default} bytes" in error["message"], "and so do the agents themselves"


def test_a_body_limit_may_name_route_parameters() -> None:
    async def app(scope: object, receive: object, send: object) -> None:
        raise AssertionError("not called")

    limit = BodyLimit(
        app,
        limit=10,
        by_path={
            "/api/v1/agents/{agent_id}/documents": 100,
            "/api/v1/agents/chef/documents/small": 5,
            "/api": 20,
        },
    )
    assert limit.limit_for("/api/v1/agents/chef/documents") == 100
    assert limit.limit_for("/api/v1/agents/tutor/documents/guides/a.md") == 100
    assert limit.limit_for("/api/v1/agents/chef/documents/small") == 5
    assert limit.limit_for("/api/v1/agents//documents") == 20, "a parameter is never empty"
    assert limit.limit_for("/api/v1/agents/chef") == 20
    assert limit.limit_for("/api/v1/agents/chef/documentsX") == 20
    assert limit.limit_for("/console") == 10


async def test_the_routes_are_documented(api: Api) -> None:
    spec: dict[str, Any] = (await client_with(api).get(f"{API}/openapi.json")).json()
    paths = spec["paths"]
    listing = paths[f"{API}/agents/{{agent_id}}/documents"]
    one = paths[f"{API}/agents/{{agent_id}}/documents/{{name}}"]
    assert set(listing) == {"get", "post"}
    assert set(one) == {"get", "delete"}
    document = "#/components/schemas/KnowledgeDocument"
    listed = listing["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert (listed["type"], listed["items"]) == ("array", {"$ref": document})
    upload = listing["post"]
    assert upload["responses"]["201"]["content"]["application/json"]["schema"] == {"$ref": document}
    assert {"200", "409", "413", "415", "422"} <= set(upload["responses"])
    assert {"application/pdf", "text/markdown"} <= set(upload["requestBody"]["content"])
    assert [p["name"] for p in upload["parameters"]] == ["agent_id", "name"]
    assert one["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": document
    }
    for operation in (listing["get"], upload, one["get"], one["delete"]):
        assert operation.get("security")
        assert operation["responses"]["404"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/ErrorBody"
        }
    assert {"name", "source", "chunks", "size", "updated_at"} <= set(
        spec["components"]["schemas"]["KnowledgeDocument"]["properties"]
    )
