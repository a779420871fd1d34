"""The console in a real headless Chromium, against ``python -m bot run`` as a user runs it.

The bot runs as its own process with the fake Slack (Socket Mode) and the fake model, both in
this test's loop. A person signs in with a key made by ``python -m bot keys create``, opens
the conversation that started in Slack, runs a goal check, looks at the agents, chats with the
chef and watches the reply stream in, checks the pages on a phone-width screen, and signs out.

Playwright drives the operating system's Chromium (``executable_path``): its own browser
download is not used. Without Chromium the test is skipped, except in CI (``CI`` set), where
it fails: CI installs Chromium. Screenshots of every page go to ``test-output/screenshots``
(or ``$PARLEY_SCREENSHOTS``); with ``PARLEY_UPDATE_SCREENSHOTS=1`` the conversation page's
also replaces ``docs/console-conversation.png``, the README's picture.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, Page, async_playwright, expect

from tests.support.browser import CHROMIUM_ARGS, chromium_or_skip
from tests.support.fake_openai import FakeOpenAI, RecordedRequest, Reply, default_brain
from tests.support.fake_slack import FakeSlack, mention_event
from tests.support.loopback import free_port
from tests.support.process import REPO, create_key, start_bot, wait_healthy
from tests.support.slack_bot import CHANNEL

START = 60.0
"""Seconds for a fresh interpreter to import everything, connect and listen (slow CI)."""
WAIT_MS = 20_000
SLACK_MESSAGE = (
    "Hi, my name is Ada. I would like a simple dinner with **chickpeas**, lemon and spinach,"
    " and no nuts please."
)
CHAT_MESSAGE = (
    "Hi, I'm Ada. Something with **chickpeas**, lemon and spinach? <script>alert('x')</script>"
)


def screenshots() -> Path:
    folder = Path(os.environ.get("PARLEY_SCREENSHOTS") or REPO / "test-output" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def chromium_path() -> str:
    return chromium_or_skip()


@dataclasses.dataclass
class RunningBot:
    url: str
    key: str
    log: Path
    process: asyncio.subprocess.Process


@pytest.fixture
async def running_bot(
    tmp_path: Path, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> AsyncIterator[RunningBot]:
    shutil.copy(REPO / "agents.yaml", tmp_path / "agents.yaml")
    port = free_port()
    env = {
        "SLACK_BOT_TOKEN": fake_slack.bot_token,
        "SLACK_APP_TOKEN": fake_slack.app_token,
        "SLACK_API_URL": fake_slack.api_url,
        "OPENAI_BASE_URL": fake_openai.base_url,
        "OPENAI_API_KEY": "sk-browser-test",
        "OPENAI_MAX_RETRIES": "0",
        "BOT_DATA_DIR": str(tmp_path / "data"),
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "INFO",
    }
    key = await create_key(tmp_path, "--name", "browser", "--scope", "admin", **env)
    log = tmp_path / "bot.log"
    process = await start_bot(tmp_path, log, "run", **env)
    url = f"http://127.0.0.1:{port}"
    try:
        await fake_slack.wait_connected(within=START)
        await wait_healthy(url, process, log, within=START)
        yield RunningBot(url=url, key=key, log=log, process=process)
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=30)
        assert code == 0, log.read_text()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = log.read_text()
    assert "Traceback" not in output, output
    assert key not in output


@pytest.fixture
async def browser(chromium_path: str, tmp_path: Path) -> AsyncIterator[BrowserContext]:
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=chromium_path,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(WAIT_MS)
        try:
            yield context
        finally:
            await context.close()


async def shoot(page: Page, name: str) -> Path:
    path = screenshots() / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


async def slack_conversation(fake: FakeSlack) -> str:
    """Mention the bot in Slack and wait until its reply is finished; returns the thread."""
    event = mention_event(SLACK_MESSAGE)
    await fake.wait_ack(await fake.send_event(event))

    def finished() -> bool:
        messages = fake.thread(CHANNEL, event["ts"])
        return bool(messages) and not any(message.streaming for message in messages)

    await fake.wait_for(finished, within=START)
    thread: str = event["ts"]
    return thread


def slow_stream(request: RecordedRequest) -> Reply:
    """The default model, writing a few characters at a time so the page can see it grow."""
    reply = default_brain(request)
    return dataclasses.replace(reply, chunk_size=4, chunk_delay=0.04) if request.stream else reply


async def test_the_console_in_a_browser(
    running_bot: RunningBot,
    browser: BrowserContext,
    fake_slack: FakeSlack,
    fake_openai: FakeOpenAI,
) -> None:
    await slack_conversation(fake_slack)
    page = browser.pages[0] if browser.pages else await browser.new_page()
    base = running_bot.url
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))

    # Signing in: the console sends a visitor to the sign-in page and back.
    await page.goto(f"{base}/console/conversations")
    await expect(page).to_have_url(
        f"{base}/console/signin?notice=signin&next=%2Fconsole%2Fconversations"
    )
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await shoot(page, "01-sign-in")
    await page.get_by_label("API key").fill("pk_not-a-real-key")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("That key is unknown or revoked.")
    await page.get_by_label("API key").fill(running_bot.key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{base}/console/conversations")
    cookies = await browser.cookies(f"{base}/console/")
    assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [
        ("parley_console", True, "Strict")
    ]
    assert running_bot.key not in str(cookies)
    assert await page.evaluate("document.cookie") == "", "HttpOnly: scripts cannot read it"

    # The conversation that started in Slack.
    row = page.get_by_role("row").filter(has_text="Slack")
    await expect(row).to_contain_text("#C0KITCHEN")
    await expect(row).to_contain_text("chef")
    await expect(row).to_contain_text("not checked")
    await shoot(page, "02-conversations")
    await row.get_by_role("link").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Hi, my name is Ada")
    messages = page.locator("#messages > li")
    await expect(messages).to_have_count(2)
    await expect(messages.nth(0)).to_contain_text("chickpeas")
    await expect(messages.nth(0).locator("strong", has_text="chickpeas")).to_be_visible()
    await expect(messages.nth(1)).to_contain_text("You said:")
    json_box = messages.nth(1).locator("details.json")
    await json_box.locator("summary").click()
    await expect(json_box.locator("pre")).to_contain_text('"recipes"')

    # A goal check, run from the page, and its result.
    await page.get_by_role("button", name="Run goal check now").click()
    await expect(page.get_by_role("status")).to_contain_text("The goal check is done")
    checks = page.locator("ol.checks > li")
    await expect(checks).to_have_count(1)
    await expect(checks.first).to_contain_text("not yet")
    await expect(checks.first).to_contain_text("Nothing is chosen yet.")
    await json_box.locator("summary").click()  # the page was reloaded: open it again
    await expect(json_box.locator("pre")).to_be_visible()
    conversation_url = page.url
    conversation_png = await shoot(page, "03-conversation")
    if os.environ.get("PARLEY_UPDATE_SCREENSHOTS") == "1":
        shutil.copy(conversation_png, REPO / "docs" / "console-conversation.png")

    # The agents, with their goal-check chart.
    await page.get_by_role("link", name="Agents").click()
    await expect(page.get_by_role("heading", name="Mediterranean Chef chef")).to_be_visible()
    chart = page.get_by_role("img", name="Goal checks of Mediterranean Chef")
    await expect(chart).to_be_visible()
    assert "1 in all, 0 reached, 1 not yet" in (await chart.get_attribute("aria-label") or "")
    chef_card = page.get_by_role("article", name="Mediterranean Chef chef")
    await expect(chef_card.get_by_role("cell", name="answer shown to people")).to_be_visible()
    await expect(chef_card.get_by_role("cell", name="list of string", exact=True)).to_have_count(2)
    await shoot(page, "04-agents")

    # A chat with the chef: the first message opens it, the reply streams in.
    await page.get_by_role("button", name="Chat with Mediterranean Chef").click()
    await expect(page.get_by_role("heading", name="Chat with Mediterranean Chef")).to_be_visible()
    await expect(page.locator("#messages > li")).to_have_count(1)
    await expect(page.locator("#messages > li").first).to_contain_text("I am your personal chef")
    chat_url = page.url
    fake_openai.handle(slow_stream)
    await page.get_by_label("Your message").fill(CHAT_MESSAGE)
    await page.get_by_role("button", name="Send").click()
    streaming = page.locator("#messages > li.pending.assistant .text")
    await expect(streaming).to_contain_text("You said")
    lengths = await _watch_growth(page)
    assert len(set(lengths)) >= 3, f"the reply grew in steps: {lengths}"
    assert lengths == sorted(lengths)
    await expect(page.locator("#chat-status")).to_have_text("Reply complete.")
    await expect(page.locator("#messages > li.pending")).to_have_count(0)
    final = page.locator("#messages > li")
    await expect(final).to_have_count(3)
    await expect(final.nth(1)).to_contain_text("You")
    await expect(final.nth(2)).to_contain_text("You said: Hi, I'm Ada. Something with chickpeas")
    await expect(final.nth(2).locator("strong", has_text="chickpeas")).to_be_visible()
    for item in (final.nth(1), final.nth(2)):
        await expect(item).to_contain_text("<script>alert('x')</script>")  # shown as text
    assert await page.locator("#messages script").count() == 0, "no script from the text"
    await expect(page.locator("#reply-json")).to_contain_text('"ingredients"')
    await shoot(page, "05-chat")
    fake_openai.handle(None)

    # Phone width: one column, nothing wider than the screen; the keyboard reaches the skip link.
    await page.set_viewport_size({"width": 390, "height": 844})
    phone_pages = {
        "06-phone-conversations": f"{base}/console/conversations",
        "07-phone-conversation": conversation_url,
        "08-phone-chat": chat_url,
        "09-phone-agents": f"{base}/console/agents",
    }
    for name, url in phone_pages.items():
        await page.goto(url)
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{url} is {width}px wide on a 390px screen"
        await shoot(page, name)
    await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to content"
    await page.set_viewport_size({"width": 1280, "height": 900})

    # Signing out: the session ends and the pages refuse the browser.
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("status")).to_have_text("You are signed out.")
    left = await browser.cookies(f"{base}/console/")
    assert [anonymous(cookie["value"]) for cookie in left] == [True], "only the sign-in form's"
    await page.goto(f"{base}/console/agents")
    await expect(page).to_have_url(f"{base}/console/signin?notice=signin&next=%2Fconsole%2Fagents")
    await shoot(page, "10-signed-out")
    refused = await page.request.post(
        f"{base}/console/conversations/{'0' * 32}/stream",
        data='{"text": "hi"}',
        headers={"Content-Type": "application/json"},
    )
    assert refused.status == 401
    assert dialogs == [], "no script from a message ever ran"


def anonymous(cookie: str) -> bool:
    """Whether a session cookie names no key (the sign-in form's, holding its CSRF token)."""
    body = cookie.split(".", maxsplit=1)[0]
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return payload["k"] == "" and payload["s"] is None


async def _watch_growth(page: Page) -> list[int]:
    """The streaming reply's length, sampled until the reply is complete."""
    lengths: list[int] = []
    async with asyncio.timeout(WAIT_MS / 1000):
        while True:
            length = await page.evaluate(
                "(() => { const t = document.querySelector('#messages > li.pending.assistant"
                " .text'); return t ? t.textContent.length : -1; })()"
            )
            if length < 0:
                return lengths
            if not lengths or length != lengths[-1]:
                lengths.append(length)
            await asyncio.sleep(0.02)
