"""Slack's agent surface end to end: the session status and its Stop button, loading messages,
titles, suggested prompts, and the feedback buttons under replies, driven through the fake
Slack's Socket Mode and Web API with the unmodified slack-bolt and slack_sdk."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from adapters.slack.agent import LOADING_MESSAGES, SUGGESTED_PROMPTS
from adapters.slack.blocks import FEEDBACK
from adapters.slack.messages import GONE_LINE, STOPPED_LINE, THANKS_LINE
from bot.feedback import Rated
from bot.journal import STOPPED
from memory.base import PlatformKey
from tests.support.agents import agents_file, plain
from tests.support.fake_openai import FakeOpenAI, HeldModel, answer_for, slow_model
from tests.support.fake_slack import (
    TEAM,
    BotMessage,
    FakeSlack,
    agent_session_stopped,
    app_home_opened,
    assistant_thread_started,
    feedback_click,
    message_event,
    new_ts,
)
from tests.support.metrics import Scrape
from tests.support.slack_bot import ADA, DM, Bot, BotFactory, texts
from tests.support.slack_safety import assert_no_mentions


def dm_in_thread(text: str, thread: str) -> dict[str, Any]:
    """A person's message in a thread of their direct messages with the bot."""
    return message_event(text, channel=DM, channel_type="im", thread_ts=thread)


def key_of(thread: str) -> PlatformKey:
    return PlatformKey(platform="slack", workspace=TEAM, channel=DM, thread=thread)


# status, loading messages, titles, prompts ---------------------------------------------------


