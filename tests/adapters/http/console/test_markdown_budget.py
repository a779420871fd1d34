"""Markdown on the console's pages never holds up the process: text over the size cap is shown
preformatted, the rest renders in one worker thread within a time budget, each message once.

The timed tests run the app on a real server and poll ``/healthz`` while a page renders: the
server, the test's clients and the renderer's thread share one process, as in the bot.
"""

from __future__ import annotations

import asyncio
import dataclasses
import http.client
import threading
import time
from collections.abc import Sequence

import httpx
import pytest
from markupsafe import Markup

from adapters.http.console.markdown import (
    MAX_MARKDOWN,
    MarkdownRenderer,
    preformatted,
    render_markdown,
)
from memory.base import Message, NewMessage, PlatformKey
from tests.support.api import Api
from tests.support.console import Browser, Console
from tests.support.imports import imported

PLANTED = "[" * 31_000
"""The issue's text: markdown-it took over half a second on each."""
PAGE_SECONDS = 1.0
HEALTH_SECONDS = 0.1


async def plant(api: Api, texts: Sequence[str], *, channel: str = "planted") -> str:
    conversation, _ = await api.engine.open_conversation(
        key=PlatformKey(platform="api", channel=channel), agent_id="plain"
    )
    for text in texts:
        await api.store.append_message(
            conversation_id=conversation.id,
            message=NewMessage(role="user", text=text, author_name="Mallory"),
        )
    return conversation.id


class HealthProbe:
    """Asks ``/healthz`` over and over from its own thread, as a load balancer would from
    outside: a stalled event loop shows as a slow answer, whatever the test's loop does."""

    def __init__(self, base_url: str) -> None:
        address = httpx.URL(base_url)
        self._connection = http.client.HTTPConnection(address.host, address.port, timeout=30)
        self.seconds: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._probe, name="health-probe")

    def _ask(self) -> float:
        started = time.perf_counter()
        self._connection.request("GET", "/healthz")
        response = self._connection.getresponse()
        response.read()
        if response.status != 200:
            self.failures.append(f"/healthz answered {response.status}")
        return time.perf_counter() - started

    def _probe(self) -> None:
        try:
            while not self._stop.is_set():
                self.seconds.append(self._ask())
                self._stop.wait(0.005)
        except OSError as exc:
            self.failures.append(repr(exc))

    async def __aenter__(self) -> HealthProbe:
        await asyncio.to_thread(self._ask)  # connected before timing
        self._thread.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._stop.set()
        await asyncio.to_thread(self._thread.join)
        self._connection.close()
        assert not self.failures, self.failures

    def check(self, *, at_least: int) -> None:
        assert len(self.seconds) >= at_least, "health was asked while the page rendered"
        slowest = max(self.seconds)
        assert slowest < HEALTH_SECONDS, f"/healthz took {slowest:.3f}s"


async def timed_view(browser: Browser, path: str) -> float:
    started = time.perf_counter()
    response = await browser.get(path)
    seconds = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return seconds


async def served_browser(console: Console) -> tuple[Browser, str]:
    base = await console.api.serve()
    browser = Browser(httpx.AsyncClient(base_url=base, timeout=30.0))
    response = await browser.sign_in(await console.api.key("read"))
    assert response.status_code == 303
    return browser, base


async def test_planted_conversation_renders_in_time_and_health_answers(console: Console) -> None:
    conversation_id = await plant(console.api, [f"{PLANTED}{n}" for n in range(25)])
    path = f"/console/conversations/{conversation_id}"
    browser, base = await served_browser(console)
    try:
        async with HealthProbe(base) as health:
            seconds = await timed_view(browser, path)
        page = await browser.get(path)
    finally:
        await browser.client.aclose()
    assert seconds < PAGE_SECONDS, f"the page took {seconds:.3f}s"
    health.check(at_least=1)
    assert page.text.count(f"<pre>{'[' * 100}") == 25, "shown as written, preformatted"


async def test_a_page_of_costly_markdown_stops_at_its_budget(console: Console) -> None:
    """Under the cap, each message costs markdown-it ~100 ms: the page renders what fits in
    its budget, in a thread, and shows the rest preformatted until a later view."""
    costly = "[" * MAX_MARKDOWN
    conversation_id = await plant(console.api, [f"{costly[:-4]}{n:04}" for n in range(100)])
    path = f"/console/conversations/{conversation_id}"
    browser, base = await served_browser(console)
    rendered: list[int] = []
    try:
        async with HealthProbe(base) as health:
            for _ in range(3):
                seconds = await timed_view(browser, path)
                assert seconds < PAGE_SECONDS, f"the page took {seconds:.3f}s"
                rendered.append((await browser.get(path)).text.count("<p>[[[["))
    finally:
        await browser.client.aclose()
    health.check(at_least=10)
    assert 0 < rendered[0] < rendered[1] < rendered[2] < 100, "each view renders more, none twice"


