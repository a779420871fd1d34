"""How Slack renders the ``/agent`` outcomes, end to end in Socket Mode against the fake Slack.

What each subcommand does and who may run it is tested once, through the terminal, in
``tests/bot/test_commands.py``; here: ephemeral or in the channel, Block Kit, buttons, uploads,
threads, and who Slack says the caller is."""

from __future__ import annotations

from pathlib import Path

import pytest
from slack_sdk.errors import SlackApiError

from adapters.base import STORE_LINE
from adapters.slack.blocks import FORGET_CANCEL, FORGET_CONFIRM
from bot.commands import GOAL_CHECK_FAILED, no_conversation
from bot.scheduler import GoalCheckPoster
from tests.support.agents import agents_file, plain
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.fake_slack import (
    BOT_USER,
    TEAM,
    FakeSlack,
    mention_event,
    message_event,
    new_ts,
)
from tests.support.slack_bot import ADA, CHANNEL, DM, OLU, BotFactory, responses, texts


async def test_agent_list(start_slack: BotFactory, fake_slack: FakeSlack) -> None:
    bot = await start_slack()
    await bot.command("list")
    await bot.settle()

    (answer,) = await responses(fake_slack)
    assert answer["text"].splitlines()[:3] == [
        "*Agents* (new conversations here talk to *Chef*):",
        "• `chef`: Chef (here, default)",
        "• `plain`: Plain",
    ]
    assert answer.get("response_type", "ephemeral") == "ephemeral"


@pytest.mark.parametrize("text", ["", "help", "dance", "use", "start a b"])
async def test_agent_usage_for_anything_else(
    start_slack: BotFactory, fake_slack: FakeSlack, text: str
) -> None:
    bot = await start_slack()
    envelope = await bot.command(text)
    await bot.settle()

    assert envelope.ack_payload is not None
    assert envelope.ack_payload["text"].startswith("*Usage:* `/agent &lt;subcommand&gt;`")
    assert "• `/agent forget`: delete the conversation" in envelope.ack_payload["text"]
    assert f"<@{BOT_USER}> summary" in envelope.ack_payload["text"]


async def test_agent_use_is_for_admins(start_slack: BotFactory, fake_slack: FakeSlack) -> None:
    bot = await start_slack()

    await bot.command("use plain", user=ADA)
    await bot.settle()
    (refused,) = await responses(fake_slack)
    assert refused["text"].startswith("Only workspace admins and owners")
    assert "response_type" not in refused or refused["response_type"] == "ephemeral"
    agent = await bot.engine.agent_for_channel(platform="slack", workspace=TEAM, channel=CHANNEL)
    assert agent.id == "chef"

    await bot.command("use plain", user=OLU)
    await bot.settle()
    allowed = (await responses(fake_slack, 2))[-1]
    assert allowed["response_type"] == "in_channel"
    assert allowed["text"] == "*Plain* now answers new conversations here (chosen by Olu)."

    mention = mention_event("hello")
    await bot.deliver(mention)
    await bot.settle()
    conversation = await bot.conversation(mention["ts"])
    assert conversation is not None
    assert conversation.agent_id == "plain"
    assert texts(fake_slack, mention["ts"]) == ["You said: Ada: hello"]

    await bot.command("use nobody", user=OLU)
    await bot.settle()
    assert (await responses(fake_slack, 3))[-1]["text"] == (
        "There is no agent `nobody`. Agents: `chef`, `plain`."
    )


