"""The visible field of a JSON reply, decoded as the model writes it, each character once.

Re-parsing the whole reply for every streamed piece costs time in the square of its length;
:class:`FieldReader` keeps its place instead. It reads the first JSON object in the text
(prose or a code fence before it is skipped, as ``bot.structured.json_start`` does) and
gives, piece by piece, the decoded characters of one top-level string field. It never
raises: text that is not the JSON it expects simply yields nothing, and the complete reply
is parsed properly once it has ended.
"""

from __future__ import annotations

import re

_STRING_STOP = re.compile(r'["\\]')
"""Inside a string, the characters that end a plain run: the closing quote, an escape."""
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HIGH = range(0xD800, 0xDC00)
_LOW = range(0xDC00, 0xE000)


class FieldReader:
    """Feed the reply's text as it arrives; each call returns what the field gained."""

    def __init__(self, field: str) -> None:
        self._field = field
        self._buffer = ""
        """Text read but not yet consumed: at most an escape sequence cut by a piece's end."""
        self._depth = 0
        """Nesting of objects and arrays; 0 before the first ``{`` and after its end."""
        self._started = False
        self._done = False
        self._expect = "key"
        """At depth 1: ``key``, ``colon``, ``value`` or ``comma``."""
        self._in_string = False
        self._role = ""
        """Of the string being read: ``key``, ``target`` (the field's value) or ``other``."""
        self._key: list[str] = []
        self._current = ""
        """The key whose value comes next (at depth 1)."""
        self._high: str | None = None
        """A high surrogate waiting for its low half (``\\ud83d\\ude00``)."""

    def feed(self, piece: str) -> str:
        if self._done:
            return ""
        text = self._buffer + piece
        self._buffer = ""
        out: list[str] = []
        at, end = 0, len(text)
        while at < end and not self._done:
            if self._in_string:
                at = self._read_string(text, at, out)
                if at < 0:  # an escape cut short: wait for the rest
                    break
                continue
            at = self._structure(text, at)
        return "".join(out)

    def _structure(self, text: str, at: int) -> int:
        char = text[at]
        if not self._started:
            if char == "{":
                self._started, self._depth, self._expect = True, 1, "key"
        elif char == '"':
            self._open_string()
        elif char in "{[":
            if self._depth == 1 and self._expect == "value":
                self._expect = "comma"
            self._depth += 1
        elif char in "}]":
            self._depth -= 1
            self._done = self._depth <= 0
        elif self._depth == 1:
            self._between_fields(char)
        return at + 1

    def _open_string(self) -> None:
        self._in_string = True
        if self._depth == 1 and self._expect == "key":
            self._role, self._key = "key", []
        elif self._depth == 1 and self._expect == "value" and self._current == self._field:
            self._role = "target"
        else:
            self._role = "other"

    def _between_fields(self, char: str) -> None:
        if char == ":" and self._expect == "colon":
            self._expect = "value"
        elif char == ",":
            self._expect = "key"
        elif not char.isspace() and self._expect == "value":
            self._expect = "comma"  # a number, true, false or null: not the field's string

    def _read_string(self, text: str, at: int, out: list[str]) -> int:
        """Read a string from ``at``; the index after what was read, or -1 when an escape is
        cut by the piece's end (kept for the next piece)."""
        sink = out if self._role == "target" else self._key if self._role == "key" else None
        stop = _STRING_STOP.search(text, at)
        if stop is None:
            if sink is not None:
                sink.append(text[at:])
            return len(text)
        if sink is not None and stop.start() > at:
            sink.append(text[at : stop.start()])
        at = stop.start()
        if text[at] == '"':
            self._close_string()
            return at + 1
        decoded, length = self._escape(text, at)
        if length == 0:
            self._buffer = text[at:]
            return -1
        if sink is not None and decoded:
            sink.append(decoded)
        return at + length

    def _escape(self, text: str, at: int) -> tuple[str, int]:
        """The character an escape at ``at`` stands for, and its length (0: cut short)."""
        if at + 1 >= len(text):
            return "", 0
        kind = text[at + 1]
        if kind != "u":
            return _ESCAPES.get(kind, kind), 2
        if at + 6 > len(text):
            return "", 0
        try:
            code = int(text[at + 2 : at + 6], 16)
        except ValueError:
            return "", 6
        return self._unicode(code), 6

    def _unicode(self, code: int) -> str:
        """A ``\\uXXXX`` escape's character; a surrogate pair's halves make one."""
        high, self._high = self._high, None
        if code in _HIGH:
            self._high = chr(code)
            return ""
        if code in _LOW and high is not None:
            return (high + chr(code)).encode("utf-16", "surrogatepass").decode("utf-16")
        return chr(code)

    def _close_string(self) -> None:
        self._in_string = False
        if self._role == "key":
            self._current = "".join(self._key)
            self._expect = "colon"
        elif self._role == "target":
            self._done = True  # the field is complete; what follows is not shown as it comes
        elif self._depth == 1 and self._expect == "value":
            self._expect = "comma"
