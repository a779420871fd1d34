"""Chat in the browser: start a conversation, stream a turn (SSE), or post without script."""

from __future__ import annotations

import json

from tests.support.console import Browser, Console

XSS = "<script>alert('x')</script>"


async def start(browser: Browser, agent: str = "chef") -> str:
    response = await browser.post_form("/console/chats", agent_id=agent)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/console/conversations/")
    assert location.endswith("/chat")
    return location.split("/")[3]


def events(body: str) -> list[tuple[str, dict[str, object]]]:
    found = []
    for frame in body.split("\n\n"):
        lines = [line for line in frame.splitlines() if line and not line.startswith(":")]
        if not lines:
            continue
        event = next(line[7:] for line in lines if line.startswith("event: "))
        data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
        found.append((event, json.loads(data)))
    return found


async def stream(browser: Browser, conversation_id: str, text: str, **headers: str):  # type: ignore[no-untyped-def]
    return await browser.client.post(
        f"/console/conversations/{conversation_id}/stream",
        json={"text": text},
        headers={"Accept": "text/event-stream", "X-CSRF-Token": browser.csrf, **headers},
    )


async def test_the_agents_first_message_opens_the_chat(console: Console) -> None:
    browser = await console.signed_in("write")
    form = await browser.get("/console/chats")
    assert '<option value="chef">' in form.text
    assert '<option value="plain">' in form.text
    conversation_id = await start(browser)
    page = await browser.get(f"/console/conversations/{conversation_id}/chat")
    assert page.status_code == 200
    assert "Hello, I am your personal chef" in page.text
    assert 'id="chat-form"' in page.text
    assert 'data-stream="/console/conversations/' in page.text
    assert '<script src="/console/static/chat.js" defer></script>' in page.text
    assert "No structured reply yet." in page.text
    conversation = await console.api.store.get_conversation(conversation_id=conversation_id)
    assert conversation is not None
    assert conversation.key.platform == "api"
    assert conversation.source == "console"


async def test_a_turn_streams_as_server_sent_events(console: Console) -> None:
    browser = await console.signed_in("write")
    conversation_id = await start(browser)
    response = await stream(browser, conversation_id, f"I'm Ada {XSS}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    found = events(response.text)
    kinds = [kind for kind, _ in found]
    assert kinds[-2:] == ["message", "done"]
    assert "delta" in kinds
    message = found[-2][1]
    assert message["text"] == f"You said: I'm Ada {XSS}"
    assert isinstance(message["data"], dict)
    assert "recipes" in message["data"]

    fragment = await browser.get(f"/console/conversations/{conversation_id}/messages?after=1")
    assert fragment.status_code == 200
    assert fragment.text.count('<li class="message') == 2
    assert '<li class="message user" id="m2" data-seq="2">' in fragment.text
    assert '<strong class="author">You</strong>' in fragment.text
    assert "<script>" not in fragment.text
    assert "&lt;script&gt;" in fragment.text
    page = await browser.get(f"/console/conversations/{conversation_id}/chat")
    assert "&#34;recipes&#34;" in page.text, "the latest JSON beside the chat"


async def test_the_stream_refuses_without_session_token_or_write(console: Console) -> None:
    writer = await console.signed_in("write")
    conversation_id = await start(writer)
    anonymous = console.browser()
    no_session = await stream(anonymous, conversation_id, "hi")
    assert no_session.status_code == 401
    assert no_session.json()["error"]["code"] == "unauthorized"
    no_token = await stream(writer, conversation_id, "hi", **{"X-CSRF-Token": ""})
    assert no_token.status_code == 403
    assert "X-CSRF-Token" in no_token.json()["error"]["message"]
    reader = await console.signed_in("read")
    read_only = await stream(reader, conversation_id, "hi")
    assert read_only.status_code == 403
    empty = await stream(writer, conversation_id, "")
    assert empty.status_code == 422
    missing = await stream(writer, "0" * 32, "hi")
    assert missing.status_code == 404
    messages = await console.api.store.list_messages(conversation_id=conversation_id)
    assert len(messages) == 1, "nothing was sent"


async def test_slack_conversations_are_read_here_and_answered_there(console: Console) -> None:
    result = await console.slack_turn("hello")
    browser = await console.signed_in("write")
    refused = await stream(browser, result.conversation.id, "hi")
    assert refused.status_code == 409
    assert "lives on slack" in refused.json()["error"]["message"]
    page = await browser.get(f"/console/conversations/{result.conversation.id}/chat")
    assert page.status_code == 303
    assert page.headers["location"] == f"/console/conversations/{result.conversation.id}"


async def test_without_script_the_form_posts_and_the_page_shows_the_reply(
    console: Console,
) -> None:
    browser = await console.signed_in("write")
    conversation_id = await start(browser)
    response = await browser.post_form(
        f"/console/conversations/{conversation_id}/messages", text="my name is Bob"
    )
    assert response.status_code == 303
    assert response.headers["location"].endswith("/chat#latest")
    page = await browser.get(f"/console/conversations/{conversation_id}/chat")
    assert "You said: my name is Bob" in page.text
    no_token = await browser.post_form(
        f"/console/conversations/{conversation_id}/messages", csrf="", text="again"
    )
    assert no_token.status_code == 403
    blank = await browser.post_form(f"/console/conversations/{conversation_id}/messages", text=" ")
    assert blank.status_code == 422


async def test_read_keys_and_limited_keys(console: Console) -> None:
    reader = await console.signed_in("read")
    refused = await reader.post_form("/console/chats", agent_id="chef")
    assert refused.status_code == 403
    assert "sign in with a <em>write</em> key" in (await reader.get("/console/chats")).text
    limited = await console.signed_in("write", agents=["plain"])
    form = await limited.get("/console/chats")
    assert '<option value="chef">' not in form.text
    assert (await limited.post_form("/console/chats", agent_id="chef")).status_code == 403
    unknown = await limited.post_form("/console/chats", agent_id="Bad Id")
    assert unknown.status_code == 422
    assert await start(limited, "plain")
