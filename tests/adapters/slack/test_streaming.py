"""Replies in Slack under pressure (issue #14), end to end: the real adapter, Bolt and slack_sdk
against the fake Slack, the fake model streaming slowly.

* All replies in a channel share one budget of calls: rates are read from the fake's recorded
  call times, never by sleeping.
* A reply that could not be streamed to the end (429s past slack_sdk's own retries, edits
  refused) is shown in full from the stored text, never left truncated beside an error line.
* Native streaming that fails in one workspace stays on in the others; its gate backs off.

The budgets here are Slack's (three calls, one a second) sped up, so that ten replies take
seconds; :mod:`tests.adapters.test_channel_budget` holds the published limits themselves.
"""

from __future__ import annotations

import asyncio
import re

import pytest

from adapters.base import FAILURE_LINE
from adapters.channel_budget import ChannelLimit
from adapters.slack.reply import StreamGate
from adapters.streaming import FINAL_RETRY_DELAYS
from tests.support.agents import agents_file, plain
from tests.support.fake_openai import (
    FakeOpenAI,
    answer_for,
    slow_model,
)
from tests.support.fake_slack import TEAM, ApiCall, FakeSlack, mention_event
from tests.support.slack_bot import CHANNEL, Bot, BotFactory, texts
from tests.support.waiting import eventually

LIMIT = ChannelLimit(calls=3, per=0.5)
"""Slack's three calls in any three seconds, six times faster."""
REPLY_METHODS = frozenset(
    {
        "chat.postMessage",
        "chat.update",
        "chat.delete",
        "chat.startStream",
        "chat.appendStream",
        "chat.stopStream",
    }
)


def channel_calls(fake: FakeSlack, channel: str = CHANNEL) -> list[ApiCall]:
    return [
        call
        for call in fake.calls
        if call.method in REPLY_METHODS and call.args.get("channel") == channel
    ]


def most_in_any_window(calls: list[ApiCall], window: float) -> int:
    moments = sorted(call.at for call in calls)
    return max(
        (
            sum(1 for later in moments[i:] if later - start < window)
            for i, start in enumerate(moments)
        ),
        default=0,
    )


async def stored_reply(bot: Bot, thread: str) -> str:
    conversation = await bot.conversation(thread)
    assert conversation is not None
    messages = await bot.store.list_messages(conversation_id=conversation.id)
    assert messages[-1].role == "assistant"
    return messages[-1].text


def every_text(fake: FakeSlack) -> list[str]:
    return [message.text for message in fake.messages if not message.deleted]


# one budget per channel ------------------------------------------------------------------


@pytest.mark.parametrize("streaming", [True, False], ids=["streamed", "posted and edited"])
async def test_ten_concurrent_replies_in_one_channel_stay_within_its_budget(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI, streaming: bool
) -> None:
    fake_slack.streaming_enabled = streaming
    slow_model(fake_openai)
    bot = await start_slack(agents=agents_file(plain()), edit_interval=0.05, channel_limit=LIMIT)
    mentions = [mention_event(f"tell me about topic{n}") for n in range(10)]

    for mention in mentions:
        await bot.deliver(mention)
    await bot.settle()

    calls = channel_calls(fake_slack)
    assert most_in_any_window(calls, LIMIT.per) <= LIMIT.calls, [c.at for c in calls]
    for n, mention in enumerate(mentions):
        stored = await stored_reply(bot, mention["ts"])
        assert stored == answer_for(f"topic{n}")
        assert texts(fake_slack, mention["ts"]) == [stored], "every reply ends complete"
    assert FAILURE_LINE not in every_text(fake_slack)
    assert not any(message.streaming for message in fake_slack.messages), "every stream stopped"
    updates = [c for c in calls if c.method in {"chat.update", "chat.appendStream"}]
    assert len(updates) < 10 * 10, "ten replies shared the budget: few intermediate updates each"


# shown in full or told -------------------------------------------------------------------


