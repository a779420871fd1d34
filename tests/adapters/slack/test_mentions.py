"""Text from a model or a person never mentions anyone in Slack (issue #13).

Each path the bot writes to Slack is driven end to end (the real adapter, Bolt and slack_sdk
against the fake Slack, the fake model) with every spelling of a mention a prompt injection
could ask for; :func:`tests.support.slack_safety.assert_no_mentions` then reads everything
the fake Slack received. One bot per path keeps the module fast; every spelling gets its own
thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.format import escape
from adapters.slack.reply import StreamGate, ThreadSink
from tests.support.agents import agents_file, plain
from tests.support.fake_openai import (
    GOAL_MARKER,
    SUMMARY_MARKER,
    FakeOpenAI,
    RecordedRequest,
    Reply,
    default_brain,
)
from tests.support.fake_slack import (
    BOT_USER,
    TEAM,
    ApiCall,
    FakeSlack,
    assistant_thread_started,
    mention_event,
    message_event,
    new_ts,
)
from tests.support.slack_bot import ADA, CHANNEL, DM, OLU, BotFactory, responses, texts
from tests.support.slack_safety import assert_no_mentions, mention_problems

SPELLINGS = (
    "[!here](!here)",
    "[x](!channel)",
    "[x](!everyone)",
    "[x](!subteam^S1)",
    "[x](@U123)",
    "[x](#C123)",
    "<!channel>",
    "<!here|here>",
    "<@U123>",
    "<#C123>",
    "<!subteam^S1|@team>",
)
END = "(end)"
"""Closes every scripted reply, so a test sees the whole reply arrived."""
DM_OPTIONS = {"channel": DM, "channel_name": "directmessage"}


def typed(spelling: str) -> str:
    """A message's text when a person types ``spelling``: Slack escapes ``&``, ``<``, ``>``."""
    return escape(spelling)


@dataclass
class Model:
    """The fake model, saying ``spelling`` wherever it writes: goal summaries, what is
    missing and, unless ``in_replies`` is off, replies. Summaries come from the default brain."""

    spelling: str = ""
    in_replies: bool = True

    def __call__(self, request: RecordedRequest) -> Reply:
        system = request.system_text
        if GOAL_MARKER in system:
            goal = {
                "goal_reached": False,
                "summary": f"They asked for {self.spelling} and got it.",
                "missing": [self.spelling, f"a reply to {self.spelling}"],
            }
            return Reply(content=json.dumps(goal))
        if SUMMARY_MARKER in system:
            return default_brain(request)
        said = self.spelling if self.in_replies else "that"
        return Reply(
            content=f"Sure: {said} as asked {said} {END}",
            chunk_size=4,
            chunk_delay=0.003,
        )


@pytest.fixture
def model(fake_openai: FakeOpenAI) -> Model:
    brain = Model()
    fake_openai.handle(brain)
    return brain


def test_the_check_catches_each_spelling() -> None:
    """The assertion this module relies on fails for every spelling, wherever it hides."""
    for spelling in SPELLINGS:
        fake = FakeSlack()
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": _as_mrkdwn(spelling)}}]
        fake.calls += [
            _call("chat.postMessage", text=f"hi {_as_mrkdwn(spelling)}"),
            _call("chat.appendStream", ts="1.1", markdown_text=f"hi {spelling}"),
            _call("chat.update", blocks=json.dumps(blocks)),
        ]
        problems = mention_problems(fake)
        assert len(problems) == 3, (spelling, problems)
    fake = FakeSlack()
    fake.calls += [_call("chat.postMessage", text="hi @here", link_names="true")]
    assert mention_problems(fake)
    fake.calls[:] = [_call("chat.postMessage", text=f"hi <@{BOT_USER}>")]
    assert mention_problems(fake)
    assert not mention_problems(fake, allowed={f"<@{BOT_USER}>"})


# replies -----------------------------------------------------------------------------------


