"""The Slack adapter end to end, in Socket Mode: unmodified slack-bolt and slack_sdk against the
fake Slack (Web API and Socket Mode websocket on 127.0.0.1), the real engine and SQLite store,
and the fake OpenAI server. Waits are event-driven: the fake records, the adapter goes idle.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from adapters.base import BUSY_LINE
from adapters.slack import SlackStartError
from adapters.slack.commands import FILES_NOTE
from adapters.slack.reply import SLACK_TEXT_LIMIT
from bot.journal import QUEUED_LINE
from tests.support.agents import agents_file, plain
from tests.support.fake_openai import FakeOpenAI, HeldModel, RecordedRequest, Reply
from tests.support.fake_slack import (
    BOT_ID,
    BOT_USER,
    TEAM,
    FakeSlack,
    mention_event,
    message_event,
    new_ts,
)
from tests.support.slack_bot import ADA, CHANNEL, DM, BotFactory, responses, texts

# conversations ---------------------------------------------------------------------------


async def test_a_mention_starts_a_conversation_in_its_thread(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = await start_slack()
    mention = mention_event("my name is Bob")

    await bot.deliver(mention)
    await bot.settle()

    assert texts(fake_slack, mention["ts"]) == ["You said: Ada: my name is Bob"]
    (started,) = fake_slack.calls_to("chat.startStream")
    assert started.args["channel"] == CHANNEL
    assert started.args["thread_ts"] == mention["ts"], "the reply lands in the mention's thread"
    assert started.args["recipient_team_id"] == TEAM
    assert started.args["recipient_user_id"] == ADA
    (stopped,) = fake_slack.calls_to("chat.stopStream")
    assert stopped.args["ts"] == fake_slack.thread(CHANNEL, mention["ts"])[0].ts
    assert not fake_slack.calls_to("chat.postMessage")

    conversation = await bot.conversation(mention["ts"])
    assert conversation is not None
    assert conversation.agent_id == "chef"
    stored = await bot.store.list_messages(conversation_id=conversation.id)
    assert [(m.role, m.text, m.author_name) for m in stored] == [
        ("user", "my name is Bob", "Ada"),
        ("assistant", "You said: Ada: my name is Bob", "Chef"),
    ]
    assert stored[0].platform_message_id == mention["ts"]


async def test_later_thread_messages_continue_without_a_mention(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    bot = await start_slack()
    mention = mention_event("my name is Bob")
    await bot.deliver(mention)
    await bot.settle()

    await bot.deliver(message_event("what's my name?", thread_ts=mention["ts"]))
    await bot.deliver(message_event("chatter in the channel, not for the bot"))
    await bot.deliver(message_event("a thread of people", thread_ts=new_ts()))
    await bot.settle()

    assert texts(fake_slack, mention["ts"]) == [
        "You said: Ada: my name is Bob",
        "Your name is Bob.",
    ]
    assert len(fake_openai.chat_requests()) == 2, "messages not for the bot cost nothing"
    assert len(fake_slack.calls_to("chat.startStream")) == 2


async def test_two_threads_keep_separate_memories(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = await start_slack()
    bob, matt = mention_event("my name is Bob"), mention_event("my name is Matt")
    await bot.deliver(bob)
    await bot.deliver(matt)
    await bot.settle()

    await bot.deliver(message_event("what's my name?", thread_ts=bob["ts"]))
    await bot.deliver(message_event("what's my name?", thread_ts=matt["ts"]))
    await bot.settle()

    assert texts(fake_slack, bob["ts"])[-1] == "Your name is Bob."
    assert texts(fake_slack, matt["ts"])[-1] == "Your name is Matt."


async def test_the_conversation_survives_a_restart(
    start_slack: BotFactory, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    first = await start_slack(store_path=tmp_path / "kept.sqlite3")
    mention = mention_event("my name is Bob")
    await first.deliver(mention)
    await first.settle()
    await first.close()

    second = await start_slack(store_path=tmp_path / "kept.sqlite3")
    await second.deliver(message_event("what's my name?", thread_ts=mention["ts"]))
    await second.settle()

    assert texts(fake_slack, mention["ts"])[-1] == "Your name is Bob."
    assert fake_slack.connections == 2


async def test_a_direct_message_starts_and_continues_in_its_thread(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = await start_slack()
    first = message_event("my name is Ada", channel=DM, channel_type="im")
    await bot.deliver(first)
    await bot.settle()
    await bot.deliver(
        message_event("what's my name?", channel=DM, channel_type="im", thread_ts=first["ts"])
    )
    await bot.settle()

    assert texts(fake_slack, first["ts"], DM) == [
        "You said: Ada: my name is Ada",
        "Your name is Ada.",
    ]


async def test_two_workspaces_with_the_same_channel_id_stay_apart(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    fake_slack.add_user("U0MATT", "Matt", team_id="T0OTHER")
    bot = await start_slack()
    ts = new_ts()
    await bot.deliver(mention_event("my name is Bob", ts=ts))
    await bot.deliver(
        mention_event("my name is Matt", ts=ts, team="T0OTHER", user="U0MATT"),
        team_id="T0OTHER",
    )
    await bot.settle()
    await bot.deliver(message_event("what's my name?", thread_ts=ts))
    await bot.deliver(
        message_event("what's my name?", thread_ts=ts, team="T0OTHER", user="U0MATT"),
        team_id="T0OTHER",
    )
    await bot.settle()

    ours = await bot.conversation(ts)
    theirs = await bot.conversation(ts, team="T0OTHER")
    assert ours is not None
    assert theirs is not None
    assert ours.id != theirs.id
    ours_texts = [m.text for m in await bot.store.list_messages(conversation_id=ours.id)]
    theirs_texts = [m.text for m in await bot.store.list_messages(conversation_id=theirs.id)]
    assert ours_texts[-1] == "Your name is Bob."
    assert theirs_texts[-1] == "Your name is Matt."


# exactly once ----------------------------------------------------------------------------


async def test_redeliveries_and_the_mention_message_double_answer_once(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    bot = await start_slack()
    root = mention_event("hello")
    await bot.deliver(root)
    await bot.settle()
    ts = new_ts()
    mention = mention_event("my name is Bob", ts=ts, thread_ts=root["ts"])
    same_message = message_event(f"<@{BOT_USER}> my name is Bob", ts=ts, thread_ts=root["ts"])

    await bot.deliver(mention, event_id="Ev0MENTION")
    await bot.deliver(mention, event_id="Ev0MENTION", retry_attempt=1)
    await bot.deliver(same_message, event_id="Ev0MESSAGE")
    await bot.deliver(mention, event_id="Ev0MENTION", retry_attempt=2)
    await bot.settle()

    assert texts(fake_slack, root["ts"]) == [
        "You said: Ada: hello",
        "You said: Ada: my name is Bob",
    ]
    assert len(fake_openai.chat_requests()) == 2
    assert all(envelope.acked_at is not None for envelope in fake_slack.envelopes)


async def test_the_ack_never_waits_for_the_model(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    release = asyncio.Event()

    async def slow(request: RecordedRequest) -> Reply:
        await release.wait()
        return Reply(content=json.dumps({"answer": "done", **_chef_rest()}))

    fake_openai.handle(slow)
    bot = await start_slack()
    mention = mention_event("take your time")

    await bot.deliver(mention)  # acknowledged while the model has not answered
    assert texts(fake_slack, mention["ts"]) == []
    release.set()
    await bot.settle()

    assert texts(fake_slack, mention["ts"]) == ["done"]


# replies ---------------------------------------------------------------------------------


ANSWER = (
    "**Paella** needs rice, saffron & stock; see [the recipe](https://example.com/paella). "
    "Stir once, then leave it alone so the bottom can toast into a proper socarrat."
)


def _chef_rest() -> dict[str, Any]:
    return {"recipes": ["Paella"], "ingredients": ["rice"], "summary": "paella"}


def script_slow_answer(fake_openai: FakeOpenAI, answer: str = ANSWER) -> None:
    body = json.dumps({"answer": answer, **_chef_rest()})
    fake_openai.script(Reply(content=body, chunk_size=6, chunk_delay=0.01))


async def test_replies_stream_with_slacks_streaming_methods(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    script_slow_answer(fake_openai)
    bot = await start_slack(edit_interval=0.05)
    mention = mention_event("paella?")

    await bot.deliver(mention)
    await bot.settle()

    (message,) = fake_slack.thread(CHANNEL, mention["ts"])
    assert message.streamed
    assert not message.streaming, "the stream was stopped"
    assert message.text == ANSWER, "streams carry Markdown: Slack renders it"
    assert fake_slack.calls_to("chat.appendStream"), "the reply grew in several steps"
    assert len(fake_slack.calls_to("chat.stopStream")) == 1
    assert not fake_slack.calls_to("chat.postMessage")
    assert not fake_slack.calls_to("chat.update")


async def test_without_streaming_replies_are_posted_then_edited_about_once_a_second(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    fake_slack.streaming_enabled = False
    script_slow_answer(fake_openai)
    interval = 0.2
    bot = await start_slack(edit_interval=interval)
    mention = mention_event("paella?")

    await bot.deliver(mention)
    await bot.settle()

    (message,) = fake_slack.thread(CHANNEL, mention["ts"])
    assert not message.streamed
    assert message.text == ANSWER, "posted text is Markdown too: it looks like a stream"
    assert message.markdown
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    *edits, footer = fake_slack.calls_to("chat.update")
    assert edits, "the reply was edited as it grew"
    assert "blocks" in footer.args, "then the feedback buttons went under it"
    moments = [call.at for call in [*fake_slack.calls_to("chat.postMessage"), *edits]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(moments)]
    assert all(gap >= interval * 0.8 for gap in gaps[:-1]), gaps  # the last edit is the final one

    second = mention_event("and risotto?")
    await bot.deliver(second)
    await bot.settle()
    assert len(fake_slack.calls_to("chat.startStream")) == 1, "unavailable streaming is remembered"
    assert texts(fake_slack, second["ts"]) == ["You said: Ada: and risotto?"]


async def test_a_stream_failing_midway_falls_back_to_editing(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    script_slow_answer(fake_openai)
    fake_slack.fail("chat.appendStream", "internal_error", times=None)
    bot = await start_slack(edit_interval=0.05)
    mention = mention_event("paella?")

    await bot.deliver(mention)
    await bot.settle()

    (message,) = fake_slack.thread(CHANNEL, mention["ts"])
    assert message.streamed
    assert not message.streaming
    assert message.updates >= 1
    assert message.text == ANSWER, "edited as Markdown, as it was streamed"


@pytest.mark.parametrize("streaming", [True, False])
async def test_long_replies_are_split_below_slacks_limit(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI, streaming: bool
) -> None:
    fake_slack.streaming_enabled = streaming
    words = " ".join(f"word{i}" for i in range(2000))
    fake_openai.script(Reply(content=words, chunk_size=500, chunk_delay=0.01))
    bot = await start_slack(agents=agents_file(plain()))
    mention = mention_event("talk a lot")

    await bot.deliver(mention)
    await bot.settle()

    parts = texts(fake_slack, mention["ts"])
    assert len(parts) >= 4
    assert all(len(part) <= SLACK_TEXT_LIMIT for part in parts)
    assert " ".join(parts).split() == words.split()
    assert not any(message.streaming for message in fake_slack.messages), "every stream stopped"
    assert all(message.streamed == streaming for message in fake_slack.messages)


async def test_a_rate_limited_post_is_retried(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    fake_slack.streaming_enabled = False
    fake_slack.fail("chat.postMessage", "ratelimited", status=429, headers={"Retry-After": "0"})
    bot = await start_slack()
    mention = mention_event("hello")

    await bot.deliver(mention)
    await bot.settle()

    assert len(fake_slack.calls_to("chat.postMessage")) == 2
    assert texts(fake_slack, mention["ts"]) == ["You said: Ada: hello"]


async def test_a_failing_model_gives_one_short_apology(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    fake_openai.handle(lambda request: Reply(status=500, error_message="model exploded"))
    bot = await start_slack()
    mention = mention_event("hello")

    await bot.deliver(mention)
    await bot.settle()

    apology = bot.engine.agents.default.apology
    assert texts(fake_slack, mention["ts"]) == [apology]
    assert "\n" not in apology
    assert "Traceback" not in apology
    assert "exploded" not in apology


async def test_a_busy_engine_keeps_the_message_says_so_once_and_answers_later(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    held = HeldModel()
    fake_openai.handle(held)
    bot = await start_slack(max_pending_turns=1)
    first, second = mention_event("first"), mention_event("second")
    await bot.deliver(first)
    await held.until(1)  # the first message holds the engine's only place
    await bot.deliver(second)

    await fake_slack.wait_for(lambda: texts(fake_slack, second["ts"]) == [QUEUED_LINE])
    held.release()
    await bot.settle()
    assert texts(fake_slack, first["ts"]) == ["You said: Ada: first"]
    assert texts(fake_slack, second["ts"]) == [QUEUED_LINE, "You said: Ada: second"]


async def test_messages_beyond_the_in_flight_limit_are_kept_and_commands_told_to_retry(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    """Turns wait in the journal, whatever the adapter's limit of work in flight; only what
    is not a turn (a command) is refused when the adapter is full."""
    held = HeldModel()
    fake_openai.handle(held)
    bot = await start_slack(max_in_flight=1)
    root = mention_event("hello")
    await bot.deliver(root)
    await held.until(1)
    await bot.deliver(mention_event("summary", thread_ts=root["ts"]))  # a command: in flight
    await bot.deliver(mention_event("second thread"))
    await bot.command("list")
    assert (await responses(fake_slack))[-1]["text"] == BUSY_LINE
    held.release()
    await bot.settle()
    assert texts(fake_slack, root["ts"])[0] == "You said: Ada: hello"


async def test_a_message_the_store_cannot_take_is_not_acknowledged(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    """Slack keeps an unacknowledged event and sends it again: its retries are the buffer
    while the store is down. The retry is answered once the store is back."""
    bot = await start_slack()
    root = mention_event("hello")
    await bot.deliver(root)
    await bot.settle()
    await bot.store.close()  # the store goes away

    again = mention_event("are you there?", thread_ts=root["ts"])
    refused = await fake_slack.send_event(again, event_id="Ev0RETRY")
    with pytest.raises(TimeoutError):
        await fake_slack.wait_ack(refused, within=1.0)
    assert texts(fake_slack, root["ts"]) == ["You said: Ada: hello"], "nothing said, nothing lost"

    await bot.store.open()  # back
    await bot.deliver(again, event_id="Ev0RETRY", retry_attempt=1)
    await bot.settle()
    assert texts(fake_slack, root["ts"]) == [
        "You said: Ada: hello",
        "You said: Ada: are you there?",
    ]
    assert len(fake_openai.chat_requests()) == 2


# what the bot ignores ----------------------------------------------------------------------


async def test_messages_the_bot_cannot_use_are_ignored_and_acknowledged(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    bot = await start_slack()
    root = mention_event("hello")
    await bot.deliver(root)
    await bot.settle()
    calls_before = len(fake_slack.calls)
    in_thread = {"thread_ts": root["ts"]}

    own = message_event("my own reply", user=BOT_USER, bot_id=BOT_ID, **in_thread)
    await bot.acked(await fake_slack.send_event(own), reaches_listener=False)  # Bolt drops it
    for event in (
        message_event("beep", bot_id="B0OTHER", subtype="bot_message", **in_thread),
        message_event("beep", bot_id="B0OTHER", user="U0OTHERBOT", **in_thread),
        message_event("", subtype="message_changed", message={"text": "edited"}, **in_thread),
        message_event("", subtype="message_deleted", deleted_ts=root["ts"], **in_thread),
        message_event("<@U0ADA> has joined the channel", subtype="channel_join"),
        message_event("hi", channel=DM, channel_type="im", subtype="message_changed"),
    ):
        await bot.deliver(event)
    await bot.settle()

    assert len(fake_slack.calls) == calls_before, "no Slack call, no model call"
    assert len(fake_openai.chat_requests()) == 1


async def test_allowed_bots_are_answered(start_slack: BotFactory, fake_slack: FakeSlack) -> None:
    bot = await start_slack(allowed_bot_ids=frozenset({"B0FRIEND"}))
    event = message_event(
        "ping", bot_id="B0FRIEND", user="U0FRIENDBOT", channel=DM, channel_type="im"
    )
    await bot.deliver(event)
    await bot.settle()
    assert texts(fake_slack, event["ts"], DM) == ["You said: U0FRIENDBOT: ping"]


async def test_a_message_with_only_files_gets_a_note(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    bot = await start_slack()
    event = message_event(
        "",
        channel=DM,
        channel_type="im",
        subtype="file_share",
        files=[{"id": "F0PHOTO", "name": "paella.jpg", "mimetype": "image/jpeg"}],
    )
    await bot.deliver(event)
    await bot.settle()

    assert texts(fake_slack, event["ts"], DM) == [FILES_NOTE]
    assert FILES_NOTE.startswith("I can only read text for now")
    assert not fake_openai.chat_requests()


async def test_a_bare_mention_opens_with_the_agents_first_message(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = await start_slack()
    mention = mention_event("")
    await bot.deliver(mention)
    await bot.settle()

    first = bot.engine.agents.default.first_message
    assert texts(fake_slack, mention["ts"]) == [first]
    conversation = await bot.conversation(mention["ts"])
    assert conversation is not None
    assert conversation.message_count == 1


async def test_mentions_of_people_reach_the_model_as_names(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    bot = await start_slack()
    mention = mention_event("cook for <@U0OLU> &amp; <@U0NOBODY> in <#C0KITCHEN|kitchen>")
    await bot.deliver(mention)
    await bot.settle()

    last = fake_openai.chat_requests()[-1].messages[-1]["content"]
    assert last == "Ada: cook for @Olu & @U0NOBODY in #kitchen"


# lifecycle ---------------------------------------------------------------------------------


async def test_start_refuses_bad_tokens_clearly(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    wrong_bot, wrong_app = "xoxb-wrong-bot-token", "xapp-1-wrong-app-token"
    with pytest.raises(SlackStartError, match=r"SLACK_BOT_TOKEN \(invalid_auth\)") as bad_bot:
        await start_slack(bot_token=wrong_bot)
    with pytest.raises(SlackStartError, match=r"SLACK_APP_TOKEN \(invalid_auth\)") as bad_app:
        await start_slack(app_token=wrong_app)
    assert fake_slack.connections == 0
    for error in (bad_bot.value, bad_app.value):
        assert wrong_bot not in str(error)
        assert wrong_app not in str(error)


async def test_the_adapter_never_shows_its_tokens(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = await start_slack()
    shown = repr(bot.adapter) + str(bot.adapter)
    assert fake_slack.bot_token not in shown
    assert fake_slack.app_token not in shown
    assert "mode='socket'" in shown
    assert fake_slack.api_url in shown


async def test_running_the_adapter_leaves_other_loggers_alone(start_slack: BotFactory) -> None:
    levels = {name: logging.getLogger(name).level for name in ("parley", "adapters", "bot")}
    bot = await start_slack()
    await bot.deliver(mention_event("hello"))
    await bot.settle()
    assert {name: logging.getLogger(name).level for name in levels} == levels
