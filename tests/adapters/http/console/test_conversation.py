"""One conversation: messages, JSON, summary, goal checks, export, tags and metadata."""

from __future__ import annotations

import json

from memory.base import PlatformKey
from tests.support.console import Console

XSS = "<script>alert('x')</script>"


async def test_messages_with_authors_markdown_and_json(console: Console) -> None:
    result = await console.slack_turn("I like *garlic* and `olive oil`")
    browser = await console.signed_in("read")
    page = await browser.get(f"/console/conversations/{result.conversation.id}")
    assert page.status_code == 200
    html = page.text
    assert '<strong class="author">Ada</strong>' in html
    assert '<strong class="author">Chef</strong>' in html
    assert "I like <em>garlic</em> and <code>olive oil</code>" in html, "Markdown rendered"
    assert html.count('<time datetime="') >= 4
    assert "<summary>Structured JSON</summary>" in html
    assert "&#34;recipes&#34;" in html, "the reply's whole JSON, escaped"
    assert result.data is not None
    assert result.data["answer"].startswith("You said:")
    assert "Slack · T0CONSOLE · #C0KITCHEN" in html
    assert "No goal check yet." in html
    assert "Run goal check now" not in html, "a read key sees no write buttons"
    assert 'action="/console/conversations/' not in html.replace("/console/signout", "")
    assert "Export Markdown" in html
    assert "Export JSON" in html


async def test_script_in_user_and_model_text_is_escaped(console: Console) -> None:
    result = await console.slack_turn(f"{XSS} and [a link](javascript:alert(1))")
    assert XSS in result.text, "the fake model repeats it"
    await console.api.store.set_summary(
        conversation_id=result.conversation.id, summary=f"Summary {XSS}", summary_seq=1
    )
    browser = await console.signed_in("admin")
    page = await browser.get(f"/console/conversations/{result.conversation.id}")
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text
    assert 'href="javascript:' not in page.text
    assert "Summary &lt;script&gt;" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"


async def test_run_a_goal_check_and_see_its_result(console: Console) -> None:
    result = await console.slack_turn("I have chosen the paella, done")
    conversation_id = result.conversation.id
    browser = await console.signed_in("write")
    page = await browser.get(f"/console/conversations/{conversation_id}")
    assert "Run goal check now" in page.text
    response = await browser.post_form(f"/console/conversations/{conversation_id}/goal-check")
    assert response.status_code == 303
    assert response.headers["location"] == (
        f"/console/conversations/{conversation_id}?notice=goal-checked#goal-checks"
    )
    after = await browser.get(response.headers["location"])
    assert "The goal check is done" in after.text
    assert '<li class="check reached">' in after.text
    assert "The person has chosen; it is done." in after.text
    assert '<span class="goal goal-reached">reached</span>' in after.text
    checks = await console.api.store.list_goal_checks(conversation_id=conversation_id)
    assert len(checks) == 1
    assert checks[0].reached


async def test_goal_check_needs_write_a_token_and_a_goal(console: Console) -> None:
    chef = await console.slack_turn("hello")
    plain, _ = await console.api.engine.open_conversation(
        key=PlatformKey(platform="api", channel="p"), agent_id="plain"
    )
    reader = await console.signed_in("read")
    refused = await reader.post_form(f"/console/conversations/{chef.conversation.id}/goal-check")
    assert refused.status_code == 403
    assert "needs &#39;write&#39;" in refused.text
    writer = await console.signed_in("write")
    no_token = await writer.post_form(
        f"/console/conversations/{chef.conversation.id}/goal-check", csrf=""
    )
    assert no_token.status_code == 403
    assert "This form has expired" in no_token.text
    wrong = await writer.post_form(
        f"/console/conversations/{chef.conversation.id}/goal-check", csrf=reader.csrf
    )
    assert wrong.status_code == 403, "another session's token"
    no_goal = await writer.post_form(f"/console/conversations/{plain.id}/goal-check")
    assert no_goal.status_code == 409
    assert "has no goal" in no_goal.text
    assert await console.api.store.list_goal_checks(conversation_id=chef.conversation.id) == []


async def test_export_markdown_and_json(console: Console) -> None:
    result = await console.slack_turn("my name is Bob")
    browser = await console.signed_in("read")
    md = await browser.get(f"/console/conversations/{result.conversation.id}/export?format=md")
    assert md.status_code == 200
    assert md.headers["content-type"].startswith("text/markdown")
    assert "attachment" in md.headers["content-disposition"]
    assert "my name is Bob" in md.text
    raw = await browser.get(f"/console/conversations/{result.conversation.id}/export?format=json")
    document = json.loads(raw.text)
    assert document["conversation"]["id"] == result.conversation.id
    assert len(document["messages"]) == 2


async def test_edit_tags_and_metadata(console: Console) -> None:
    result = await console.slack_turn("hello")
    path = f"/console/conversations/{result.conversation.id}"
    browser = await console.signed_in("write")
    saved = await browser.post_form(
        f"{path}/edit", tags="vip, dinner, vip", source="crm", data='{"order": 42}'
    )
    assert saved.status_code == 303
    updated = await console.api.store.get_conversation(conversation_id=result.conversation.id)
    assert updated is not None
    assert updated.tags == ("vip", "dinner")
    assert updated.source == "crm"
    assert updated.data == {"order": 42}
    page = await browser.get(saved.headers["location"])
    assert "Saved." in page.text
    assert 'value="vip, dinner"' in page.text

    bad = await browser.post_form(f"{path}/edit", tags="x", data="{not json")
    assert bad.status_code == 422
    assert "metadata: not valid JSON" in bad.text
    assert "{not json</textarea>" in bad.text, "what was typed is kept"
    not_object = await browser.post_form(f"{path}/edit", data="[1, 2]")
    assert not_object.status_code == 422
    too_long = await browser.post_form(f"{path}/edit", tags="x" * 65)
    assert too_long.status_code == 422
    reader = await console.signed_in("read")
    assert (await reader.post_form(f"{path}/edit", tags="nope")).status_code == 403
    assert "Tags and metadata" not in (await reader.get(path)).text
    still = await console.api.store.get_conversation(conversation_id=result.conversation.id)
    assert still is not None
    assert still.tags == ("vip", "dinner")


async def test_unknown_and_forbidden_conversations(console: Console) -> None:
    result = await console.slack_turn("hello")
    browser = await console.signed_in("read")
    for path in ("/console/conversations/" + "0" * 32, "/console/conversations/nope"):
        missing = await browser.get(path)
        assert missing.status_code == 404
        assert '<h1 id="error-title">Not found</h1>' in missing.text
    limited = await console.signed_in("admin", agents=["plain"])
    refused = await limited.get(f"/console/conversations/{result.conversation.id}")
    assert refused.status_code == 403
    assert "may not use agent" in refused.text
    nowhere = await browser.get("/console/no/such/page")
    assert nowhere.status_code == 404


async def test_long_conversations_page_back(console: Console) -> None:
    for n in range(60):
        await console.slack_turn(f"message number {n}")
    result = await console.slack_turn("the last one")
    browser = await console.signed_in("read")
    page = await browser.get(f"/console/conversations/{result.conversation.id}")
    assert page.text.count('<li class="message') == 100
    assert "the last one" in page.text
    assert "<p>message number 0</p>" not in page.text
    assert "?before=23" in page.text
    older = await browser.get(f"/console/conversations/{result.conversation.id}?before=23")
    assert older.text.count('<li class="message') == 22
    assert "<p>message number 0</p>" in older.text
