"""The reasoning local models write before their answer (``<think>...</think>``: DeepSeek-R1,
Qwen3 and others on Ollama, vLLM, llama.cpp), kept out of what people see, what is parsed as
JSON and what is stored.

Only blocks at the start of the answer are reasoning; a ``<think>`` later in the text is the
answer's own (a reply about HTML, say) and stays.
"""

from __future__ import annotations

OPEN = "<think>"
CLOSE = "</think>"


def answer_start(text: str, *, final: bool = False) -> int | None:
    """Where the answer begins in ``text``, after the leading think blocks and blank space.

    ``None`` while it cannot be told yet: the text is inside a block, or is blank or the
    beginning of ``<think>``. With ``final`` (the text is complete) it is always told: an
    unclosed block is all reasoning, so the answer is empty.
    """
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if text.startswith(OPEN, at):
            end = text.find(CLOSE, at + len(OPEN))
            if end < 0:
                return len(text) if final else None
            at = end + len(CLOSE)
            continue
        if not final and OPEN.startswith(text[at:]):
            return None
        return at


def without_thinking(text: str) -> str:
    """The complete ``text`` without its leading think blocks."""
    start = answer_start(text, final=True)
    return text if start is None else text[start:]


class ThinkingFilter:
    """The answer of a streamed reply, fed piece by piece; reasoning never shows.

    Each piece is looked at once (a long block of reasoning costs its length, not its square):
    inside a block only the piece and the few characters before it are searched for its end;
    once the answer has begun, pieces pass straight through."""

    def __init__(self) -> None:
        self._pieces: list[str] = []
        self._answering = False
        self._inside = False
        self._waiting = ""
        """Outside a block: the text whose meaning is not known yet (blank space, or what may
        be the start of ``<think>``). Inside one: its last few characters, where ``</think>``
        may have begun."""

    def feed(self, piece: str) -> str:
        """Add ``piece``; returns what the answer gained (empty while the model reasons)."""
        self._pieces.append(piece)
        if self._answering:
            return piece
        text = self._waiting + piece
        while True:
            if self._inside:
                end = text.find(CLOSE)
                if end < 0:
                    self._waiting = text[-(len(CLOSE) - 1) :]
                    return ""
                self._inside, text = False, text[end + len(CLOSE) :]
            text = text.lstrip()
            if text.startswith(OPEN):
                self._inside, text = True, text[len(OPEN) :]
                continue
            if not text or OPEN.startswith(text):
                self._waiting = text
                return ""
            self._answering, self._waiting = True, ""
            return text

    def finish(self) -> str:
        """The whole answer, once the stream has ended."""
        return without_thinking("".join(self._pieces))