async def test_a_thread_of_direct_messages_is_an_agent_session_on_every_process(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    """No assistant_thread_started seen here (another replica had it, or before a restart):
    the message itself says it is in an agent thread."""
    bot = await start_slack()
    thread = new_ts()

    await bot.deliver(dm_in_thread("my name is Ada", thread))
    await bot.settle()

    methods = [call.method for call in fake_slack.calls]
    working, loading, idle = (
        fake_slack.calls_to("agents.sessions.setStatus")[0],
        fake_slack.calls_to("assistant.threads.setStatus")[0],
        fake_slack.calls_to("agents.sessions.setStatus")[-1],
    )
    assert working.args == {
        "channel_id": DM,
        "thread_ts": thread,
        "status": "processing",
        "initiator_user_id": ADA,
    }
    assert loading.args["loading_messages"] == list(LOADING_MESSAGES)
    assert methods.index("agents.sessions.setStatus") < methods.index("chat.startStream")
    assert methods.index("assistant.threads.setStatus") < methods.index("chat.startStream")
    assert idle.args["status"] == "active", "the session waits for the person again"
    assert methods.index("chat.stopStream") < len(methods) - methods[::-1].index(
        "agents.sessions.setStatus"
    )
    (title,) = fake_slack.calls_to("agents.sessions.rename")
    assert title.args == {"channel_id": DM, "thread_ts": thread, "title": "my name is Ada"}
    assert not fake_slack.calls_to("assistant.threads.setTitle"), "the current API only"

    await bot.deliver(dm_in_thread("what's my name?", thread))
    await bot.settle()
    assert texts(fake_slack, thread, DM)[-1] == "Your name is Ada."
    assert len(fake_slack.calls_to("agents.sessions.rename")) == 1, "named once"


async def test_a_direct_message_outside_threads_and_channel_threads_have_no_session(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = await start_slack()
    first = message_event("hello", channel=DM, channel_type="im")
    await bot.deliver(first)
    await bot.deliver(message_event("<@U0PARLEY> hi", thread_ts=new_ts()))
    await bot.settle()
    assert texts(fake_slack, first["ts"], DM) == ["You said: Ada: hello"]
    assert not fake_slack.calls_to("agents.sessions.setStatus")
    assert not fake_slack.calls_to("assistant.threads.setStatus")


async def test_a_new_split_view_thread_is_greeted_with_prompts(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = await start_slack()
    started = assistant_thread_started(channel=DM)
    thread = started["assistant_thread"]["thread_ts"]

    await bot.deliver(started, event_id="Ev0STARTED")
    await bot.settle()
    assert texts(fake_slack, thread, DM) == [bot.engine.agents.default.first_message]
    (greeting,) = fake_slack.thread(DM, thread)
    assert greeting.markdown, "the first message is Markdown, like replies"
    (prompts,) = fake_slack.calls_to("assistant.threads.setSuggestedPrompts")
    assert prompts.args["thread_ts"] == thread
    assert prompts.args["prompts"] == [dict(prompt) for prompt in SUGGESTED_PROMPTS]

    await bot.deliver(started, event_id="Ev0STARTED", retry_attempt=1)  # no second greeting
    await bot.settle()
    assert len(fake_slack.calls_to("assistant.threads.setSuggestedPrompts")) == 1


async def test_opening_the_bots_messages_sets_its_agents_prompts(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = await start_slack()
    await bot.deliver(app_home_opened(channel=DM, tab="home"))
    await bot.settle()
    assert not fake_slack.calls_to("assistant.threads.setSuggestedPrompts")

    await bot.deliver(app_home_opened(channel=DM, tab="messages"))
    await bot.settle()
    (prompts,) = fake_slack.calls_to("assistant.threads.setSuggestedPrompts")
    assert prompts.args["channel_id"] == DM
    assert "thread_ts" not in prompts.args, "for the whole direct-message channel"
    assert prompts.args["title"] == f"Talk to {bot.engine.agents.default.name}"


async def test_agent_calls_that_fail_are_not_fatal(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    for method in (
        "agents.sessions.setStatus",
        "agents.sessions.rename",
        "assistant.threads.setStatus",
        "assistant.threads.setSuggestedPrompts",
    ):
        fake_slack.fail(method, "not_allowed_token_type", times=None)
    bot = await start_slack()
    thread = new_ts()
    await bot.deliver(app_home_opened(channel=DM))
    await bot.settle()
    await bot.deliver(dm_in_thread("hello", thread))
    await bot.deliver(dm_in_thread("hello again", thread))
    await bot.settle()
    assert texts(fake_slack, thread, DM) == ["You said: Ada: hello", "You said: Ada: hello again"]
    agent_calls = [c for c in fake_slack.calls if c.method.startswith(("agents.", "assistant."))]
    assert len(agent_calls) == 1, "a workspace that refuses the surface is left alone a while"


async def test_a_refusal_about_one_thread_keeps_the_surface_on(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    fake_slack.fail("agents.sessions.setStatus", "invalid_thread_ts", times=1)
    bot = await start_slack()
    thread = new_ts()
    await bot.deliver(dm_in_thread("hello", thread))
    await bot.settle()
    assert len(fake_slack.calls_to("agents.sessions.setStatus")) == 2, "processing, then active"
    assert fake_slack.calls_to("assistant.threads.setStatus")


# the Stop button ----------------------------------------------------------------------------


async def test_stop_cancels_the_reply_in_progress_and_it_is_never_retried(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    held = HeldModel()
    fake_openai.handle(held)
    bot = await start_slack()
    thread = new_ts()
    asked = dm_in_thread("tell me a long story", thread)
    await bot.deliver(asked)
    await held.until(1)  # the model is working on it

    await bot.deliver(agent_session_stopped(channel=DM, thread_ts=thread))
    await fake_slack.wait_for(lambda: STOPPED_LINE in texts(fake_slack, thread, DM))
    held.release()
    await bot.settle()

    assert texts(fake_slack, thread, DM) == [STOPPED_LINE], "no reply after the stop"
    entry = await bot.store.journal_get(entry_id=f"slack:{TEAM}:{DM}:{asked['ts']}")
    assert entry is not None
    assert entry.state == "failed"
    assert entry.error == STOPPED
    assert await bot.store.journal_next(key=key_of(thread)) is None, "never answered again"
    conversation = await bot.conversation(thread, channel=DM)
    assert conversation is not None
    messages = await bot.store.list_messages(conversation_id=conversation.id)
    assert [m.role for m in messages] == ["user"], "no reply stored"
    statuses = [call.args["status"] for call in fake_slack.calls_to("agents.sessions.setStatus")]
    assert statuses[-1] == "active", "the session no longer shows processing"

    fake_openai.handle(None)
    await bot.deliver(dm_in_thread("a short one then", thread))
    await bot.settle()
    assert texts(fake_slack, thread, DM)[-1] == "You said: Ada: a short one then"


async def test_stop_while_the_reply_streams_keeps_what_was_shown(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    slow_model(fake_openai, chunk_delay=0.05)
    bot = await start_slack(agents=agents_file(plain()), edit_interval=0.01)
    thread = new_ts()
    await bot.deliver(dm_in_thread("tell me about topic1", thread))
    await fake_slack.wait_for(
        lambda: any(m.streaming and len(m.text) > 20 for m in fake_slack.thread(DM, thread))
    )

    stopped = fake_slack.stop_streams(DM, thread)
    event = agent_session_stopped(channel=DM, thread_ts=thread, streaming_message_ts=stopped)
    await bot.deliver(event)
    await bot.settle()

    cut, line = fake_slack.thread(DM, thread)
    assert cut.streamed
    assert answer_for("topic1").startswith(cut.text)
    assert cut.text != answer_for("topic1"), "the reply stopped where it was"
    assert line.text == STOPPED_LINE
    assert not cut.blocks, "no feedback buttons under a stopped reply"
    assert bot.adapter.in_flight == 0

    fake_openai.handle(None)
    await bot.deliver(dm_in_thread("hello", thread))
    await bot.settle()
    assert fake_slack.thread(DM, thread)[-1].streamed, "streaming still works here"


async def test_stop_with_nothing_in_progress_only_resets_the_status(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = await start_slack()
    thread = new_ts()
    await bot.deliver(dm_in_thread("hello", thread))
    await bot.settle()

    await bot.deliver(agent_session_stopped(channel=DM, thread_ts=thread))
    await bot.deliver({"type": "agent_session_stopped", "channel": DM, "event_ts": new_ts()})
    await bot.settle()
    assert texts(fake_slack, thread, DM) == ["You said: Ada: hello"]
    assert fake_slack.calls_to("agents.sessions.setStatus")[-1].args["status"] == "active"


# feedback -----------------------------------------------------------------------------------


async def click(bot: Bot, message: BotMessage, rating: str, **options: Any) -> None:
    await bot.acked(await bot.fake.send("interactive", feedback_click(message, rating, **options)))
    await bot.settle()


def feedback_buttons(message: BotMessage) -> dict[str, Any]:
    (block,) = [b for b in message.blocks or [] if b["type"] == "context_actions"]
    (buttons,) = block["elements"]
    assert buttons["type"] == "feedback_buttons"
    assert buttons["action_id"] == FEEDBACK
    return dict(buttons)


async def test_feedback_buttons_end_a_streamed_reply_and_clicks_are_stored_once_per_person(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = await start_slack()
    told: list[Rated] = []
    bot.adapter.feedback.watch(told.append)
    thread = new_ts()
    await bot.deliver(dm_in_thread("hello", thread))
    await bot.settle()

    (reply,) = fake_slack.thread(DM, thread)
    assert reply.streamed
    (stop,) = fake_slack.calls_to("chat.stopStream")
    assert "blocks" in stop.args, "the buttons come with the end of the stream"
    conversation = await bot.conversation(thread, channel=DM)
    assert conversation is not None
    stored = (await bot.store.list_messages(conversation_id=conversation.id))[-1]
    buttons = feedback_buttons(reply)
    assert buttons["positive_button"]["value"] == f"good:{stored.id}"
    assert buttons["negative_button"]["value"] == f"bad:{stored.id}"

    await click(bot, reply, "good")
    await click(bot, reply, "good")  # the same person again: nothing new
    await click(bot, reply, "good", user="U0OLU")
    await click(bot, reply, "bad")  # Ada changes her mind

    ratings = await bot.store.list_feedback(message_id=stored.id)
    assert {(f.person, f.rating) for f in ratings} == {("U0ADA", "bad"), ("U0OLU", "good")}
    assert [(r.feedback.person, r.feedback.rating, r.before) for r in told] == [
        ("U0ADA", "good", None),
        ("U0OLU", "good", None),
        ("U0ADA", "bad", "good"),
    ], "watchers (metrics) see each new or changed rating once"
    counted = Scrape.of(bot.engine.telemetry.metrics)
    assert counted.value("parley_feedback_total", value="good") == 2
    assert counted.value("parley_feedback_total", value="bad") == 1
    thanks = [e for e in fake_slack.ephemerals if e["text"] == THANKS_LINE]
    assert len(thanks) == 3
    assert {e["user"] for e in thanks} == {"U0ADA", "U0OLU"}
    assert all(e["thread_ts"] == thread for e in thanks)
    assert_no_mentions(fake_slack)


async def test_feedback_buttons_end_a_posted_reply_too(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    fake_slack.streaming_enabled = False
    bot = await start_slack()
    thread = new_ts()
    await bot.deliver(dm_in_thread("hello", thread))
    await bot.settle()

    (reply,) = fake_slack.thread(DM, thread)
    assert not reply.streamed
    assert reply.text == "You said: Ada: hello", "the Markdown shows above the buttons"
    assert reply.blocks is not None
    assert reply.blocks[0] == {"type": "markdown", "text": "You said: Ada: hello"}
    feedback_buttons(reply)
    await click(bot, reply, "bad")
    conversation = await bot.conversation(thread, channel=DM)
    assert conversation is not None
    stored = (await bot.store.list_messages(conversation_id=conversation.id))[-1]
    assert [f.rating for f in await bot.store.list_feedback(message_id=stored.id)] == ["bad"]


async def test_feedback_on_a_forgotten_reply_says_so(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = await start_slack()
    thread = new_ts()
    await bot.deliver(dm_in_thread("hello", thread))
    await bot.settle()
    conversation = await bot.conversation(thread, channel=DM)
    assert conversation is not None
    await bot.store.delete_conversation(conversation_id=conversation.id)

    (reply,) = fake_slack.thread(DM, thread)
    await click(bot, reply, "good")
    assert [e["text"] for e in fake_slack.ephemerals] == [GONE_LINE]


async def test_stop_reaches_the_process_writing_the_reply(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    """Slack sends the Stop to one of the processes sharing the app; the one writing the reply
    learns it through the store."""
    held = HeldModel()
    fake_openai.handle(held)
    store = tmp_path / "shared.sqlite3"
    writer = await start_slack(store_path=store)
    thread = new_ts()
    asked = dm_in_thread("tell me a long story", thread)
    await writer.deliver(asked)  # the newest connection: the writer's
    await held.until(1)

    other = await start_slack(store_path=store)  # now the newest: it gets the Stop
    await other.deliver(agent_session_stopped(channel=DM, thread_ts=thread))
    await other.settle()
    async with asyncio.timeout(10):
        await writer.adapter.wait_idle()  # the writer stopped: the model still holds its answer
    held.release()

    entry = await writer.store.journal_get(entry_id=f"slack:{TEAM}:{DM}:{asked['ts']}")
    assert entry is not None
    assert (entry.state, entry.error) == ("failed", STOPPED)
    assert texts(fake_slack, thread, DM) == [STOPPED_LINE], "told once, and no reply"
    conversation = await writer.conversation(thread, channel=DM)
    assert conversation is not None
    messages = await writer.store.list_messages(conversation_id=conversation.id)
    assert [m.role for m in messages] == ["user"]
