"""Agents' documents in the console: the Agents page lists them, ``admin`` keys upload (a
browser's file form, with the CSRF token) and delete uploads; a conversation shows beside each
reply the passages it was given. Every name and text is escaped."""

from __future__ import annotations

import hashlib
import re

import httpx
import pytest

from adapters.http.console.uploads import parse_form
from adapters.http.errors import ApiError
from memory.base import KnowledgeChunk, NewMessage, PlatformKey
from tests.adapters.http.console.test_conversations import open_at
from tests.adapters.http.console.test_key_limits import signed_in
from tests.support.console import Browser, Console
from tests.support.documents import tiny_pdf

PAGE = "/console/agents"
UPLOAD = "/console/agents/chef/documents/upload"
DELETE = "/console/agents/chef/documents/delete"
GUIDE = b"# Courgettes\n\nGrate the courgettes, salt them and squeeze out the water.\n"


def documents_of(html: str, agent: str = "chef") -> str:
    """The Documents section of an agent's card."""
    start = html.index(f'id="documents-{agent}"')
    return html[start : html.index("</section>", start)]


def rows(section: str) -> list[str]:
    return re.findall(r"<tr>(.*?)</tr>", section.split("<tbody>", 1)[-1], flags=re.S)


async def upload(
    browser: Browser,
    filename: str,
    content: bytes,
    *,
    name: str = "",
    csrf: str | None = None,
    path: str = UPLOAD,
) -> httpx.Response:
    token = browser.csrf if csrf is None else csrf
    data = {**({"csrf": token} if token else {}), "name": name}
    files = {"file": (filename, content, "application/octet-stream")}
    return await browser.client.post(path, data=data, files=files)


async def add_file_document(console: Console, name: str, content: bytes) -> None:
    engine = console.api.engine
    agent = engine.agents.find("chef")
    assert agent is not None
    await engine.knowledge.put(
        agent, name, content, source="file", count=lambda text: engine.count_tokens(text, agent)
    )


async def chunks_for(console: Console, words: str) -> list[KnowledgeChunk]:
    return await console.api.store.search_knowledge(agent_id="chef", query=words, limit=10)


async def test_the_agents_page_lists_documents(console: Console) -> None:
    await add_file_document(console, "knowledge/pantry.md", b"Keep chickpeas in the pantry.")
    admin = await console.signed_in("admin")
    assert (await upload(admin, "guide.md", GUIDE)).status_code == 303

    reader = await console.signed_in("read")
    page = await reader.get(PAGE)
    assert page.status_code == 200
    section = documents_of(page.text)
    guide, pantry = rows(section)
    assert "<code>knowledge/pantry.md</code>" in pantry
    assert ">agents file</td>" in pantry
    assert '"Chunks">1</td>' in pantry
    assert '"Size">29 B</td>' in pantry
    assert '<time datetime="' in pantry
    assert "<code>guide.md</code>" in guide
    assert ">upload</td>" in guide
    assert "enctype" not in page.text, "a read key uploads nothing"
    assert "/documents/delete" not in page.text, "and deletes nothing"
    assert "No documents" in documents_of(page.text, "plain")

    page = await admin.get(PAGE)
    section = documents_of(page.text)
    assert f'action="{UPLOAD}" enctype="multipart/form-data"' in section
    assert f'name="csrf" value="{admin.csrf}"' in section
    assert 'name="file" type="file" required' in section
    guide, pantry = rows(section)
    assert "managed by the agents file" in pantry
    assert "/documents/delete" not in pantry, "files are changed in the agents file"
    assert f'action="{DELETE}"' in guide
    assert 'name="name" value="guide.md"' in guide


async def test_upload_replace_and_delete_with_the_csrf_token(console: Console) -> None:
    admin = await console.signed_in("admin")
    store = console.api.store

    refused = await upload(admin, "guide.md", GUIDE, csrf="")
    assert refused.status_code == 403
    refused = await upload(admin, "guide.md", GUIDE, csrf="forged")
    assert refused.status_code == 403
    assert await store.list_documents(agent_id="chef") == []

    uploaded = await upload(admin, "guide.md", GUIDE, name="guides/courgettes.md")
    assert uploaded.status_code == 303
    assert uploaded.headers["location"] == f"{PAGE}?notice=document-uploaded#documents-chef"
    page = await admin.get(uploaded.headers["location"])
    assert "The document is uploaded and indexed." in page.text
    assert "<code>guides/courgettes.md</code>" in documents_of(page.text)
    [chunk] = await chunks_for(console, "squeeze courgettes")
    assert chunk.document_name == "guides/courgettes.md"

    again = await upload(
        admin, "other-name.md", b"Aubergines want a hot oven.", name="guides/courgettes.md"
    )
    assert again.headers["location"] == f"{PAGE}?notice=document-replaced#documents-chef"
    assert await chunks_for(console, "squeeze courgettes") == []
    assert [c.document_name for c in await chunks_for(console, "aubergines")] == [
        "guides/courgettes.md"
    ]

    assert (await admin.post_form(DELETE, csrf="", name="guides/courgettes.md")).status_code == 403
    deleted = await admin.post_form(DELETE, name="guides/courgettes.md")
    assert deleted.status_code == 303
    assert deleted.headers["location"] == f"{PAGE}?notice=document-deleted#documents-chef"
    assert await store.list_documents(agent_id="chef") == []
    assert await chunks_for(console, "aubergines") == []
    assert (await admin.post_form(DELETE, name="guides/courgettes.md")).status_code == 404


