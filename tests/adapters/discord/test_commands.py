"""How Discord renders the ``/agent`` outcomes, end to end through INTERACTION_CREATE and
Discord's interaction callbacks, follow-ups, webhooks and buttons.

What each subcommand does and who may run it is tested once, through the terminal, in
``tests/bot/test_commands.py``; here: ephemeral or public, deferred or not, embeds, files,
threads, the confirmation's buttons, and who Discord says the caller is (Manage Server, the
thread's owner, a DM)."""

from __future__ import annotations

from typing import Any

from adapters.base import STORE_LINE
from adapters.discord.commands import STARTED_BY
from bot.scheduler import GoalCheckPoster
from tests.support.discord_bot import (
    ADA,
    ADA_DM,
    ADMIN,
    BOB,
    CHEF_ROOM,
    GARDEN,
    GARDEN_CHEF,
    KITCHEN,
    LOUNGE,
    PLAIN_ROOM,
    BotFactory,
    DiscordBot,
)
from tests.support.fake_discord import (
    EPHEMERAL,
    MANAGE_GUILD,
    MEMBER_PERMISSIONS,
    FakeDiscord,
    InteractionState,
)
from tests.support.fake_openai import FakeOpenAI, Reply

ADMIN_PERMISSIONS = MEMBER_PERMISSIONS | MANAGE_GUILD
GREEN, ORANGE = 0x2ECC71, 0xE67E22


def ephemeral(message: dict[str, Any]) -> bool:
    return bool(int(message.get("flags") or 0) & EPHEMERAL)


async def only_reply(fake: FakeDiscord, interaction: InteractionState) -> dict[str, Any]:
    replies = await fake.wait_for_reply(interaction)
    assert len(replies) == 1, replies
    return replies[0]


async def refused(fake: FakeDiscord, interaction: InteractionState) -> str:
    """The one line a refused command shows: ephemeral, and nothing public left behind."""
    reply = await only_reply(fake, interaction)
    assert ephemeral(reply), reply
    assert "\n" not in reply["content"]
    return str(reply["content"])


async def talk(fake: FakeDiscord, channel_id: int, text: str, expect: str) -> None:
    """Ada says something in a bound channel and waits until the whole answer shows."""
    before = len(fake.bot_messages(channel_id))
    await fake.say(channel_id, ADA, text)
    await fake.wait_for(
        lambda: (
            len(shown := fake.bot_messages(channel_id)) > before and shown[-1]["content"] == expect
        )
    )