async def test_a_reply_rate_limited_past_slack_sdks_retries_is_shown_in_full(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    """slack_sdk retries a 429 three times; the fourth made the person see a truncated reply
    and "Something went wrong" although the reply was stored."""
    fake_slack.streaming_enabled = False
    slow_model(fake_openai, chunk_delay=0.03)
    fake_slack.fail("chat.update", "ratelimited", status=429, headers={"Retry-After": "1"}, times=4)
    bot = await start_slack(agents=agents_file(plain()), edit_interval=0.05, channel_limit=LIMIT)
    mention = mention_event("tell me about topic7")

    await bot.deliver(mention)
    await bot.settle()

    stored = await stored_reply(bot, mention["ts"])
    assert texts(fake_slack, mention["ts"]) == [stored]
    assert FAILURE_LINE not in every_text(fake_slack)
    calls = channel_calls(fake_slack)
    limited = fake_slack.calls_to("chat.update")[:4]
    for refused in limited:
        after = [call.at - refused.at for call in calls if call.at > refused.at]
        assert all(gap >= 1.0 for gap in after), "nothing went to the channel before Retry-After"
    assert len(fake_slack.calls_to("chat.update")) >= 5, "the complete reply came after them"


async def test_a_reply_whose_edits_are_refused_is_posted_afresh_in_full(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    fake_slack.streaming_enabled = False
    slow_model(fake_openai)
    fake_slack.fail("chat.update", "cant_update_message", times=None)
    bot = await start_slack(agents=agents_file(plain()), edit_interval=0.05)
    mention = mention_event("tell me about topic3")

    await bot.deliver(mention)
    await bot.settle()

    stored = await stored_reply(bot, mention["ts"])
    assert texts(fake_slack, mention["ts"]) == [stored], "the truncated message was removed"
    assert FAILURE_LINE not in every_text(fake_slack)
    assert len(fake_slack.calls_to("chat.postMessage")) == 2
    assert len(fake_slack.calls_to("chat.delete")) == 1


async def test_a_reply_slack_refuses_for_a_while_is_shown_in_full_when_it_accepts_again(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    """Even the complete reply's own retries run out: the journal keeps the reply stored and
    unshown, and shows it in full once Slack takes posts again; no error line."""
    fake_slack.streaming_enabled = False
    slow_model(fake_openai, chunk_delay=0.0)
    attempts = 1 + len(FINAL_RETRY_DELAYS) + 1  # the first post, then the complete reply's
    fake_slack.fail(
        "chat.postMessage", "ratelimited", status=429, headers={"Retry-After": "0"}, times=attempts
    )
    bot = await start_slack(agents=agents_file(plain()), edit_interval=0.05)
    mention = mention_event("tell me about topic5")

    await bot.deliver(mention)
    await bot.settle()

    assert texts(fake_slack, mention["ts"]) == [answer_for("topic5")]
    assert FAILURE_LINE not in every_text(fake_slack)
    assert await stored_reply(bot, mention["ts"]) == answer_for("topic5")


# the streaming gate, per workspace -------------------------------------------------------


async def test_a_streaming_failure_in_one_workspace_leaves_streaming_on_in_another(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    fake_slack.add_user("U0MATT", "Matt", team_id="T0OTHER")
    slow_model(fake_openai, chunk_delay=0.0)
    fake_slack.fail("chat.startStream", "missing_scope")
    bot = await start_slack(agents=agents_file(plain()))
    ours = mention_event("tell me about topic1")
    theirs = mention_event("tell me about topic2", team="T0OTHER", user="U0MATT")
    ours_again = mention_event("tell me about topic3")

    await bot.deliver(ours)
    await bot.settle()
    await bot.deliver(theirs, team_id="T0OTHER")
    await bot.settle()
    await bot.deliver(ours_again)
    await bot.settle()

    starts = fake_slack.calls_to("chat.startStream")
    assert [call.args["recipient_team_id"] for call in starts] == [TEAM, "T0OTHER"]
    (theirs_shown,) = fake_slack.thread(CHANNEL, theirs["ts"])
    assert theirs_shown.streamed, "the other workspace still streams"
    for mention in (ours, ours_again):
        (shown,) = fake_slack.thread(CHANNEL, mention["ts"])
        assert not shown.streamed
        assert shown.text == answer_for(re.findall(r"topic\d", mention["text"])[0])


def test_the_gate_backs_off_per_workspace_doubling_up_to_the_cooldown() -> None:
    now = [0.0]
    gate = StreamGate(cooldown=900.0, clock=lambda: now[0])
    waits = []
    for _ in range(6):
        gate.failed("internal_error", "T1")
        waits.append(gate.closed_for("T1"))
        assert gate.available("T2"), "other workspaces stream on"
        now[0] += waits[-1]
        assert gate.available("T1")
    assert waits == [60.0, 120.0, 240.0, 480.0, 900.0, 900.0]


def test_a_failure_while_closed_does_not_lengthen_it_and_a_stream_that_works_resets_it() -> None:
    now = [0.0]
    gate = StreamGate(cooldown=900.0, clock=lambda: now[0])
    gate.failed("internal_error", "T1")
    now[0] += 30
    gate.failed("internal_error", "T1")  # a stream that had started before the closure
    assert gate.closed_for("T1") == 30.0
    now[0] += 30
    gate.failed("internal_error", "T1")
    assert gate.closed_for("T1") == 120.0
    gate.succeeded("T1")
    assert gate.closed_for("T1") == 120.0, "an older stream's success does not reopen it"
    now[0] += 120
    gate.succeeded("T1")
    gate.failed("internal_error", "T1")
    assert gate.closed_for("T1") == 60.0, "reset by the stream that worked"


def test_the_gates_table_is_bounded() -> None:
    gate = StreamGate(capacity=2, clock=lambda: 0.0)
    for team in ("T1", "T2", "T3"):
        gate.failed("internal_error", team)
    assert gate.available("T1"), "the least recently used workspace was forgotten"
    assert not gate.available("T3")


# a reply cut by a stop ---------------------------------------------------------------------


async def test_a_reply_cut_by_a_stop_is_replaced_by_the_next_run_not_shown_twice(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    """The reply's first message is recorded as soon as it is posted; a stop without grace
    cuts the reply, and the next run deletes the cut message before showing the whole."""
    slow_model(fake_openai, chunk_delay=0.1)
    first = await start_slack(agents=agents_file(plain()), stop_grace=0.0)
    mention = mention_event("topic1 please")
    await first.deliver(mention)
    started = await fake_slack.wait_for(lambda: fake_slack.thread(CHANNEL, mention["ts"]))
    entry_id = f"slack:{TEAM}:{CHANNEL}:{mention['ts']}"

    async def recorded() -> bool:
        entry = await first.store.journal_get(entry_id=entry_id)
        return entry is not None and entry.shown_ref == started[0].ts

    await eventually(recorded)
    await first.close()
    assert texts(fake_slack, mention["ts"]) != [answer_for("topic1")], "cut"

    slow_model(fake_openai, chunk_delay=0.0)
    await start_slack(agents=agents_file(plain()))
    whole = [answer_for("topic1")]
    await fake_slack.wait_for(
        lambda: (
            texts(fake_slack, mention["ts"]) == whole
            and not any(m.streaming for m in fake_slack.thread(CHANNEL, mention["ts"]))
        )
    )
    assert started[0].deleted, "the cut message is gone"


async def test_a_reply_posted_but_never_recorded_is_found_and_replaced_by_the_next_run(
    start_slack: BotFactory, fake_slack: FakeSlack, fake_openai: FakeOpenAI
) -> None:
    """The process stops after Slack made the reply's first message but before it heard
    where: nothing records the cut message. The next run reads the thread back and deletes
    what the bot posted there after the attempt began, before showing the reply once."""
    slow_model(fake_openai, chunk_delay=0.1)
    first = await start_slack(agents=agents_file(plain()), stop_grace=0.0)
    answer = asyncio.Event()
    fake_slack.held_answers["chat.startStream"] = answer
    fake_slack.held_answers["chat.postMessage"] = answer
    mention = mention_event("topic1 please")
    await first.deliver(mention)
    (cut,) = await fake_slack.wait_for(lambda: fake_slack.thread(CHANNEL, mention["ts"]))
    entry_id = f"slack:{TEAM}:{CHANNEL}:{mention['ts']}"
    entry = await first.store.journal_get(entry_id=entry_id)
    assert entry is not None
    await first.close()
    assert (entry.state, entry.shown_ref) == ("received", None), "recorded nowhere"
    fake_slack.held_answers.clear()
    answer.set()

    slow_model(fake_openai, chunk_delay=0.0)
    await start_slack(agents=agents_file(plain()))
    whole = [answer_for("topic1")]
    await fake_slack.wait_for(
        lambda: (
            texts(fake_slack, mention["ts"]) == whole
            and not any(m.streaming for m in fake_slack.thread(CHANNEL, mention["ts"]))
        )
    )
    assert cut.deleted, "the cut message is gone"
    assert fake_slack.calls_to("conversations.replies"), "read back once, on the retry"