def test_text_over_the_cap_is_preformatted_and_escaped() -> None:
    long = "<script>alert(1)</script> *not emphasis* " + "x" * MAX_MARKDOWN
    html = render_markdown(long)
    assert html.startswith("<pre>&lt;script&gt;alert(1)&lt;/script&gt; *not emphasis* xxx")
    assert html.endswith("x</pre>")
    assert "<em>" not in html
    assert render_markdown("*emphasis*") == Markup("<p><em>emphasis</em></p>\n")
    assert render_markdown("x" * MAX_MARKDOWN).startswith("<p>xxx"), "the cap itself renders"


def test_rendered_html_passes_the_templates_filter_as_it_is() -> None:
    html = render_markdown("a <b>bold</b> **claim**")
    assert "&lt;b&gt;" in html
    assert render_markdown(html) is html


def message(n: int, text: str) -> Message:
    return Message.model_validate(
        {
            "id": f"m{n}",
            "conversation_id": "c1",
            "seq": n,
            "role": "user",
            "text": text,
            "created_at": "2026-01-01T00:00:00Z",
        }
    )


class Counting:
    """A renderer that counts its calls and where it ran."""

    def __init__(self, *, cost: float = 0.0, clock: list[float] | None = None) -> None:
        self.texts: list[str] = []
        self.threads: set[str] = set()
        self._cost = cost
        self._clock = clock

    def __call__(self, text: str) -> Markup:
        self.texts.append(text)
        self.threads.add(threading.current_thread().name)
        if self._clock is not None:
            self._clock[0] += self._cost
        return render_markdown(text)


async def test_each_message_renders_once_off_the_loop() -> None:
    counting = Counting()
    renderer = MarkdownRenderer(render=counting)
    messages = [message(n, f"*{n}*") for n in range(1, 6)]
    first = await renderer.messages(messages, summary="**summary**")
    again = await renderer.messages(messages[2:], summary="**summary**")
    assert [m.text for m in first.messages] == [f"<p><em>{n}</em></p>\n" for n in range(1, 6)]
    assert all(isinstance(m.text, Markup) for m in first.messages)
    assert [m.id for m in first.messages] == [m.id for m in messages]
    assert first.summary == again.summary == Markup("<p><strong>summary</strong></p>\n")
    assert [m.text for m in again.messages] == [m.text for m in first.messages[2:]]
    assert sorted(counting.texts) == sorted([f"*{n}*" for n in range(1, 6)] + ["**summary**"] * 2)
    assert counting.threads, "rendered in a thread"
    assert threading.current_thread().name not in counting.threads, "not on the loop's thread"


async def test_texts_past_the_budget_show_preformatted_and_render_on_a_later_view() -> None:
    now = [0.0]
    counting = Counting(cost=0.1, clock=now)
    renderer = MarkdownRenderer(render=counting, budget=0.25, clock=lambda: now[0])
    messages = [message(n, f"*{n}*") for n in range(1, 6)]
    first = await renderer.messages(messages)
    assert [m.text for m in first.messages[:3]] == [f"<p><em>{n}</em></p>\n" for n in (1, 2, 3)]
    assert [m.text for m in first.messages[3:]] == [preformatted("*4*"), preformatted("*5*")]
    second = await renderer.messages(messages)
    assert [m.text for m in second.messages] == [f"<p><em>{n}</em></p>\n" for n in range(1, 6)]
    assert counting.texts == [f"*{n}*" for n in range(1, 6)]


async def test_over_the_cap_is_neither_rendered_nor_kept() -> None:
    counting = Counting()
    renderer = MarkdownRenderer(render=counting, capacity=2)
    shown = await renderer.messages([message(1, PLANTED)])
    assert shown.messages[0].text == preformatted(PLANTED)
    assert counting.texts == []


async def test_pages_and_fragments_render_each_message_once(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = Counting()
    renderer = MarkdownRenderer(render=counting)
    state = console.api.app.state  # type: ignore[attr-defined]
    monkeypatch.setattr(state, "console", dataclasses.replace(state.console, markdown=renderer))
    conversation_id = await plant(console.api, ["*one*", "*two*"], channel="once")
    browser = await console.signed_in("read")
    for path in (
        f"/console/conversations/{conversation_id}",
        f"/console/conversations/{conversation_id}",
        f"/console/conversations/{conversation_id}/chat",
        f"/console/conversations/{conversation_id}/messages?after=0",
    ):
        response = await browser.get(path)
        assert response.status_code == 200, path
        assert "<p><em>two</em></p>" in response.text, path
    stored = await console.api.store.list_messages(conversation_id=conversation_id)
    assert sorted(counting.texts) == sorted(m.text for m in stored)


def test_markdown_it_is_loaded_only_when_a_text_is_rendered() -> None:
    console = "import bot.runtime, adapters.http.console.views, adapters.http.console.state"
    assert imported(console, "markdown_it") == []
    rendered = (
        "from adapters.http.console.markdown import render_markdown\n"
        "assert render_markdown('*hi*') == '<p><em>hi</em></p>\\n'"
    )
    assert imported(rendered, "markdown_it") != []
