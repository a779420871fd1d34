"""The Discord adapter answering messages, end to end: the unmodified discord.py client against
the fake Discord (REST and gateway) and the fake OpenAI server, a real engine and store.

A message that must go unanswered is followed by a sentinel in the same channel. Messages are
handled in the order they arrive and the turns of one channel run in order, so an answer to the
earlier message would have been posted before the sentinel's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.base import BUSY_LINE
from adapters.discord.commands import STARTED_BY
from bot.journal import CATCHING_UP_LINE, QUEUED_LINE
from config.agents import DEFAULT_APOLOGY
from tests.support.discord_bot import (
    ADA,
    ADA_DM,
    BOB,
    CHEF_ROOM,
    GARDEN,
    GARDEN_CHEF,
    KITCHEN,
    LOUNGE,
    OTHER_BOT,
    PLAIN_ROOM,
    BotFactory,
    DiscordBot,
    answer,
    answered,
)
from tests.support.fake_discord import FakeDiscord
from tests.support.fake_openai import FakeOpenAI, HeldModel, Reply
from tests.support.waiting import eventually


async def only_sentinel_answered(
    fake: FakeDiscord, bot: DiscordBot, channel_id: int, *, before: int = 0
) -> None:
    """Mention the bot in the channel, wait for its answer, and check that nothing else was
    answered since the ``before`` messages the bot showed there already."""
    sentinel = await fake.say(channel_id, BOB, f"{bot.mention} sentinel")
    await answered(fake, channel_id, sentinel, "You said: Bob: sentinel")
    posted = fake.calls_to("POST", rf"/channels/{channel_id}/messages")
    assert len(posted) == before + 1, [call.body["content"] for call in posted]
    typing = fake.calls_to("POST", rf"/channels/{channel_id}/typing")
    assert len(typing) == before + 1, "the bot typed only for what it answered"


async def test_a_bound_channel_is_answered_and_remembered_across_a_restart(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot()
    reply = await answer(
        fake_discord,
        CHEF_ROOM,
        ADA,
        "Hi, my name is Bob",
        expect="You said: Ada: Hi, my name is Bob",
    )
    assert reply["channel_id"] == str(CHEF_ROOM)
    post = fake_discord.calls_to("POST", rf"/channels/{CHEF_ROOM}/messages")[0]
    assert post.body["allowed_mentions"] == {"parse": []}, "model text pings nobody"
    assert post.headers["authorization"] == f"Bot {fake_discord.token}"
    typing = fake_discord.calls_to("POST", rf"/channels/{CHEF_ROOM}/typing")
    assert typing, "the typing indicator shows while the model works"
    assert fake_discord.calls.index(typing[0]) < fake_discord.calls.index(post)

    conversation = await bot.conversation(KITCHEN, CHEF_ROOM)
    assert conversation is not None
    assert conversation.agent_id == "chef"
    messages = await bot.store.list_messages(conversation_id=conversation.id)
    assert [(m.role, m.text) for m in messages] == [
        ("user", "Hi, my name is Bob"),
        ("assistant", "You said: Ada: Hi, my name is Bob"),
    ]
    assert messages[0].author_id == str(ADA)
    assert messages[0].author_name == "Ada"
    assert messages[1].data is not None, "the whole structured reply is stored"

    await bot.stop()
    await start_bot()
    await answer(fake_discord, CHEF_ROOM, ADA, "What's my name?", expect="Your name is Bob.")


async def test_separate_channels_keep_separate_memories(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot()
    await answer(
        fake_discord, CHEF_ROOM, ADA, "my name is Bob", expect="You said: Ada: my name is Bob"
    )
    await answer(
        fake_discord, PLAIN_ROOM, ADA, "What's my name?", expect="I don't know your name yet."
    )
    plain = await bot.conversation(KITCHEN, PLAIN_ROOM)
    assert plain is not None
    assert plain.agent_id == "plain", "the channel's binding picks the agent"


async def test_two_guilds_never_share_a_conversation(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot()
    await answer(
        fake_discord, CHEF_ROOM, ADA, "my name is Bob", expect="You said: Ada: my name is Bob"
    )
    await answer(
        fake_discord, GARDEN_CHEF, ADA, "What's my name?", expect="I don't know your name yet."
    )
    kitchen = await bot.conversation(KITCHEN, CHEF_ROOM)
    garden = await bot.conversation(GARDEN, GARDEN_CHEF)
    assert kitchen is not None
    assert garden is not None
    assert kitchen.id != garden.id
    assert (kitchen.key.workspace, garden.key.workspace) == (str(KITCHEN), str(GARDEN))


async def test_outside_bound_channels_only_mentions_and_replies_are_answered(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot()
    await fake_discord.say(LOUNGE, ADA, "hello everyone, what's for dinner?")
    await fake_discord.say(LOUNGE, ADA, "@everyone dinner at eight")
    await only_sentinel_answered(fake_discord, bot, LOUNGE)

    mentioned = await answer(
        fake_discord,
        LOUNGE,
        ADA,
        f"{bot.mention} my name is Ada",
        expect="You said: Ada: my name is Ada",  # the mention is stripped
    )
    await answer(  # a reply to the bot, without a mention
        fake_discord,
        LOUNGE,
        ADA,
        "and what's my name?",
        reply_to=int(mentioned["id"]),
        expect="Your name is Ada.",
    )
    conversation = await bot.conversation(KITCHEN, LOUNGE)
    assert conversation is not None
    assert conversation.agent_id == "chef", "unbound channels talk to the default agent"


async def test_a_thread_of_a_bound_channel_is_bound_too(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot()
    thread_id = 811000000000000077
    fake_discord.add_thread(KITCHEN, PLAIN_ROOM, thread_id, "Ada's questions", owner_id=ADA)
    # no THREAD_CREATE: discord.py has not seen the thread, so the adapter looks it up
    await answer(fake_discord, thread_id, ADA, "no mention", expect="You said: Ada: no mention")
    assert fake_discord.calls_to("GET", rf"/channels/{thread_id}")
    conversation = await bot.conversation(KITCHEN, thread_id)
    assert conversation is not None
    assert conversation.agent_id == "plain", "the parent channel's agent"
    assert await bot.conversation(KITCHEN, PLAIN_ROOM) is None, "the thread is its own place"


async def test_other_mentions_read_as_names(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot()
    await answer(
        fake_discord,
        LOUNGE,
        ADA,
        f"<@{BOB}> and I want soup, {bot.mention}",
        expect="You said: Ada: @Bob and I want soup,",
    )


async def test_bots_and_system_messages_are_ignored(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot()
    await fake_discord.say(CHEF_ROOM, OTHER_BOT, "I am a bot, answer me")
    await fake_discord.say(CHEF_ROOM, bot.user_id, "an echo of my own")
    await fake_discord.say(CHEF_ROOM, ADA, "Ada's thread", message_type=18)  # thread created
    await fake_discord.say(CHEF_ROOM, ADA, "", message_type=7)  # member joined
    await fake_discord.say(CHEF_ROOM, ADA, "pinned", message_type=6)  # message pinned
    await only_sentinel_answered(fake_discord, bot, CHEF_ROOM)
    conversation = await bot.conversation(KITCHEN, CHEF_ROOM)
    assert conversation is not None
    assert conversation.message_count == 2, "only the sentinel and its answer"


async def test_direct_messages_are_always_answered(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot()
    await answer(
        fake_discord, ADA_DM, ADA, "my name is Ada", expect="You said: Ada: my name is Ada"
    )
    conversation = await bot.conversation(None, ADA_DM)
    assert conversation is not None
    assert conversation.key.workspace == "dm"


async def test_a_pasted_text_file_is_read_as_the_message(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot()
    paste = fake_discord.add_attachment(
        "message.txt", b"my name is Bob and I love lentils", "text/plain; charset=utf-8"
    )
    await answer(
        fake_discord,
        CHEF_ROOM,
        ADA,
        "",
        attachments=[paste],
        expect="You said: Ada: my name is Bob and I love lentils",
    )
    conversation = await bot.conversation(KITCHEN, CHEF_ROOM)
    assert conversation is not None
    messages = await bot.store.list_messages(conversation_id=conversation.id)
    assert messages[0].text == "my name is Bob and I love lentils"
    assert fake_discord.downloads == ["message.txt"]


async def test_an_image_without_text_gets_a_short_note(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot()
    photo = fake_discord.add_attachment("photo.png", b"\x89PNG\r\n\x1a\n", "image/png")
    note = await answer(fake_discord, CHEF_ROOM, ADA, "", attachments=[photo])
    assert note["content"].startswith("I can only read text, so I can't look at photo.png.")
    assert "\n" not in note["content"]
    assert await bot.conversation(KITCHEN, CHEF_ROOM) is None, "nothing was said to the agent"


async def test_a_text_file_over_the_limit_is_not_read(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    await start_bot()
    big = fake_discord.add_attachment("big.txt", b"x" * 150_000, "text/plain")
    note = await answer(fake_discord, CHEF_ROOM, ADA, "", attachments=[big])
    assert note["content"] == (
        "I couldn't read big.txt (text up to 100 KB). "
        "Tell me about it in words, or paste the part that matters."
    )
    assert fake_discord.downloads == [], "a file over the limit is not even downloaded"


LONG_INTRO = " ".join(f"Step {n}: stir the pot gently and taste." for n in range(1, 36))
LONG_CODE = "\n".join(
    f"    add_ingredient('spice number {n:03d}', grams={n})" for n in range(1, 56)
)
LONG_OUTRO = " ".join(f"Note {n}: serve warm." for n in range(1, 21))
LONG_REPLY = f"{LONG_INTRO}\n\n```python\ndef stew():\n{LONG_CODE}\n```\n\n{LONG_OUTRO}"


async def test_a_long_reply_is_split_into_messages_with_code_blocks_intact(
    start_bot: BotFactory, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    assert 4400 < len(LONG_REPLY) < 4600
    await start_bot()
    fake_openai.script(Reply(content=LONG_REPLY, chunk_size=500))
    await fake_discord.say(PLAIN_ROOM, ADA, "the stew recipe, please")

    def complete() -> list[dict[str, Any]] | None:
        shown = fake_discord.bot_messages(PLAIN_ROOM)
        return shown if shown and shown[-1]["content"].endswith("Note 20: serve warm.") else None

    parts = [m["content"] for m in await fake_discord.wait_for(complete)]
    assert len(parts) == 3
    assert all(len(part) <= 2000 for part in parts)
    for part in parts:
        assert part.count("```") % 2 == 0, f"every message closes its code blocks: {part[-80:]!r}"
    assert parts[1].startswith("```python\n"), "a code block cut in two reopens in its language"
    shown_lines = [
        line for line in "\n".join(parts).split("\n") if line.strip() not in {"```", "```python"}
    ]
    original_lines = [
        line for line in LONG_REPLY.split("\n") if line.strip() not in {"```", "```python"}
    ]
    assert [line for line in shown_lines if line] == [line for line in original_lines if line]


async def test_the_reply_streams_by_editing_one_message(
    start_bot: BotFactory, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    await start_bot()
    text = " ".join(f"word{n}" for n in range(60))
    fake_openai.script(Reply(content=text, chunk_size=12, chunk_delay=0.03))
    await fake_discord.say(PLAIN_ROOM, ADA, "tell me a story")
    shown = await fake_discord.wait_for(
        lambda: [m for m in fake_discord.bot_messages(PLAIN_ROOM) if m["content"] == text]
    )
    message_id = shown[0]["id"]
    posts = fake_discord.calls_to("POST", rf"/channels/{PLAIN_ROOM}/messages")
    edits = fake_discord.calls_to("PATCH", rf"/channels/{PLAIN_ROOM}/messages/{message_id}")
    assert len(posts) == 1, "one message, edited as the reply grows"
    assert edits, "the reply was edited while it streamed"
    versions = [posts[0].body["content"]] + [edit.body["content"] for edit in edits]
    assert versions[-1] == text
    assert all(text.startswith(version) for version in versions)
    assert len(set(versions)) == len(versions), "no edit repeats the text already shown"


async def test_a_failing_model_gets_the_agents_apology(
    start_bot: BotFactory, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    await start_bot()
    fake_openai.script(Reply(status=500, error_message="the model fell over"))
    reply = await answer(fake_discord, CHEF_ROOM, ADA, "hello?", expect=DEFAULT_APOLOGY)
    assert "\n" not in reply["content"]
    assert len(fake_discord.bot_messages(CHEF_ROOM)) == 1


async def test_a_store_outage_is_told_once_and_answered_when_the_store_is_back(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    """Discord never sends a message again: while the store is down the message waits in the
    adapter, the person is told once, and the answer comes when the store is back."""
    bot = await start_bot()
    await bot.store.close()
    message = await fake_discord.say(ADA_DM, ADA, "are you there?")
    await answered(fake_discord, ADA_DM, message, CATCHING_UP_LINE)
    await bot.store.open()

    def both() -> list[str] | None:
        shown = [m["content"] for m in fake_discord.bot_messages(ADA_DM)]
        return shown if len(shown) >= 2 else None

    assert await fake_discord.wait_for(both) == [CATCHING_UP_LINE, "You said: Ada: are you there?"]


async def test_a_redelivered_message_is_answered_once(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot()
    message = await fake_discord.say(CHEF_ROOM, ADA, "only once, please")
    await answered(fake_discord, CHEF_ROOM, message, "You said: Ada: only once, please")
    await fake_discord.redeliver(message)
    await only_sentinel_answered(fake_discord, bot, CHEF_ROOM, before=1)


async def test_a_mention_can_open_a_thread_for_the_conversation(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot(discord_thread_on_mention=True)
    message = await fake_discord.say(LOUNGE, ADA, f"{bot.mention} what should I cook tonight?")
    thread_id = int(message["id"])
    calls = await fake_discord.wait_for_calls(
        "POST", rf"/channels/{LOUNGE}/messages/{thread_id}/threads"
    )
    assert calls[0].body["name"] == "what should I cook tonight?"
    await fake_discord.wait_for(
        lambda: [
            m
            for m in fake_discord.bot_messages(thread_id)
            if m["content"] == "You said: Ada: what should I cook tonight?"
        ]
    )
    assert fake_discord.bot_messages(LOUNGE) == [], "the channel itself stays quiet"

    conversation = await bot.conversation(KITCHEN, thread_id)
    assert conversation is not None
    assert conversation.data[STARTED_BY] == str(ADA)
    assert conversation.title == "what should I cook tonight?"

    await answer(  # in a thread Parley opened, every message is answered
        fake_discord,
        thread_id,
        ADA,
        "something with lentils",
        expect="You said: Ada: something with lentils",
    )


async def test_a_thread_is_not_opened_in_bound_channels_or_when_refused(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot(discord_thread_on_mention=True)
    await answer(fake_discord, CHEF_ROOM, ADA, f"{bot.mention} in the bound channel")
    fake_discord.fail("POST", rf"/channels/{LOUNGE}/messages/\d+/threads")
    await answer(
        fake_discord,
        LOUNGE,
        ADA,
        f"{bot.mention} no threads allowed here",
        expect="You said: Ada: no threads allowed here",
    )
    threads = [c for c in fake_discord.calls if c.path.endswith("/threads")]
    assert [c.status for c in threads] == [403], "one attempt, in the unbound channel only"


async def test_a_full_intake_gives_one_short_line_without_a_traceback(
    start_bot: BotFactory, fake_discord: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    bot = await start_bot(adapter={"max_intake": 0})
    await answer(fake_discord, CHEF_ROOM, ADA, f"{bot.mention} hello", expect=BUSY_LINE)
    refusals = [r for r in caplog.records if r.getMessage().startswith("could not answer")]
    assert len(refusals) == 1
    assert refusals[0].exc_info is None, "a refusal is expected, not a fault to debug"


async def test_a_busy_engine_keeps_the_message_says_so_once_and_answers_later(
    start_bot: BotFactory, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    held = HeldModel()
    fake_openai.handle(held)
    bot = await start_bot(max_pending_turns=1)
    first = await fake_discord.say(CHEF_ROOM, ADA, f"{bot.mention} first")
    await held.until(1)  # the first message holds the engine's only place
    second = await fake_discord.say(GARDEN_CHEF, ADA, f"{bot.mention} second")
    await answered(fake_discord, GARDEN_CHEF, second, QUEUED_LINE)
    held.release()
    await answered(fake_discord, CHEF_ROOM, first, "You said: Ada: first")

    def both() -> list[str] | None:
        shown = [m["content"] for m in fake_discord.bot_messages(GARDEN_CHEF)]
        return shown if len(shown) >= 2 else None

    assert await fake_discord.wait_for(both) == [QUEUED_LINE, "You said: Ada: second"]


async def test_a_reply_cut_by_a_stop_is_replaced_by_the_next_run_not_shown_twice(
    start_bot: BotFactory, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    """The reply's first message is recorded as soon as it is posted; a stop without grace
    cuts the reply, and the next run deletes the cut message before showing the whole."""
    text = " ".join(f"word{n}" for n in range(60))
    fake_openai.script(Reply(content=text, chunk_size=12, chunk_delay=0.1))
    first = await start_bot(adapter={"stop_timeout": 0.0})
    message = await fake_discord.say(PLAIN_ROOM, ADA, "tell me a long story")
    started = await fake_discord.wait_for(lambda: fake_discord.bot_messages(PLAIN_ROOM))

    async def recorded() -> bool:
        entry = await first.store.journal_get(entry_id=f"discord:{message['id']}")
        return entry is not None and entry.shown_ref == started[0]["id"]

    await eventually(recorded)
    await first.stop()
    assert [m["content"] for m in fake_discord.bot_messages(PLAIN_ROOM)] != [text], "cut"

    await start_bot()
    await fake_discord.wait_for(
        lambda: [m["content"] for m in fake_discord.bot_messages(PLAIN_ROOM)] == [text]
    )
    assert int(started[0]["id"]) in fake_discord.deleted, "the cut message is gone"


async def test_a_reply_posted_but_never_recorded_is_found_and_replaced_by_the_next_run(
    start_bot: BotFactory, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    """The process stops after Discord made the reply's first message but before it heard
    where: nothing records the cut message. The next run reads the channel back and deletes
    what the bot posted there after the attempt began, before showing the reply once."""
    text = " ".join(f"word{n}" for n in range(60))
    fake_openai.script(Reply(content=text, chunk_size=12, chunk_delay=0.1))
    first = await start_bot(adapter={"stop_timeout": 0.0})
    answer = asyncio.Event()
    fake_discord.held_answers[r"POST /channels/\d+/messages"] = answer
    message = await fake_discord.say(PLAIN_ROOM, ADA, "tell me a long story")
    (cut,) = await fake_discord.wait_for(lambda: fake_discord.bot_messages(PLAIN_ROOM))
    entry = await first.store.journal_get(entry_id=f"discord:{message['id']}")
    assert entry is not None
    await first.stop()
    assert (entry.state, entry.shown_ref) == ("received", None), "recorded nowhere"
    fake_discord.held_answers.clear()
    answer.set()

    await start_bot()
    await fake_discord.wait_for(
        lambda: [m["content"] for m in fake_discord.bot_messages(PLAIN_ROOM)] == [text]
    )
    assert int(cut["id"]) in fake_discord.deleted, "the cut message is gone"
    assert any(call.matches("GET", r"/channels/\d+/messages") for call in fake_discord.calls)
