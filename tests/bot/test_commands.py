"""Every ``/agent`` subcommand, once, through the terminal session (errbot's test backend
style: scripted lines in, printed lines and the store's state out).

The platforms' own tests (``tests/adapters/test_*_commands.py``) only check how Slack and
Discord render the same outcomes.
"""

from __future__ import annotations

import io
import re

import pytest

from adapters.terminal import TerminalAdapter, TerminalSession
from bot.commands import (
    OPENED_BY,
    PERMISSIONS,
    AgentCommands,
    Caller,
    Command,
    NeedsConfirmation,
    Pending,
    Refused,
    Said,
    Verb,
    parse,
)
from bot.engine import Engine, IncomingMessage
from memory.base import Conversation, PlatformKey
from tests.support.agents import agents_file, chef, plain
from tests.support.engines import EngineFactory
from tests.support.fake_openai import FakeOpenAI, Reply
from tests.support.process import REPO

CHEF_HELLO = "Hello, I am your personal chef. What can I do for you today?"
PLACE = PlatformKey(platform="console", channel="dinner")


class Terminal:
    """People typing into the same named terminal conversation."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def type(self, *lines: str, who: str = "Ada", admin: bool = False) -> str:
        session = TerminalSession(self.engine, name=PLACE.channel, author=who, admin=admin)
        out = io.StringIO()
        adapter = TerminalAdapter(
            session,
            stdin=io.StringIO("".join(f"{line}\n" for line in lines)),
            stdout=out,
            interactive=False,
        )
        await adapter.run()
        return out.getvalue()

    async def conversation(self) -> Conversation | None:
        return await self.engine.store.find_conversation(key=PLACE)

    async def open_conversation(self) -> Conversation:
        conversation = await self.conversation()
        assert conversation is not None
        return conversation

    async def texts(self, conversation: Conversation) -> list[str]:
        messages = await self.engine.store.list_messages(conversation_id=conversation.id)
        return [message.text for message in messages]


@pytest.fixture
def terminal(make_engine: EngineFactory) -> Terminal:
    return Terminal(make_engine(agents_file(chef(), plain())))


# the table and the words ---------------------------------------------------------------------


def test_the_permission_table_decides_each_drift_once() -> None:
    assert set(PERMISSIONS) == {
        "help",
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
    assert PERMISSIONS["use"].who == "admins"
    assert PERMISSIONS["usage"].who == "admins"
    assert not PERMISSIONS["use"].in_dm
    assert PERMISSIONS["forget"].who == "admins or the opener"
    assert PERMISSIONS["forget"].confirm
    assert [verb for verb, rule in PERMISSIONS.items() if rule.confirm] == ["forget"]
    assert all(
        PERMISSIONS[verb].who == "anyone" for verb in ("help", "list", "start", "reset", "summary")
    )


def test_the_readme_commands_table_is_the_permission_table() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    rows = {
        match[0]: (match[1], match[2], match[3])
        for match in re.findall(
            r"^\| `(\w+)[^`]*` \| ([^|]+?) \| ([^|]+?) \| (yes|no) \|$", readme, re.MULTILINE
        )
    }
    assert set(rows) == set(PERMISSIONS)
    for verb, rule in PERMISSIONS.items():
        who, does, confirm = rows[verb]
        assert who == rule.who, verb
        assert does == rule.does, verb
        assert confirm == ("yes" if rule.confirm else "no"), verb


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("", Command("help")),
        ("help", Command("help")),
        ("LIST", Command("list")),
        ("use chef", Command("use", "chef")),
        ("reset", Command("reset")),
        ("summary", Command("summary")),
        ("export", Command("export")),
        ("use `Plain`", Command("use", "plain")),
        ("start", Command("start")),
        ("start plain", Command("start", "plain")),
        ("forget", Command("forget")),
        ("use", None),
        ("start a b", None),
        ("use a b", None),
        ("list all", None),
        ("reset now", None),
        ("dance", None),
    ],
)
def test_parse(text: str, command: Command | None) -> None:
    assert parse(text) == command


# each subcommand through the terminal ----------------------------------------------------------


async def test_help_and_unknown_commands(terminal: Terminal) -> None:
    output = await terminal.type("/help", "/dance")
    assert "• `/forget`: delete the conversation and all its messages (admins or the opener)" in (
        output
    )
    assert "• `/use ID`: new conversations here talk to agent ID" in output
    assert "• `/quit`: leave" in output
    assert "Unknown command /dance.\n**Usage:** `/<subcommand>`" in output


async def test_list_marks_the_agent_here_and_the_default(terminal: Terminal) -> None:
    output = await terminal.type("/list")
    assert output.splitlines()[:3] == [
        "**Agents** (new conversations here talk to **Chef**):",
        "• `chef`: Chef (here, default)",
        "• `plain`: Plain",
    ]


async def test_reset_closes_and_starts_afresh_with_the_first_message(terminal: Terminal) -> None:
    await terminal.type("my name is Bob", who="Bob")
    before = await terminal.open_conversation()

    output = await terminal.type("/reset", "What's my name?")
    assert output == (
        f"(New conversation (the previous one is kept).)\nChef> {CHEF_HELLO}\n"
        "I don't know your name yet.\n"
    )
    after = await terminal.open_conversation()
    assert after.id != before.id
    assert (await terminal.texts(after))[0] == CHEF_HELLO
    kept = await terminal.engine.store.get_conversation(conversation_id=before.id)
    assert kept is not None
    assert kept.closed_at is not None
    assert after.data[OPENED_BY] == "Bob", "the new conversation keeps its opener"


async def test_use_is_for_admins_and_closes_the_previous_conversation(terminal: Terminal) -> None:
    await terminal.type("hello")
    before = await terminal.open_conversation()

    refused = await terminal.type("/use plain")
    assert refused == (
        "Only the bot's admins can choose the agent here. You can still start a conversation "
        "with any agent: `/start ID`.\n"
    )
    assert (await terminal.open_conversation()).id == before.id

    unknown = await terminal.type("/use waiter", admin=True)
    assert unknown == "There is no agent `waiter`. Agents: `chef`, `plain`.\n"

    output = await terminal.type("/use plain", "hi", who="Olu", admin=True)
    assert output == (
        "(**Plain** now answers new conversations here (chosen by Olu). The conversation with "
        "Chef is closed (and kept).)\nPlain> Hi! How can I help?\nYou said: Olu: hi\n"
    )
    after = await terminal.open_conversation()
    assert after.agent_id == "plain"
    kept = await terminal.engine.store.get_conversation(conversation_id=before.id)
    assert kept is not None
    assert kept.closed_at is not None

    again = await terminal.type("/use plain", admin=True)
    assert again == "**Plain** now answers new conversations here (chosen by Ada).\n"
    assert (await terminal.open_conversation()).id == after.id, "same agent: nothing to close"


async def test_start_begins_a_conversation_with_any_agent(terminal: Terminal) -> None:
    await terminal.type("hello")
    before = await terminal.open_conversation()
    output = await terminal.type("/start plain", "/start waiter", who="Bob")
    assert output == (
        "(New conversation with Plain (the previous one is kept).)\nPlain> Hi! How can I help?\n"
        "There is no agent `waiter`. Agents: `chef`, `plain`.\n"
    )
    after = await terminal.open_conversation()
    assert after.id != before.id
    assert after.agent_id == "plain"
    assert after.data[OPENED_BY] == "Bob", "who starts a conversation opened it"


async def test_summary_checks_the_goal_now(terminal: Terminal, fake_openai: FakeOpenAI) -> None:
    output = await terminal.type("I have chosen the paella", "/summary")
    assert output.splitlines()[1] == "Goal reached: yes"
    conversation = await terminal.open_conversation()
    assert conversation.goal is not None
    assert conversation.goal.reached

    fake_openai.handle(lambda request: Reply(status=500, error_message="model exploded"))
    failed = await terminal.type("/summary")
    assert failed == "I couldn't check the goal just now. Please try again in a moment.\n"


async def test_summary_without_a_goal(terminal: Terminal) -> None:
    await terminal.type("/start plain")
    assert await terminal.type("/summary") == "Plain has no goal to check.\n"


async def test_export_prints_the_conversation_as_markdown(terminal: Terminal) -> None:
    output = await terminal.type("my name is Bob", "/export")
    assert "# my name is Bob\n" in output
    assert "You said: Ada: my name is Bob" in output.split("# my name is Bob", 1)[1]
    assert await terminal.type("/export", who="Olu") == output.split("\n", 1)[1]


async def test_forget_asks_first_and_is_for_the_opener_or_admins(terminal: Terminal) -> None:
    await terminal.type("/start chef", "my secret", who="Ada")
    conversation = await terminal.open_conversation()

    refused = await terminal.type("/forget", who="Bob")
    assert refused == (
        "Only the bot's admins or the person who started this conversation can make me forget it.\n"
    )

    kept = await terminal.type("/forget", "n", who="Ada")
    assert kept == (
        "Forget this conversation? I will delete it and all its messages from my memory. "
        "This cannot be undone. [y/N] \nNothing was deleted.\n"
    )
    assert await terminal.conversation() is not None

    gone = await terminal.type("/forget", "y", who="Ada")
    assert gone.endswith(
        "[y/N] \nI have forgotten this conversation and its 3 messages, as Ada asked.\n"
    )
    assert await terminal.conversation() is None
    assert await terminal.engine.store.get_conversation(conversation_id=conversation.id) is None
    assert await terminal.engine.store.list_messages(conversation_id=conversation.id) == []

    await terminal.type("hello again", who="Bob")
    by_admin = await terminal.type("/forget", "yes", who="Olu", admin=True)
    assert by_admin.endswith("as Olu asked.\n")
    assert await terminal.conversation() is None


@pytest.mark.parametrize(
    ("verb", "line"),
    [
        ("reset", "There is no conversation here to reset."),
        ("summary", "There is no conversation here to check."),
        ("export", "There is no conversation here to export."),
        ("forget", "There is no conversation here to forget."),
    ],
)
async def test_subcommands_about_a_conversation_need_one(
    terminal: Terminal, verb: Verb, line: str
) -> None:
    """The terminal always has its conversation open; a Slack thread or a Discord channel
    may have none."""
    commands = AgentCommands(terminal.engine)
    nowhere = PlatformKey(platform="discord", workspace="1", channel="2")
    assert await commands.run(Command(verb), Caller(key=nowhere, user_id="3")) == Refused(line)


# the confirmation, from the core's side ------------------------------------------------------


async def test_only_the_asker_confirms_and_only_where_the_conversation_lives(
    terminal: Terminal,
) -> None:
    await terminal.type("hello")
    conversation = await terminal.open_conversation()
    commands = AgentCommands(terminal.engine)
    ada = Caller(key=PLACE, user_id="Ada", user_name="Ada")
    question = await commands.run(Command("forget"), ada)
    assert isinstance(question, NeedsConfirmation)
    assert question.action == Pending("forget", conversation.id, "Ada")
    assert Pending.decode(question.action.encode()) == question.action
    assert Pending.decode("not json") is None

    bob = Caller(key=PLACE, user_id="Bob", user_name="Bob")
    assert await commands.confirm(question.action, bob) == Refused(
        "Only the person who asked can confirm this."
    )
    elsewhere = Caller(key=PlatformKey(platform="console", channel="lunch"), user_id="Ada")
    assert await commands.confirm(question.action, elsewhere) == Refused(
        "That conversation is already gone."
    )
    assert await terminal.conversation() is not None

    done = await commands.confirm(question.action, ada)
    assert done == Said(
        "I have forgotten this conversation and its 3 messages, as Ada asked.", private=False
    )
    assert await commands.confirm(question.action, ada) == Refused(
        "That conversation is already gone."
    )


async def test_the_opener_of_a_thread_is_its_root_messages_author(terminal: Terminal) -> None:
    """On Slack a conversation is a thread whose root message opened it; its author may
    forget it without being an admin, and anyone may in their own direct message."""
    engine = terminal.engine
    thread = PlatformKey(platform="slack", workspace="T1", channel="C1", thread="1700000000.000100")
    root = IncomingMessage(
        key=thread,
        text="hello",
        author_id="U1",
        author_name="Ada",
        platform_message_id=thread.thread,
    )
    await engine.reply(root).result()
    commands = AgentCommands(engine)

    opener = await commands.run(Command("forget"), Caller(key=thread, user_id="U1"))
    assert isinstance(opener, NeedsConfirmation)
    other = await commands.run(Command("forget"), Caller(key=thread, user_id="U2", admins="admins"))
    assert other == Refused(
        "Only admins or the person who started this conversation can make me forget it."
    )

    async def yes() -> bool:
        return True

    admin = await commands.run(Command("forget"), Caller(key=thread, user_id="U2", is_admin=yes))
    assert isinstance(admin, NeedsConfirmation)
    dm = PlatformKey(platform="slack", workspace="T1", channel="D1", thread="1700000000.000200")
    await engine.reply(IncomingMessage(key=dm, text="hi", author_id="U2")).result()
    in_dm = await commands.run(Command("forget"), Caller(key=dm, user_id="U2", in_dm=True))
    assert isinstance(in_dm, NeedsConfirmation)
