"""The Slack adapter's pure parts: the /agent parser, what messages are usable, the stream
gate, the bounded cache, the Block Kit messages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.slack.blocks import (
    FEEDBACK,
    FORGET_CANCEL,
    FORGET_CONFIRM,
    feedback_blocks,
    forget_blocks,
    goal_check_blocks,
)
from adapters.slack.commands import thread_command
from adapters.slack.format import safe_plain_text
from adapters.slack.payloads import (
    BotIdentity,
    FeedbackClick,
    Ignored,
    SlackMessage,
    parse_feedback,
    parse_message,
    parse_stop,
)
from adapters.slack.reply import StreamGate
from bot.commands import Pending
from memory.base import GoalCheck
from tests.support.fake_slack import (
    BOT_ID,
    BOT_USER,
    TEAM,
    BotMessage,
    agent_session_stopped,
    block_actions,
    event_callback,
    feedback_click,
    mention_event,
    message_event,
)

BOT = BotIdentity(user_id=BOT_USER, bot_id=BOT_ID, team_id=TEAM)


def test_thread_commands_are_the_word_alone() -> None:
    assert thread_command(" Summary! ") == "summary"
    assert thread_command("forget") == "forget"
    assert thread_command("summary of the recipe please") is None
    assert thread_command("list") is None


def parsed(event: dict[str, object], **options: object) -> SlackMessage | Ignored:
    return parse_message(event_callback(dict(event)), BOT, **options)  # type: ignore[arg-type]


def test_a_mention_is_usable_and_loses_the_mention() -> None:
    message = parsed(mention_event("my name is Bob", ts="1.1"))
    assert isinstance(message, SlackMessage)
    assert message.text == "my name is Bob"
    assert message.mentions_bot
    assert message.thread == "1.1"
    assert message.key.canonical == f"slack\x1f{TEAM}\x1fC0KITCHEN\x1f1.1"
    assert message.channel_type == "channel"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"subtype": "message_changed"}, "subtype message_changed"),
        ({"subtype": "message_deleted"}, "subtype message_deleted"),
        ({"subtype": "channel_join"}, "subtype channel_join"),
        ({"subtype": "bot_message", "bot_id": "B0OTHER"}, "subtype bot_message"),
        ({"bot_id": "B0OTHER"}, "another bot's message"),
        ({"bot_id": BOT_ID, "user": BOT_USER}, "the bot's own message"),
        ({"user": BOT_USER}, "the bot's own message"),
        ({"hidden": True}, "hidden message"),
    ],
)
def test_unusable_messages_say_why(overrides: dict[str, object], reason: str) -> None:
    assert parsed(message_event("hi", **overrides)) == Ignored(reason)


def test_allowed_bots_are_usable() -> None:
    message = parsed(message_event("hi", bot_id="B0FRIEND"), allowed_bots=frozenset({"B0FRIEND"}))
    assert isinstance(message, SlackMessage)


def test_files_and_broadcasts_are_usable() -> None:
    shared = parsed(message_event("", subtype="file_share", files=[{"id": "F1"}]))
    broadcast = parsed(message_event("hi", subtype="thread_broadcast", thread_ts="1.0"))
    assert isinstance(shared, SlackMessage)
    assert shared.has_files
    assert isinstance(broadcast, SlackMessage)
    assert broadcast.thread == "1.0"


def test_stream_gate_closes_for_a_cooldown() -> None:
    now = [100.0]
    gate = StreamGate(cooldown=60, clock=lambda: now[0])
    assert gate.available()
    gate.failed("unknown_method")
    assert not gate.available()
    now[0] += 59
    assert not gate.available()
    now[0] += 1
    assert gate.available()


def test_goal_check_blocks() -> None:
    check = GoalCheck(
        id="0" * 32,
        conversation_id="1" * 32,
        agent_id="chef",
        checked_at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
        reached=False,
        summary="Ada likes **rice**.",
        missing=("a final <choice>",),
        covered_seq=3,
    )
    blocks = goal_check_blocks(check, agent_name="Chef")
    assert [block["type"] for block in blocks] == [
        "header",
        "section",
        "markdown",
        "markdown",
        "context",
    ]
    assert blocks[0]["text"]["text"] == "Goal check: Chef"
    assert blocks[1]["text"]["text"] == "*Goal:* ❌ not yet"
    assert blocks[2]["text"] == "Ada likes **rice**.", "Markdown, rendered by Slack"
    assert blocks[3]["text"] == "**Still missing:**\n- a final <choice>"
    assert blocks[4]["elements"][0]["text"] == "Checked 2026-01-02 03:04 UTC"


def test_forget_buttons_carry_the_pending_action() -> None:
    action = Pending("forget", conversation_id="a" * 32, user_id="U0ADA")
    blocks = forget_blocks(
        action.encode(), question="Forget *this*?", confirm="Forget it", cancel="<!here>"
    )
    assert blocks[0] == {"type": "markdown", "text": "Forget *this*?"}
    buttons = blocks[1]["elements"]
    assert [button["action_id"] for button in buttons] == [FORGET_CONFIRM, FORGET_CANCEL]
    assert buttons[0]["text"]["text"] == "Forget it"
    assert buttons[1]["text"]["text"] == safe_plain_text("<!here>") != "<!here>"
    assert Pending.decode(buttons[0]["value"]) == action
    assert Pending.decode("not json") is None
    assert Pending.decode('{"c": 1}') is None
    assert Pending.decode(None) is None


def test_a_feedback_click_names_the_reply_and_the_rating() -> None:
    blocks = feedback_blocks("a" * 32)
    message = BotMessage(channel="D0ADA", ts="2.0", thread_ts="1.0", text="hi", blocks=blocks)
    assert parse_feedback(feedback_click(message, "bad")) == FeedbackClick(
        team=TEAM, channel="D0ADA", user="U0ADA", thread_ts="1.0", reply_id="a" * 32, rating="bad"
    )
    for value in ("meh:" + "a" * 32, "good:", "good", ""):
        click = block_actions(FEEDBACK, value, response_url="")
        assert parse_feedback(click) is None, value  # type: ignore[arg-type]


def test_a_stop_names_its_thread() -> None:
    stop = parse_stop(event_callback(agent_session_stopped(channel="D0ADA", thread_ts="1.0")))
    assert stop is not None
    assert (stop.key.workspace, stop.key.channel, stop.key.thread) == (TEAM, "D0ADA", "1.0")
    assert stop.user == "U0ADA"
    for broken in ({"type": "agent_session_stopped", "channel": "D0ADA"}, {"thread_ts": 1}):
        assert parse_stop(event_callback(broken)) is None  # type: ignore[arg-type]


def test_only_threads_of_direct_messages_are_agent_sessions() -> None:
    bot = BotIdentity(user_id=BOT_USER, bot_id=BOT_ID, team_id=TEAM)
    kinds = {
        "dm thread": message_event("hi", channel="D0ADA", channel_type="im", thread_ts="1.0"),
        "dm": message_event("hi", channel="D0ADA", channel_type="im"),
        "channel thread": message_event("hi", thread_ts="1.0"),
    }
    parsed = {name: parse_message(event_callback(e), bot) for name, e in kinds.items()}
    sessions = {n for n, m in parsed.items() if isinstance(m, SlackMessage) and m.in_agent_thread}
    assert sessions == {"dm thread"}
