"""The console adapter: talk to an agent in a terminal, or script it through stdin.

:class:`ConsoleSession` is the platform-neutral core (send a line, get a turn) and doubles as
a full-stack test harness; :class:`ConsoleAdapter` wires it to text streams. On a terminal the
reply streams as it is written; otherwise one reply is printed per input line.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TextIO

from adapters.base import short_error_line
from bot.engine import Engine, IncomingMessage, NoGoal, Turn, TurnResult
from config.agents import Agent
from memory.base import Conversation, GoalCheck, PlatformKey
from memory.export import export_conversation

logger = logging.getLogger(__name__)

HELP = """\
Commands:
  /reset    start a new conversation (this one stays stored)
  /summary  check the agent's goal now
  /export   print this conversation as Markdown
  /help     this text
  /quit     leave (Ctrl-D works too); the conversation resumes next time by its name"""


def format_goal_check(check: GoalCheck) -> str:
    if check.error:
        return f"Goal check failed: {check.error}"
    lines = [f"Goal reached: {'yes' if check.reached else 'not yet'}"]
    if check.summary:
        lines.append(f"Summary: {check.summary}")
    if check.missing:
        lines.append("Missing: " + "; ".join(check.missing))
    return "\n".join(lines)


class ConsoleSession:
    """One named console conversation with an agent, resumable across runs."""

    def __init__(
        self, engine: Engine, *, name: str, agent_id: str | None = None, author: str = "you"
    ) -> None:
        self._engine = engine
        self._agent_id = agent_id
        self._author = author
        self.key = PlatformKey(platform="console", channel=name)

    async def open(self) -> tuple[Conversation, bool]:
        """The conversation by this name, or a new one opened with the agent's first message."""
        return await self._engine.open_conversation(key=self.key, agent_id=self._agent_id)

    async def agent(self) -> Agent:
        conversation, _ = await self.open()
        return self._engine.agent_of(conversation)

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

    async def reset(self) -> tuple[Conversation, bool]:
        await self._engine.reset(self.key)
        return await self.open()

    async def summary(self) -> GoalCheck:
        conversation, _ = await self.open()
        return await self._engine.check_goal(conversation.id)

    async def export(self) -> str:
        conversation, _ = await self.open()
        return await export_conversation(
            self._engine.store, conversation_id=conversation.id, fmt="md"
        )


class ConsoleAdapter:
    """Reads lines, answers them, handles /commands. Returns when input ends or on /quit."""

    name = "console"

    def __init__(
        self,
        session: ConsoleSession,
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
            logger.warning("console turn failed: %s", exc.__class__.__name__, exc_info=True)
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
        command = text.split(maxsplit=1)[0].lower()
        if command in {"/quit", "/exit"}:
            return False
        if command == "/help":
            self._say(HELP)
        elif command == "/reset":
            await self._session.reset()
            agent = await self._session.agent()
            self._say(f"(new conversation)\n{agent.name}> {agent.first_message}")
        elif command == "/summary":
            try:
                self._say(format_goal_check(await self._session.summary()))
            except NoGoal as exc:
                self._say(str(exc))
        elif command == "/export":
            self._say(await self._session.export())
        else:
            self._say(f"Unknown command {command}.\n{HELP}")
        return True

    def _say(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()