async def test_agent_start_opens_a_thread_with_the_first_message(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = await start_slack()
    await bot.command("start plain")
    await bot.settle()

    (opener,) = fake_slack.calls_to("chat.postMessage")
    assert "thread_ts" not in opener.args, "a new top-level message"
    assert opener.args["markdown_text"] == "Hi! How can I help?"
    ts = fake_slack.messages[0].ts
    conversation = await bot.conversation(ts)
    assert conversation is not None
    assert conversation.agent_id == "plain"

    await bot.deliver(message_event("my name is Bob", thread_ts=ts))
    await bot.settle()
    assert texts(fake_slack, ts) == ["Hi! How can I help?", "You said: Ada: my name is Bob"]

    await bot.command("start nobody")
    await bot.settle()
    assert (await responses(fake_slack))[-1]["text"].startswith("There is no agent `nobody`")


async def test_agent_start_where_the_bot_is_not_invited(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    fake_slack.fail("chat.postMessage", "not_in_channel")
    bot = await start_slack()
    await bot.command("start chef")
    await bot.settle()
    assert (await responses(fake_slack))[-1]["text"] == (
        f"I'm not in this channel yet: invite me with `/invite <@{BOT_USER}>`, then try again."
    )


async def test_conversation_subcommands_in_a_channel_explain_the_mention(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = await start_slack()
    await bot.command("summary")
    await bot.settle()
    assert (await responses(fake_slack))[-1]["text"] == (
        "In a channel, do this inside the conversation's thread: mention me with the word "
        f"alone, `<@{BOT_USER}> summary`."
    )


async def test_summary_in_a_thread_posts_the_goal_check(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = await start_slack()
    root = mention_event("I have chosen the paella")
    await bot.deliver(root)
    await bot.settle()

    await bot.deliver(mention_event("summary", thread_ts=root["ts"]))
    await bot.settle()

    posted = fake_slack.calls_to("chat.postMessage")[-1]
    assert posted.args["thread_ts"] == root["ts"]
    assert posted.args["text"].startswith("Goal reached: yes")
    blocks = posted.args["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Goal check: Chef"},
    }
    assert blocks[1]["text"]["text"] == "*Goal:* ✅ reached"
    conversation = await bot.conversation(root["ts"])
    assert conversation is not None
    assert conversation.goal is not None
    assert conversation.goal.reached


async def test_summary_without_a_goal_or_a_conversation(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = await start_slack(agents=agents_file(plain()))
    root = mention_event("hello")
    await bot.deliver(root)
    await bot.settle()
    elsewhere = new_ts()
    await bot.deliver(mention_event("summary", thread_ts=root["ts"]))
    await bot.deliver(mention_event("summary", thread_ts=elsewhere))
    await bot.settle()

    notes = {entry["thread_ts"]: entry["text"] for entry in fake_slack.ephemerals}
    assert notes == {
        root["ts"]: "Plain has no goal to check.",
        elsewhere: no_conversation("summary"),
    }
    assert all(entry["user"] == ADA for entry in fake_slack.ephemerals)


async def test_a_failed_goal_check_is_one_short_private_line(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    bot = await start_slack()
    root = mention_event("hello")
    await bot.deliver(root)
    await bot.settle()
    fake_openai.handle(lambda request: Reply(status=500, error_message="model exploded"))

    await bot.deliver(mention_event("summary", thread_ts=root["ts"]))
    await bot.settle()

    assert [entry["text"] for entry in fake_slack.ephemerals] == [GOAL_CHECK_FAILED]
    assert texts(fake_slack, root["ts"]) == ["You said: Ada: hello"]


async def test_export_uploads_the_conversation_as_markdown(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = await start_slack()
    root = mention_event("my name is Bob")
    await bot.deliver(root)
    await bot.settle()
    await bot.deliver(mention_event("export", thread_ts=root["ts"]))
    await bot.settle()

    (upload,) = fake_slack.uploads.values()
    conversation = await bot.conversation(root["ts"])
    assert conversation is not None
    assert upload.completed
    assert upload.filename == f"conversation-{conversation.id}.md"
    assert upload.channel == CHANNEL
    assert upload.thread_ts == root["ts"]
    markdown = upload.content.decode()
    assert markdown.startswith("# my name is Bob\n")
    assert "You said: Ada: my name is Bob" in markdown


async def test_an_export_slack_refuses_is_one_short_private_line(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    fake_slack.fail("files.getUploadURLExternal", "missing_scope")
    bot = await start_slack()
    root = mention_event("hello")
    await bot.deliver(root)
    await bot.settle()
    await bot.deliver(mention_event("export", thread_ts=root["ts"]))
    await bot.settle()

    assert [entry["text"] for entry in fake_slack.ephemerals] == [
        "I couldn't upload the file (missing_scope)."
    ]


async def test_a_command_that_fails_answers_one_short_line(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = await start_slack()
    await bot.store.close()
    await bot.command("list")
    await bot.settle()
    assert (await responses(fake_slack))[-1]["text"] == STORE_LINE


async def test_forget_asks_first_and_only_the_asker_confirms(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = await start_slack()
    root = mention_event("my name is Bob")
    await bot.deliver(root)
    await bot.settle()
    await bot.deliver(mention_event("forget", thread_ts=root["ts"]))
    await bot.settle()

    (question,) = fake_slack.ephemerals
    assert question["user"] == ADA
    assert question["thread_ts"] == root["ts"]
    button = question["blocks"][1]["elements"][0]
    assert button["action_id"] == FORGET_CONFIRM
    conversation = await bot.conversation(root["ts"])
    assert conversation is not None

    await bot.click(FORGET_CONFIRM, button["value"], user=OLU, thread_ts=root["ts"])
    await bot.settle()
    assert (await responses(fake_slack))[-1][
        "text"
    ] == "Only the person who asked can confirm this."
    assert await bot.store.get_conversation(conversation_id=conversation.id) is not None

    await bot.click(FORGET_CONFIRM, button["value"], user=ADA, thread_ts=root["ts"])
    await bot.settle()
    assert (await responses(fake_slack, 2))[-1]["delete_original"] is True
    assert await bot.store.get_conversation(conversation_id=conversation.id) is None
    assert texts(fake_slack, root["ts"])[-1] == (
        "I have forgotten this conversation and its 2 messages, as Ada asked."
    )

    await bot.click(FORGET_CONFIRM, button["value"], user=ADA, channel="C0ELSEWHERE")
    await bot.settle()
    assert (await responses(fake_slack, 3))[-1]["text"] == "That conversation is already gone."


async def test_reset_in_a_thread_starts_afresh(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = await start_slack()
    root = mention_event("my name is Bob")
    await bot.deliver(root)
    await bot.settle()
    before = await bot.conversation(root["ts"])

    await bot.deliver(mention_event("reset", thread_ts=root["ts"]))
    await bot.settle()
    assert texts(fake_slack, root["ts"])[-1] == (
        "New conversation (the previous one is kept).\n\n"
        "Hello, I am your personal chef. What can I do for you today?"
    )
    after = await bot.conversation(root["ts"])
    assert before is not None
    assert after is not None
    assert after.id != before.id

    await bot.deliver(message_event("what's my name?", thread_ts=root["ts"]))
    await bot.settle()
    assert texts(fake_slack, root["ts"])[-1] == "I don't know your name yet.", (
        "the thread goes on with the new conversation, no mention needed"
    )


async def test_slash_subcommands_in_a_dm_act_on_its_latest_conversation(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = await start_slack()
    dm_options = {"channel": DM, "channel_name": "directmessage"}
    await bot.command("summary", **dm_options)
    await bot.settle()
    assert (await responses(fake_slack))[-1]["text"] == no_conversation("summary")

    first = message_event("I have chosen the paella", channel=DM, channel_type="im")
    await bot.deliver(first)
    await bot.settle()
    await bot.command("summary", **dm_options)
    await bot.settle()
    summary = fake_slack.calls_to("chat.postMessage")[-1]
    assert summary.args["thread_ts"] == first["ts"]
    assert summary.args["text"].startswith("Goal reached: yes")

    await bot.command("reset", **dm_options)
    await bot.settle()
    assert texts(fake_slack, first["ts"], DM)[-1].startswith(
        "New conversation (the previous one is kept).\n\nHello, I am your personal chef."
    )
    fresh = await bot.conversation(first["ts"], channel=DM)
    assert fresh is not None
    assert fresh.message_count == 1


async def test_slash_subcommands_in_a_dm_after_a_restart(
    start_slack: BotFactory, fake_slack: FakeSlack, tmp_path: Path
) -> None:
    first_bot = await start_slack(store_path=tmp_path / "kept.sqlite3")
    first = message_event("my name is Bob", channel=DM, channel_type="im")
    await first_bot.deliver(first)
    await first_bot.settle()
    await first_bot.close()

    bot = await start_slack(store_path=tmp_path / "kept.sqlite3")
    await bot.command("export", channel=DM, channel_name="directmessage")
    await bot.settle()
    (upload,) = fake_slack.uploads.values()
    assert upload.thread_ts == first["ts"]


# scheduled goal checks -----------------------------------------------------------------------


async def test_the_adapter_posts_scheduled_goal_checks(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = await start_slack()
    assert isinstance(bot.adapter, GoalCheckPoster), "the runtime finds it among the adapters"
    root = mention_event("I have chosen the paella")
    await bot.deliver(root)
    await bot.settle()
    conversation = await bot.conversation(root["ts"])
    assert conversation is not None
    check = await bot.engine.check_goal(conversation.id)
    agent = bot.engine.agent_of(conversation)

    await bot.adapter.post_goal_check(conversation, check, agent, channel=None)
    in_thread = fake_slack.calls_to("chat.postMessage")[-1].args
    assert in_thread["channel"] == CHANNEL
    assert in_thread["thread_ts"] == root["ts"]
    assert in_thread["blocks"][1]["text"]["text"] == "*Goal:* ✅ reached"

    await bot.adapter.post_goal_check(conversation, check, agent, channel="C0REPORTS")
    report = fake_slack.calls_to("chat.postMessage")[-1].args
    assert report["channel"] == "C0REPORTS"
    assert "thread_ts" not in report
    assert report["blocks"][-1]["elements"][0]["text"] == (
        f"I have chosen the paella · <#{CHANNEL}> · `{conversation.id}`"
    )
    assert report["text"].startswith("I have chosen the paella: Goal reached: yes")

    fake_slack.fail("chat.postMessage", "channel_not_found")
    with pytest.raises(SlackApiError):  # the scheduler keeps the check and retries
        await bot.adapter.post_goal_check(conversation, check, agent, channel="C0GONE")


async def test_a_report_channel_is_in_the_bots_own_workspace(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    """The scheduler posts a conversation into a report channel only from the same team."""
    bot = await start_slack()
    assert await bot.adapter.channel_workspace(CHANNEL) == TEAM
    assert await bot.adapter.channel_workspace(DM) is None, "a DM is nobody's report channel"


async def test_forget_is_for_the_threads_opener_or_admins(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    bot = await start_slack()
    root = mention_event("my name is Olu", user=OLU)
    await bot.deliver(root)
    await bot.settle()
    await bot.deliver(mention_event("forget", thread_ts=root["ts"], user=ADA))
    await bot.settle()
    (refusal,) = fake_slack.ephemerals
    assert refusal["user"] == ADA
    assert refusal["text"] == (
        "Only workspace admins and owners or the person who started this conversation can "
        "make me forget it."
    )
    assert not refusal.get("blocks")

    mine = mention_event("my name is Ada", user=ADA)
    await bot.deliver(mine)
    await bot.settle()
    await bot.deliver(mention_event("forget", thread_ts=mine["ts"], user=OLU))
    await bot.settle()
    question = fake_slack.ephemerals[-1]
    assert question["user"] == OLU, "an admin may forget anyone's thread, after confirming"
    cancel = question["blocks"][1]["elements"][1]
    assert cancel["action_id"] == FORGET_CANCEL
    assert cancel["text"]["text"] == "Keep it"

    await bot.click(FORGET_CANCEL, cancel["value"], user=OLU, thread_ts=mine["ts"])
    await bot.settle()
    kept = (await responses(fake_slack))[-1]
    assert kept["replace_original"] is True
    assert kept["text"] == "Nothing was deleted."
    assert await bot.conversation(mine["ts"]) is not None


async def test_use_in_a_dm_is_refused_and_names_are_never_control_sequences(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    fake_slack.add_user("U0EVE", "<!here> Eve", admin=True)
    bot = await start_slack()
    await bot.command("use plain", user=OLU, channel=DM, channel_name="directmessage")
    await bot.settle()
    assert (await responses(fake_slack))[-1]["text"] == (
        "Agents are chosen per channel; in direct messages (DMs) I use the default agent."
    )

    await bot.command("use plain", user="U0EVE")
    await bot.settle()
    said = (await responses(fake_slack, 2))[-1]
    assert said["response_type"] == "in_channel"
    assert (
        said["text"] == "*Plain* now answers new conversations here (chosen by &lt;!here&gt; Eve)."
    )
