"""The terminal chat (``python -m bot chat``): talk to an agent in a terminal, or script it
through stdin. Its conversations keep the stored platform value ``console``.

:class:`TerminalSession` is the platform-neutral core (send a line, get a turn) and doubles as
a full-stack test harness; :class:`TerminalAdapter` wires it to text streams. On a terminal the
reply streams as it is written; otherwise one reply is printed per input line. The
``/commands`` are :mod:`bot.commands`' subcommands (``/reset`` is ``/agent reset``), rendered
as lines; a confirmation is a y/N question read from the same input.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TextIO

from adapters.base import format_goal_check, short_error_line
from bot.commands import (
    OPENED_BY,
    AgentCommands,
    Caller,
    FileToSend,
    GoalCheckToPost,
    NeedsConfirmation,
    OpenThread,
    Outcome,
    Refused,
    Said,
    Started,
    parse,
)
from bot.engine import Engine, IncomingMessage, Turn, TurnResult
from config.agents import Agent
from memory.base import Conversation, PlatformKey

logger = logging.getLogger(__name__)

PREFIX = "/"
QUIT = "• `/quit`: leave (Ctrl-D works too); the conversation resumes next time by its name"
YES = frozenset({"y", "yes"})


class TerminalSession:
    """One named terminal conversation with an agent, resumable across runs.

    The person at the terminal runs the bot, so they count as its admin unless ``admin`` is
    False (tests play several people that way).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        name: str,
        agent_id: str | None = None,
        author: str = "you",
        admin: bool = True,
    ) -> None:
        self._engine = engine
        self._agent_id = agent_id
        self._author = author
        self._admin = admin
        self._commands = AgentCommands(engine)
        self.key = PlatformKey(platform="console", channel=name)

    async def open(self) -> tuple[Conversation, bool]:
        """The conversation by this name, or a new one opened with the agent's first message."""
        return await self._engine.open_conversation(
            key=self.key, agent_id=self._agent_id, data={OPENED_BY: self._author}
        )

    async def agent(self) -> Agent:
        """The agent talking here now, without opening a conversation."""
        conversation = await self._engine.store.find_conversation(key=self.key)
        if conversation is not None:
            return self._engine.agent_of(conversation)
        return self._engine.agents.find(self._agent_id or "") or self._engine.agents.default

    def send(self, text: str) -> Turn:
        return self._engine.reply(
            IncomingMessage(
                key=self.key,
                text=text,
                author_id=self._author,
                author_name=self._author,
                agent_id=self._agent_id,
            )
        )

    async def ask(self, text: str) -> TurnResult:
        """Send a line and wait for the whole reply."""
        return await self.send(text).result()

    @property
    def caller(self) -> Caller:
        return Caller(
            key=self.key,
            user_id=self._author,
            user_name=self._author,
            admins="the bot's admins",
            is_admin=self._is_admin,
            opens_threads=False,
            prefix=PREFIX,
        )

    async def _is_admin(self) -> bool:
        return self._admin

    @property
    def commands(self) -> AgentCommands:
        return self._commands

    def usage(self) -> str:
        return f"{self._commands.usage(PREFIX)}\n{QUIT}"


class TerminalAdapter:
    """Reads lines, answers them, handles /commands. Returns when input ends or on /quit."""

    name = "terminal"

    def __init__(
        self,
        session: TerminalSession,
        *,
        stdin: TextIO,
        stdout: TextIO,
        interactive: bool,
    ) -> None:
        self._session = session
        self._in = stdin
        self._out = stdout
        self._interactive = interactive

    async def run(self) -> None:
        conversation, created = await self._session.open()
        agent = await self._session.agent()
        if self._interactive:
            if created:
                self._say(f"{agent.name}> {agent.first_message}")
            else:
                self._say(
                    f"(resuming '{self._session.key.channel}' with {agent.name}, "
                    f"{conversation.message_count} messages; /help for commands)"
                )
        while True:
            line = await self._read()
            if line is None:
                return
            text = line.strip()
            if not text:
                continue
            if text.startswith("/"):
                if not await self._command(text):
                    return
                agent = await self._session.agent()  # reset, use, start may change it
                continue
            await self._answer(text, agent)

    async def _read(self) -> str | None:
        if self._interactive:
            self._out.write("you> ")
            self._out.flush()
        line = await asyncio.to_thread(self._in.readline)
        return line or None

    async def _answer(self, text: str, agent: Agent) -> None:
        turn = self._session.send(text)
        shown = ""
        try:
            if self._interactive:
                self._out.write(f"{agent.name}> ")
                async for visible in turn:
                    shown = self._stream(shown, visible)
            result = await turn.result()
        except Exception as exc:
            logger.warning("terminal turn failed: %s", exc.__class__.__name__, exc_info=True)
            self._say(("\n" if shown else "") + short_error_line(exc))
            return
        if self._interactive:
            self._stream(shown, result.text)
            self._say("")
        else:
            self._say(result.text)

    def _stream(self, shown: str, visible: str) -> str:
        if visible.startswith(shown):
            self._out.write(visible[len(shown) :])
        else:
            self._out.write("\n" + visible)
        self._out.flush()
        return visible

    async def _command(self, text: str) -> bool:
        """Run a /command; False means leave."""
        word = text.split(maxsplit=1)[0].lower()
        if word in {"/quit", "/exit"}:
            return False
        command = parse(text[len(PREFIX) :])
        if command is None:
            self._say(f"Unknown command {word}.\n{self._session.usage()}")
            return True
        if command.verb == "help":
            self._say(self._session.usage())
            return True
        try:
            await self._show(await self._session.commands.run(command, self._session.caller))
        except Exception as exc:
            logger.warning("terminal command failed: %s", exc.__class__.__name__, exc_info=True)
            self._say(short_error_line(exc))
        return True

    async def _show(self, outcome: Outcome) -> None:
        """Render what a command came to as lines in the terminal."""
        if isinstance(outcome, Said):
            self._say(outcome.text)
        elif isinstance(outcome, Refused):
            self._say(outcome.reason)
        elif isinstance(outcome, Started):
            self._say(f"({outcome.note})\n{outcome.agent.name}> {outcome.agent.first_message}")
        elif isinstance(outcome, GoalCheckToPost):
            self._say(format_goal_check(outcome.check))
        elif isinstance(outcome, FileToSend):
            self._say(outcome.content.decode("utf-8"))
        elif isinstance(outcome, NeedsConfirmation):
            await self._confirm(outcome)
        elif isinstance(outcome, OpenThread):  # the caller says the terminal has no threads
            logger.warning("a thread to open in the terminal; ignored")

    async def _confirm(self, question: NeedsConfirmation) -> None:
        """The question with y/N; anything but yes keeps things as they are."""
        self._out.write(f"{question.prompt} [y/N] ")
        if not self._interactive:
            self._out.write("\n")
        self._out.flush()
        answer = await asyncio.to_thread(self._in.readline)
        commands = self._session.commands
        if answer.strip().lower() in YES:
            await self._show(await commands.confirm(question.action, self._session.caller))
        else:
            await self._show(commands.cancel())

    def _say(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()
