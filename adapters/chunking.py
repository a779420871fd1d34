"""Split long replies into messages a platform accepts, without breaking code blocks.

Splits at a line break where possible, else at a space, else hard; a fenced code block cut in
two is closed at the end of one part and reopened (same language) at the start of the next.
"""

from __future__ import annotations

FENCE = "```"


def split_message(text: str, limit: int) -> list[str]:
    """Parts of at most ``limit`` characters each that together say ``text``."""
    if limit < 20:
        raise ValueError("limit must leave room for code fences")
    text = text.strip("\n")
    parts: list[str] = []
    opening = ""
    while text:
        budget = limit - len(opening)
        if len(text) <= budget:
            parts.append(opening + text)
            break
        cut = _cut_point(text, budget - len(FENCE) - 1)
        head, text = text[:cut], text[cut:].lstrip("\n" if text[cut : cut + 1] == "\n" else " ")
        language = _open_fence_language(opening + head)
        if language is None:
            parts.append((opening + head).rstrip())
            opening = ""
        else:
            parts.append((opening + head).rstrip("\n") + "\n" + FENCE)
            opening = FENCE + language + "\n"
    return [part for part in parts if part.strip()]


def _cut_point(text: str, budget: int) -> int:
    window = text[: budget + 1]
    for separator in ("\n\n", "\n", " "):
        position = window.rfind(separator)
        if position > budget // 3:
            return position
    return budget


def _open_fence_language(text: str) -> str | None:
    """The language of a fence left open at the end of ``text`` ("" for none), else None."""
    language: str | None = None
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith(FENCE):
            language = None if language is not None else stripped[len(FENCE) :].strip()
    return language
