"""The console adapter in-process (as a harness) and as ``python -m bot chat`` (as a user)."""

from __future__ import annotations

import io
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.terminal import TerminalAdapter, TerminalSession
from bot.engine import Engine
from bot.llm import OpenAIModelClient
from bot.tokens import TokenCounter
from memory.sqlite import SqliteStore
from tests.support.agents import agents_file, chef
from tests.support.fake_openai import FakeOpenAI
from tests.support.process import REPO, run_bot


@pytest.fixture
async def engine(tmp_path: Path, fake_openai: FakeOpenAI) -> AsyncIterator[Engine]:
    store = SqliteStore(path=tmp_path / "console.sqlite3")
    await store.open()
    model = OpenAIModelClient(api_key="k", base_url=fake_openai.base_url, timeout=5, max_retries=0)
    engine = Engine(
        store=store,
        agents=agents_file(chef()),
        model=model,
        tokens=TokenCounter(),
        default_model="gpt-4o-mini",
    )
    yield engine
    await engine.aclose()
    await model.close()
    await store.close()


async def converse(engine: Engine, lines: list[str], *, interactive: bool = False) -> str:
    session = TerminalSession(engine, name="dinner", author="Ada")
    out = io.StringIO()
    adapter = TerminalAdapter(
        session,
        stdin=io.StringIO("".join(f"{line}\n" for line in lines)),
        stdout=out,
        interactive=interactive,
    )
    await adapter.run()
    return out.getvalue()


async def test_scripted_session_prints_one_reply_per_line(engine: Engine) -> None:
    output = await converse(engine, ["my name is Bob", "", "What's my name?"])
    assert output == "You said: Ada: my name is Bob\nYour name is Bob.\n"


async def test_commands_render_as_lines(engine: Engine, fake_openai: FakeOpenAI) -> None:
    output = await converse(
        engine,
        ["I have chosen the paella", "/summary", "/export", "/reset", "What's my name?", "/nope"],
    )
    assert "Goal reached: yes" in output
    assert "# I have chosen the paella" in output, "the export is the conversation in Markdown"
    assert "(New conversation (the previous one is kept).)\nChef> Hello" in output
    assert "Unknown command /nope." in output
    assert "• `/summary`: check the conversation's goal now" in output


async def test_quit_stops_reading(engine: Engine) -> None:
    output = await converse(engine, ["/quit", "my name is Bob"])
    assert output == ""


async def test_interactive_session_greets_and_streams(engine: Engine) -> None:
    output = await converse(engine, ["hello"], interactive=True)
    assert output.startswith("Chef> Hello, I am your personal chef. What can I do for you today?\n")
    assert "you> Chef> You said: Ada: hello\n" in output
    resumed = await converse(engine, ["hi again"], interactive=True)
    assert resumed.startswith("(resuming 'dinner' with Chef, 3 messages; /help for commands)")


async def chat_process(
    workdir: Path, fake: FakeOpenAI, stdin: str, *args: str, **env: str
) -> tuple[int, str, str]:
    settings = {
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": "sk-console-secret",
        "OPENAI_MAX_RETRIES": "0",
        **env,
    }
    done = await run_bot(workdir, "chat", *args, stdin=stdin, **settings)
    return done.code, done.out, done.err


async def test_chat_command_remembers_across_restarts(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    shutil.copy(REPO / "agents.yaml", tmp_path / "agents.yaml")
    code, out, err = await chat_process(
        tmp_path, fake_openai, "Hi, my name is Bob\n", "--conversation", "kitchen", "--as", "Bob"
    )
    assert code == 0, err
    assert out == "You said: Bob: Hi, my name is Bob\n"

    code, out, err = await chat_process(
        tmp_path, fake_openai, "What's my name again?\n", "--conversation", "kitchen"
    )
    assert code == 0, err
    assert out == "Your name is Bob.\n"
    assert "sk-console-secret" not in out + err
    request = fake_openai.chat_requests()[-1]
    assert request.messages[0]["content"].startswith("You are a warm, practical Mediterranean chef")

    code, out, _ = await chat_process(
        tmp_path, fake_openai, "What's my name again?\n", "--conversation", "elsewhere"
    )
    assert out == "I don't know your name yet.\n"


async def test_chat_without_a_model_says_what_to_set(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    shutil.copy(REPO / "agents.yaml", tmp_path / "agents.yaml")
    code, out, err = await chat_process(
        tmp_path, fake_openai, "hi\n", OPENAI_BASE_URL="", OPENAI_API_KEY=""
    )
    assert code == 2
    assert out == ""
    assert "OPENAI_API_KEY" in err
    assert "OPENAI_BASE_URL" in err


async def test_chat_with_an_unknown_agent(tmp_path: Path, fake_openai: FakeOpenAI) -> None:
    shutil.copy(REPO / "agents.yaml", tmp_path / "agents.yaml")
    code, _, err = await chat_process(tmp_path, fake_openai, "", "--agent", "waiter")
    assert code == 2
    assert err.strip() == "parley: no agent 'waiter' (agents: chef, tutor)"