@pytest.mark.parametrize("way", ["streamed", "posted and edited", "stream failing midway"])
async def test_replies_never_mention(
    start_slack: BotFactory, fake_slack: FakeSlack, model: Model, way: str
) -> None:
    fake_slack.streaming_enabled = way != "posted and edited"
    if way == "stream failing midway":
        fake_slack.fail("chat.appendStream", "internal_error", times=None)
    bot = await start_slack(agents=agents_file(plain()), stream_cooldown=0.0)

    for spelling in SPELLINGS:
        model.spelling = spelling
        mention = mention_event("answer with the link I asked for")
        await bot.deliver(mention)
        await bot.settle()
        (shown,) = texts(fake_slack, mention["ts"])
        assert shown.endswith(END), (spelling, shown)

    assert_no_mentions(fake_slack)
    streams = len(fake_slack.calls_to("chat.startStream"))
    posts = len(fake_slack.calls_to("chat.postMessage"))
    if way == "streamed":
        assert (streams, posts) == (len(SPELLINGS), 0)
        assert fake_slack.calls_to("chat.appendStream"), "replies grew in pieces"
    elif way == "posted and edited":
        assert posts == len(SPELLINGS)
        assert fake_slack.calls_to("chat.update"), "replies were edited as they grew"
    else:
        assert all(message.streamed and message.updates for message in fake_slack.messages)


SPLIT = "a <!channel> [x](!here) &lt;@U123&gt; <#C123|x> @here b"


async def test_a_stream_never_joins_pieces_into_a_mention(fake_slack: FakeSlack) -> None:
    """Each piece may look harmless alone; what Slack shows once they are joined must be too,
    wherever the reply was cut when the stream started."""
    client = AsyncWebClient(token=fake_slack.bot_token, base_url=fake_slack.api_url)
    for cut in range(1, len(SPLIT)):
        sink = ThreadSink(
            client, channel=CHANNEL, thread_ts=new_ts(), team=TEAM, user=ADA, gate=StreamGate()
        )
        part = await sink.send(SPLIT[:cut])
        await sink.edit(part, SPLIT)
        await sink.finish()
    streamed = [message for message in fake_slack.messages if not message.updates]
    assert len(streamed) > len(SPLIT) / 2, "most cuts streamed to the end"
    assert_no_mentions(fake_slack)


# goal checks -------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["thread", "direct message", "report channel"])
async def test_goal_checks_never_mention(
    start_slack: BotFactory, fake_slack: FakeSlack, model: Model, where: str
) -> None:
    """The model writes the summary and what is missing; the person's first words are the
    conversation's title, shown with checks posted to a report channel."""
    bot = await start_slack(agents=agents_file(plain(goal="The person chose a recipe.")))

    model.in_replies = False  # only the path under test says it
    for spelling in SPELLINGS:
        model.spelling = spelling
        before = len(fake_slack.calls_to("chat.postMessage"))
        if where == "direct message":
            first = message_event(typed(spelling), channel=DM, channel_type="im")
            await bot.deliver(first)
            await bot.settle()
            await bot.command("summary", **DM_OPTIONS)
        else:
            first = mention_event(typed(spelling))
            await bot.deliver(first)
            await bot.settle()
            if where == "thread":
                await bot.deliver(mention_event("summary", thread_ts=first["ts"]))
            else:
                conversation = await bot.conversation(first["ts"])
                assert conversation is not None
                check = await bot.engine.check_goal(conversation.id)
                agent = bot.engine.agent_of(conversation)
                await bot.adapter.post_goal_check(conversation, check, agent, channel="C0REPORTS")
        await bot.settle()
        posted = fake_slack.calls_to("chat.postMessage")[before:]
        assert any("blocks" in call.args for call in posted), (spelling, where)

    # the report names the conversation's channel, a mention the product builds from its id
    assert_no_mentions(fake_slack, allowed={f"<#{CHANNEL}>"})