async def test_the_commands_are_synced_at_start(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    await start_bot()
    put = fake_discord.calls_to("PUT", rf"/applications/{fake_discord.application_id}/commands")
    assert len(put) == 1, "registered once, globally"
    (group,) = put[0].body
    assert group["name"] == "agent"
    subcommands = {option["name"]: option for option in group["options"]}
    assert set(subcommands) == {
        "list",
        "use",
        "start",
        "reset",
        "summary",
        "export",
        "forget",
        "memory",
        "usage",
    }
    assert all(option["type"] == 1 for option in subcommands.values())
    (agent,) = subcommands["use"]["options"]
    assert agent["name"] == "agent"
    assert agent["required"] is True
    assert agent["autocomplete"] is True


async def test_list_shows_the_agents_and_who_answers_here(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    await start_bot()
    interaction = await fake_discord.slash(PLAIN_ROOM, BOB, "list")
    reply = await only_reply(fake_discord, interaction)
    assert ephemeral(reply)
    assert reply["content"].splitlines()[:3] == [
        "**Agents** (new conversations here talk to **Plain**):",
        "• `chef`: Chef (default)",
        "• `plain`: Plain (here)",
    ]


async def test_use_needs_manage_server(start_bot: BotFactory, fake_discord: FakeDiscord) -> None:
    bot = await start_bot()
    interaction = await fake_discord.slash(LOUNGE, BOB, "use", agent="plain")
    assert "Manage Server" in await refused(fake_discord, interaction)
    stored = await bot.store.channel_agent(
        platform="discord", workspace=str(KITCHEN), channel=str(LOUNGE)
    )
    assert stored is None


async def test_use_binds_the_channel_in_its_guild_only(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot()
    interaction = await fake_discord.slash(
        LOUNGE, ADMIN, "use", permissions=ADMIN_PERMISSIONS, agent="plain"
    )
    reply = await only_reply(fake_discord, interaction)
    assert not ephemeral(reply)
    assert reply["content"] == "**Plain** now answers new conversations here (chosen by Admin)."
    assert (
        await bot.store.channel_agent(
            platform="discord", workspace=str(KITCHEN), channel=str(LOUNGE)
        )
        == "plain"
    )
    assert (
        await bot.store.channel_agent(
            platform="discord", workspace=str(GARDEN), channel=str(LOUNGE)
        )
        is None
    )

    await talk(
        fake_discord, LOUNGE, "no mention needed now", "You said: Ada: no mention needed now"
    )
    conversation = await bot.conversation(KITCHEN, LOUNGE)
    assert conversation is not None
    assert conversation.agent_id == "plain"


async def test_use_switches_an_open_conversation_to_the_new_agent(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot()
    await talk(fake_discord, CHEF_ROOM, "hello chef", "You said: Ada: hello chef")
    before = await bot.conversation(KITCHEN, CHEF_ROOM)
    interaction = await fake_discord.slash(
        CHEF_ROOM, ADMIN, "use", permissions=ADMIN_PERMISSIONS, agent="plain"
    )
    reply = await only_reply(fake_discord, interaction)
    assert not ephemeral(reply)
    assert reply["content"] == (
        "**Plain** now answers new conversations here (chosen by Admin). The conversation with "
        "Chef is closed (and kept).\n\nHi! How can I help?"
    )
    assert before is not None
    after = await bot.conversation(KITCHEN, CHEF_ROOM)
    assert after is not None
    assert after.agent_id == "plain"
    kept = await bot.store.get_conversation(conversation_id=before.id)
    assert kept is not None
    assert kept.closed_at is not None


async def test_use_refuses_unknown_agents_and_dms(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    await start_bot()
    unknown = await fake_discord.slash(
        LOUNGE, ADMIN, "use", permissions=ADMIN_PERMISSIONS, agent="nope"
    )
    assert await refused(fake_discord, unknown) == (
        "There is no agent `nope`. Agents: `chef`, `plain`."
    )
    in_dm = await fake_discord.slash(ADA_DM, ADA, "use", agent="plain")
    assert "DM" in await refused(fake_discord, in_dm)


async def test_agent_names_autocomplete(start_bot: BotFactory, fake_discord: FakeDiscord) -> None:
    await start_bot()
    interaction = await fake_discord.slash(LOUNGE, ADA, "start", focused="agent", agent="pl")
    await fake_discord.wait_for(lambda: interaction.callbacks)
    (callback,) = interaction.callbacks
    assert callback["type"] == 8
    assert callback["data"]["choices"] == [{"name": "Plain (plain)", "value": "plain"}]


async def test_start_opens_a_thread_with_the_agents_first_message(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot()
    interaction = await fake_discord.slash(LOUNGE, ADA, "start", agent="plain")
    reply = await only_reply(fake_discord, interaction)
    assert interaction.callbacks[0]["type"] == 5, "deferred: opening a thread may be slow"
    assert not ephemeral(reply)
    (created,) = fake_discord.calls_to("POST", rf"/channels/{LOUNGE}/threads")
    assert created.body["type"] == 11, "a public thread"
    assert created.body["name"] == "Plain with Ada"
    thread_id = next(
        int(c["id"]) for c in fake_discord.channels.values() if c.get("parent_id") == str(LOUNGE)
    )
    assert reply["content"] == f"Plain is waiting for you in <#{thread_id}>."
    (first,) = await fake_discord.wait_for_bot_messages(thread_id)
    assert first["content"] == "Hi! How can I help?"

    conversation = await bot.conversation(KITCHEN, thread_id)
    assert conversation is not None
    assert conversation.agent_id == "plain"
    assert conversation.data[STARTED_BY] == str(ADA)
    messages = await bot.store.list_messages(conversation_id=conversation.id)
    assert [(m.role, m.text) for m in messages] == [("assistant", "Hi! How can I help?")]

    await talk(fake_discord, thread_id, "hello in the thread", "You said: Ada: hello in the thread")

    in_thread = await fake_discord.slash(thread_id, ADA, "start")
    assert "text channel" in await refused(fake_discord, in_thread)
    in_dm = await fake_discord.slash(ADA_DM, ADA, "start")
    assert "text channel" in await refused(fake_discord, in_dm)


async def test_reset_starts_a_new_conversation(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot()
    nothing = await fake_discord.slash(CHEF_ROOM, ADA, "reset")
    assert await refused(fake_discord, nothing) == "There is no conversation here to reset."

    await talk(fake_discord, CHEF_ROOM, "my name is Bob", "You said: Ada: my name is Bob")
    old = await bot.conversation(KITCHEN, CHEF_ROOM)
    interaction = await fake_discord.slash(CHEF_ROOM, ADA, "reset")
    reply = await only_reply(fake_discord, interaction)
    assert not ephemeral(reply)
    assert reply["content"] == (
        "New conversation (the previous one is kept).\n\n"
        "Hello, I am your personal chef. What can I do for you today?"
    )
    new = await bot.conversation(KITCHEN, CHEF_ROOM)
    assert old is not None
    assert new is not None
    assert new.id != old.id
    await talk(fake_discord, CHEF_ROOM, "What's my name?", "I don't know your name yet.")


async def summary_embed(fake: FakeDiscord, interaction: InteractionState) -> dict[str, Any]:
    reply = await only_reply(fake, interaction)
    assert interaction.callbacks[0]["type"] == 5, "deferred: a goal check calls the model"
    assert not ephemeral(reply)
    (embed,) = reply["embeds"]
    return dict(embed)


async def test_summary_shows_the_goal_check_as_an_embed(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot()
    await talk(fake_discord, CHEF_ROOM, "I like soup", "You said: Ada: I like soup")
    embed = await summary_embed(fake_discord, await fake_discord.slash(CHEF_ROOM, ADA, "summary"))
    assert embed["title"] == "Chef: goal check"
    assert embed["description"] == "The person chose a recipe."
    assert embed["color"] == ORANGE
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields["Goal reached"] == "⏳ not yet"
    assert fields["Summary"] == "Nothing is chosen yet."
    assert fields["Missing"] == "• a final choice"

    await talk(
        fake_discord,
        CHEF_ROOM,
        "I have chosen the paella",
        "You said: Ada: I have chosen the paella",
    )
    embed = await summary_embed(fake_discord, await fake_discord.slash(CHEF_ROOM, ADA, "summary"))
    assert embed["color"] == GREEN
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields["Goal reached"] == "✅ yes"
    assert "Missing" not in fields
    conversation = await bot.conversation(KITCHEN, CHEF_ROOM)
    assert conversation is not None
    assert len(await bot.store.list_goal_checks(conversation_id=conversation.id)) == 2


async def test_summary_refusals_and_failures_are_private(
    start_bot: BotFactory, fake_discord: FakeDiscord, fake_openai: FakeOpenAI
) -> None:
    await start_bot()
    nothing = await fake_discord.slash(CHEF_ROOM, ADA, "summary")
    assert await refused(fake_discord, nothing) == "There is no conversation here to check."

    await talk(fake_discord, PLAIN_ROOM, "hi", "You said: Ada: hi")
    no_goal = await fake_discord.slash(PLAIN_ROOM, ADA, "summary")
    assert await refused(fake_discord, no_goal) == "Plain has no goal to check."

    await talk(fake_discord, CHEF_ROOM, "hello", "You said: Ada: hello")
    fake_openai.script(Reply(status=500, error_message="down"))
    failing = await fake_discord.slash(CHEF_ROOM, ADA, "summary")
    line = await refused(fake_discord, failing)
    assert line == "I couldn't check the goal just now. Please try again in a moment."
    assert failing.callbacks[0]["type"] == 5
    assert failing.original_deleted, "the public 'thinking...' message does not linger"


async def test_export_attaches_the_conversation_as_markdown(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot()
    await talk(fake_discord, CHEF_ROOM, "my name is Bob", "You said: Ada: my name is Bob")
    interaction = await fake_discord.slash(CHEF_ROOM, BOB, "export")
    reply = await only_reply(fake_discord, interaction)
    assert interaction.callbacks[0] == {"type": 5, "data": {"flags": EPHEMERAL}}
    assert ephemeral(reply)
    conversation = await bot.conversation(KITCHEN, CHEF_ROOM)
    assert conversation is not None
    (upload,) = fake_discord.uploads[int(reply["id"])]
    assert upload.filename == f"conversation-{conversation.id}.md"
    markdown = upload.content.decode()
    assert markdown.startswith("# my name is Bob\n")
    assert "You said: Ada: my name is Bob" in markdown
    assert reply["content"] == "This conversation as Markdown (2 messages)."

    elsewhere = await fake_discord.slash(GARDEN_CHEF, BOB, "export")
    assert await refused(fake_discord, elsewhere) == "There is no conversation here to export."


async def answer(
    fake: FakeDiscord,
    question: InteractionState,
    user_id: int,
    label: str,
    *,
    permissions: int = MEMBER_PERMISSIONS,
) -> tuple[dict[str, Any], InteractionState]:
    """The confirmation a command asked (ephemeral, with its buttons), and the click on one."""
    prompt = await only_reply(fake, question)
    assert ephemeral(prompt)
    assert prompt["content"].startswith("Forget this conversation?")
    buttons = prompt["components"][0]["components"]
    assert [(button["label"], button["style"]) for button in buttons] == [
        ("Forget it", 4),
        ("Keep it", 2),
    ]
    click = await fake.click(prompt, user_id, label, permissions=permissions)
    await fake.wait_for(lambda: click.callbacks)
    return prompt, click


async def test_forget_asks_first_with_buttons(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot()
    await talk(fake_discord, CHEF_ROOM, "my name is Bob", "You said: Ada: my name is Bob")
    conversation = await bot.conversation(KITCHEN, CHEF_ROOM)
    assert conversation is not None

    denied = await fake_discord.slash(CHEF_ROOM, ADA, "forget")
    assert "Manage Server" in await refused(fake_discord, denied)

    asked = await fake_discord.slash(CHEF_ROOM, ADMIN, "forget", permissions=ADMIN_PERMISSIONS)
    prompt, kept = await answer(fake_discord, asked, ADMIN, "Keep it")
    assert kept.callbacks[0]["type"] == 7, "the question is replaced by the answer"
    assert fake_discord.messages[int(prompt["id"])]["content"] == "Nothing was deleted."
    assert fake_discord.messages[int(prompt["id"])]["components"] == []
    assert await bot.store.get_conversation(conversation_id=conversation.id) is not None

    asked = await fake_discord.slash(CHEF_ROOM, ADMIN, "forget", permissions=ADMIN_PERMISSIONS)
    prompt, done = await answer(
        fake_discord, asked, ADMIN, "Forget it", permissions=ADMIN_PERMISSIONS
    )
    line = "I have forgotten this conversation and its 2 messages, as Admin asked."
    assert fake_discord.messages[int(prompt["id"])]["content"] == line
    (public,) = await fake_discord.wait_for_reply(done)
    assert not ephemeral(public)
    assert public["content"] == line
    assert await bot.store.get_conversation(conversation_id=conversation.id) is None
    assert await bot.store.list_messages(conversation_id=conversation.id) == []


async def test_only_the_asker_confirms(start_bot: BotFactory, fake_discord: FakeDiscord) -> None:
    bot = await start_bot()
    await talk(fake_discord, ADA_DM, "secret", "You said: Ada: secret")
    asked = await fake_discord.slash(ADA_DM, ADA, "forget")
    prompt = await only_reply(fake_discord, asked)
    other = await fake_discord.click(prompt, BOB, "Forget it")
    (line,) = await fake_discord.wait_for_reply(other)
    assert ephemeral(line)
    assert line["content"] == "Only the person who asked can confirm this."
    assert await bot.conversation(None, ADA_DM) is not None


async def test_forget_in_a_thread_by_whoever_started_it(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot()
    own = 811000000000000099
    thread = fake_discord.add_thread(KITCHEN, LOUNGE, own, "Ada's thread", owner_id=ADA)
    await fake_discord.dispatch(
        "THREAD_CREATE", {**thread, "newly_created": True}, guild_id=KITCHEN
    )
    await fake_discord.say(own, ADA, f"{bot.mention} hello")
    await fake_discord.wait_for_bot_messages(own)
    bobs = await fake_discord.slash(own, BOB, "forget")
    assert "the person who started this conversation" in await refused(fake_discord, bobs)
    adas = await fake_discord.slash(own, ADA, "forget")
    _, done = await answer(fake_discord, adas, ADA, "Forget it")
    await fake_discord.wait_for_reply(done)
    assert await bot.conversation(KITCHEN, own) is None

    started = await fake_discord.slash(LOUNGE, ADA, "start", agent="chef")
    await only_reply(fake_discord, started)
    opened = next(
        int(c["id"])
        for c in fake_discord.channels.values()
        if c.get("parent_id") == str(LOUNGE) and c["owner_id"] == fake_discord.bot["id"]
    )
    bobs = await fake_discord.slash(opened, BOB, "forget")
    await refused(fake_discord, bobs)
    adas = await fake_discord.slash(opened, ADA, "forget")
    _, done = await answer(fake_discord, adas, ADA, "Forget it")
    (public,) = await fake_discord.wait_for_reply(done)
    assert public["content"] == (
        "I have forgotten this conversation and its 1 messages, as Ada asked."
    )


async def test_forget_in_a_dm(start_bot: BotFactory, fake_discord: FakeDiscord) -> None:
    bot = await start_bot()
    await talk(fake_discord, ADA_DM, "secret", "You said: Ada: secret")
    interaction = await fake_discord.slash(ADA_DM, ADA, "forget")
    _, done = await answer(fake_discord, interaction, ADA, "Forget it")
    (public,) = await fake_discord.wait_for_reply(done)
    assert public["content"].startswith("I have forgotten")
    assert await bot.conversation(None, ADA_DM) is None


async def test_an_unexpected_failure_is_one_private_line(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot: DiscordBot = await start_bot()
    await bot.store.close()
    interaction = await fake_discord.slash(CHEF_ROOM, ADA, "list")
    assert await refused(fake_discord, interaction) == STORE_LINE


async def test_scheduled_goal_checks_are_posted_as_embeds(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    bot = await start_bot()
    assert isinstance(bot.adapter, GoalCheckPoster), "the runtime hands it to the scheduler"
    await talk(
        fake_discord,
        CHEF_ROOM,
        "I have chosen the paella",
        "You said: Ada: I have chosen the paella",
    )
    conversation = await bot.conversation(KITCHEN, CHEF_ROOM)
    assert conversation is not None
    check = await bot.engine.check_goal(conversation.id)
    agent = bot.engine.agent_of(conversation)

    await bot.adapter.post_goal_check(conversation, check, agent, channel=None)
    (embed,) = fake_discord.bot_messages(CHEF_ROOM)[-1]["embeds"]
    assert embed["title"] == "Chef: goal check"
    assert embed["color"] == GREEN
    assert "Conversation" not in {field["name"] for field in embed["fields"]}

    await bot.adapter.post_goal_check(conversation, check, agent, channel=str(LOUNGE))
    (report,) = fake_discord.bot_messages(LOUNGE)
    fields = {field["name"]: field["value"] for field in report["embeds"][0]["fields"]}
    assert fields["Conversation"] == f"<#{CHEF_ROOM}> · `{conversation.id}`"


async def test_a_report_channel_is_known_by_its_guild(
    start_bot: BotFactory, fake_discord: FakeDiscord
) -> None:
    """The scheduler posts a conversation into a report channel only from the same guild."""
    bot = await start_bot()
    assert await bot.adapter.channel_workspace(str(LOUNGE)) == str(KITCHEN)
    assert await bot.adapter.channel_workspace(str(GARDEN_CHEF)) == str(GARDEN)
    assert await bot.adapter.channel_workspace("999999999999999999") is None, "unknown"
    assert await bot.adapter.channel_workspace("not-a-channel") is None