async def test_uploads_keep_the_bytes_exactly(console: Console) -> None:
    admin = await console.signed_in("admin")
    tricky = b"line one\r\nline two\r\n\r\n--not-a-boundary\r\n--\r\n"
    assert (await upload(admin, "crlf.txt", tricky)).status_code == 303
    pdf = tiny_pdf("Saffron risotto needs arborio rice")
    assert (await upload(admin, "menu.pdf", pdf)).status_code == 303
    sentence = b"Slow-cooked beans with rosemary and garlic. "
    big = sentence * (300_000 // len(sentence))
    assert len(big) > console.api.services.settings.api_max_body
    assert (await upload(admin, "beans.md", big)).status_code == 303, "over API_MAX_BODY"

    stored = {d.name: d for d in await console.api.store.list_documents(agent_id="chef")}
    for name, content in (("crlf.txt", tricky), ("menu.pdf", pdf), ("beans.md", big)):
        assert stored[name].size == len(content), name
        assert stored[name].content_hash == hashlib.sha256(content).hexdigest(), name
    [chunk] = await chunks_for(console, "arborio")
    assert chunk.document_name == "menu.pdf"


async def test_refused_uploads_say_why_beside_the_form(console: Console) -> None:
    await add_file_document(console, "knowledge/pantry.md", b"Keep chickpeas in the pantry.")
    admin = await console.signed_in("admin")

    for filename, content, name, status, reason in [
        ("tool.exe", b"MZ", "", 422, "tool.exe: unknown kind of document"),
        ("notes.txt", b"caf\xe9", "", 422, "notes.txt: not UTF-8 text"),
        ("broken.pdf", b"%PDF-1.4 nothing", "", 422, "broken.pdf: not a readable PDF"),
        ("pantry.md", b"New pantry", "knowledge/pantry.md", 409, "is a document of the agents"),
        ("", b"", "", 422, "choose a file to upload"),
    ]:
        page = await upload(admin, filename, content, name=name)
        assert page.status_code == status, (filename, page.text)
        section = documents_of(page.text)
        error = re.search(
            r'<p class="error" role="alert" id="upload-error-chef">(.*?)</p>', section
        )
        assert error is not None, filename
        assert reason in error.group(1).replace("&#39;", "'"), (filename, error.group(1))
        assert "upload-error" not in documents_of(page.text, "plain")
    names = [d.name for d in await console.api.store.list_documents(agent_id="chef")]
    assert names == ["knowledge/pantry.md"]

    refused = await admin.post_form(DELETE, name="knowledge/pantry.md")
    assert refused.status_code == 409
    assert "agents file" in refused.text
    big = b"a" * (20 * 1024 * 1024 + 128 * 1024)
    assert (await upload(admin, "huge.md", big)).status_code == 413


async def test_scopes_and_key_limits(console: Console) -> None:
    for scope in ("read", "write"):
        browser = await console.signed_in(scope)
        assert (await upload(browser, "guide.md", GUIDE)).status_code == 403
        assert (await browser.post_form(DELETE, name="guide.md")).status_code == 403
    plain_only = await console.signed_in("admin", agents=["plain"])
    page = await plain_only.get(PAGE)
    assert 'id="documents-chef"' not in page.text
    assert 'action="/console/agents/plain/documents/upload"' in page.text
    assert (await upload(plain_only, "guide.md", GUIDE)).status_code == 403
    mine = await upload(
        plain_only, "guide.md", GUIDE, path="/console/agents/plain/documents/upload"
    )
    assert mine.status_code == 303

    in_one_place = await signed_in(console, "admin", workspaces=["T1"])
    page = await in_one_place.get(PAGE)
    assert "enctype" not in page.text, "agents are shared by every workspace"
    assert (await upload(in_one_place, "guide.md", GUIDE)).status_code == 403
    assert await console.api.store.list_documents(agent_id="chef") == []
    admin = await console.signed_in("admin")
    assert (
        await upload(admin, "x.md", GUIDE, path="/console/agents/nobody/documents/upload")
    ).status_code == 404


async def test_names_and_texts_are_escaped(console: Console) -> None:
    admin = await console.signed_in("admin")
    name = '<img src=x onerror="alert(1)">.md'
    text = b"<script>alert('chef')</script> courgettes"
    assert (await upload(admin, "evil.md", text, name=name)).status_code == 303
    page = await admin.get(PAGE)
    assert "<img src=x" not in page.text
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;.md" in page.text

    [chunk] = await chunks_for(console, "courgettes")
    conversation_id = await open_at(console, PlatformKey(platform="api", channel="escaped"))
    await console.api.store.append_message(
        conversation_id=conversation_id,
        message=NewMessage(role="assistant", text="Grate them.", sources=(chunk.id,)),
    )
    page = await admin.get(f"/console/conversations/{conversation_id}")
    assert "<script>alert(" not in page.text
    assert "&lt;script&gt;alert(&#39;chef&#39;)&lt;/script&gt; courgettes" in page.text
    assert "<strong>&lt;img src=x onerror=&#34;alert(1)&#34;&gt;.md</strong>" in page.text


async def test_a_conversation_shows_the_sources_of_each_reply(console: Console) -> None:
    await add_file_document(console, "knowledge/pantry.md", b"Keep chickpeas in the pantry.")
    admin = await console.signed_in("admin")
    assert (await upload(admin, "guide.md", GUIDE)).status_code == 303
    assert (await upload(admin, "gone.md", b"Old saffron notes.")).status_code == 303
    [pantry] = await chunks_for(console, "chickpeas")
    [guide] = await chunks_for(console, "courgettes")
    [gone] = await chunks_for(console, "saffron")
    conversation_id = await open_at(console, PlatformKey(platform="api", channel="sources"))
    store = console.api.store
    await store.append_message(
        conversation_id=conversation_id,
        message=NewMessage(role="user", text="What do I do with courgettes?"),
    )
    await store.append_message(
        conversation_id=conversation_id,
        message=NewMessage(
            role="assistant", text="Squeeze them.", sources=(guide.id, gone.id, pantry.id)
        ),
    )
    await store.append_message(
        conversation_id=conversation_id,
        message=NewMessage(role="assistant", text="Anything else?"),
    )
    assert (await admin.post_form(DELETE, name="gone.md")).status_code == 303

    reader = await console.signed_in("read")
    page = await reader.get(f"/console/conversations/{conversation_id}")
    assert page.status_code == 200
    assert page.text.count('<details class="sources">') == 1, "only the reply given passages"
    given = page.text.split('<details class="sources">', 1)[1].split("</details>", 1)[0]
    assert "<summary>Sources (2)</summary>" in given, "a deleted document's passage is gone"
    assert given.index("<strong>guide.md</strong>") < given.index(
        "<strong>knowledge/pantry.md</strong>"
    ), "in the order given"
    assert "squeeze out the water." in given
    assert "Keep chickpeas in the pantry." in given
    assert "saffron" not in given.lower()
    reply = page.text.split('<details class="sources">', 1)[0].rsplit("<li", 1)[1]
    assert "Squeeze them." in reply

    fragment = await reader.get(f"/console/conversations/{conversation_id}/messages?after=0")
    assert fragment.text.count('<details class="sources">') == 1, "the chat's updates too"


MANY_FIELDS = (
    b'--b0undary\r\nContent-Disposition: form-data; name="f"\r\n\r\nx\r\n' * 21 + b"--b0undary--"
)


def test_the_form_reader_refuses_what_is_not_a_form() -> None:
    boundary = "b0undary"
    kind = f"multipart/form-data; boundary={boundary}"
    good = (
        b'--b0undary\r\nContent-Disposition: form-data; name="csrf"\r\n\r\ntoken\r\n'
        b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="a%22b.md"\r\n'
        b"Content-Type: text/markdown\r\n\r\n# A\r\n\r\n-- b0undary\r\n\r\n"
        b"--b0undary--\r\n"
    )
    form = parse_form(good, kind)
    assert form.fields == {"csrf": "token"}
    assert form.files["file"].filename == 'a"b.md'
    assert form.files["file"].content == b"# A\r\n\r\n-- b0undary\r\n"
    for body, content_type, status in [
        (good, "application/x-www-form-urlencoded", 415),
        (good, "multipart/form-data", 400),
        (b"no parts here", kind, 400),
        (good[:-16], kind, 400),
        (b"--b0undary\r\nno headers--b0undary--", kind, 400),
        (b"--b0undary\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b0undary--", kind, 400),
        (MANY_FIELDS, kind, 400),
    ]:
        with pytest.raises(ApiError) as refused:
            parse_form(body, content_type)
        assert refused.value.status == status, body