# titles ------------------------------------------------------------------------------------


async def test_agent_session_titles_never_mention(
    start_slack: BotFactory, fake_slack: FakeSlack, model: Model
) -> None:
    bot = await start_slack(agents=agents_file(plain()))

    model.in_replies = False  # only the path under test says it
    for spelling in SPELLINGS:
        model.spelling = spelling
        started = assistant_thread_started(channel=DM)
        thread = started["assistant_thread"]["thread_ts"]
        await bot.deliver(started)
        await bot.deliver(
            message_event(typed(spelling), channel=DM, channel_type="im", thread_ts=thread)
        )
        await bot.settle()

    titles = [call.args["title"] for call in fake_slack.calls_to("agents.sessions.rename")]
    assert len(titles) == len(SPELLINGS)
    assert_no_mentions(fake_slack)


async def test_exported_files_titles_never_mention(
    start_slack: BotFactory, fake_slack: FakeSlack, model: Model
) -> None:
    bot = await start_slack(agents=agents_file(plain()))

    model.in_replies = False  # only the path under test says it
    for spelling in SPELLINGS:
        model.spelling = spelling
        root = mention_event(typed(spelling))
        await bot.deliver(root)
        await bot.settle()
        await bot.deliver(mention_event("export", thread_ts=root["ts"]))
        await bot.settle()

    assert len([upload for upload in fake_slack.uploads.values() if upload.completed]) == len(
        SPELLINGS
    )
    assert_no_mentions(fake_slack)


# /agent --------------------------------------------------------------------------------------


async def test_agent_commands_never_echo_a_mention(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    """An unknown agent id is echoed back to the person; so is any text, as the usage."""
    bot = await start_slack()

    for spelling in SPELLINGS:
        await bot.command(f"start {spelling}")
        await bot.command(f"use {spelling}", user=OLU)
        await bot.command(f"{spelling} please")
    await bot.settle()

    answers = await responses(fake_slack, 2 * len(SPELLINGS))
    assert all(answer["text"].startswith("There is no agent") for answer in answers)
    # the usage names the bot: a mention the product builds from its id
    assert_no_mentions(fake_slack, allowed={f"<@{BOT_USER}>"})


async def test_agent_names_never_mention(
    start_slack: BotFactory, fake_slack: FakeSlack, model: Model
) -> None:
    """Agents stored through the API are named by people: the list, a goal check's header and
    the assistant's prompts show the name."""
    names = [
        plain(id=f"agent{index}", name=f"Agent {spelling}")
        for index, spelling in enumerate(SPELLINGS)
    ]
    named = agents_file(
        *names, plain(id="chef", name="Chef <!here>", goal="A recipe."), default="chef"
    )
    bot = await start_slack(agents=named)
    model.in_replies = False  # only the names say it

    await bot.command("list")
    await bot.deliver(assistant_thread_started(channel=DM))
    root = mention_event("hello")
    await bot.deliver(root)
    await bot.settle()
    await bot.deliver(mention_event("summary", thread_ts=root["ts"]))
    await bot.settle()

    (listing,) = await responses(fake_slack)
    assert listing["text"].count("\n•") == len(SPELLINGS) + 1
    assert fake_slack.calls_to("assistant.threads.setSuggestedPrompts")
    assert fake_slack.calls_to("chat.postMessage")[-1].args["blocks"][0]["type"] == "header"
    assert_no_mentions(fake_slack)


# helpers -----------------------------------------------------------------------------------


def _as_mrkdwn(spelling: str) -> str:
    """What the old conversion made of a spelling: Markdown links became ``<target|label>``."""
    if spelling.startswith("["):
        label, target = spelling[1:-1].split("](")
        return f"<{target}|{label}>"
    return spelling


def _call(method: str, **args: object) -> ApiCall:
    return ApiCall(method=method, args=dict(args), token=None, at=0.0)
