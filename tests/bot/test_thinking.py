"""The reasoning local models write before their answer never reaches people or the parser."""

from __future__ import annotations

import pytest

from bot.thinking import ThinkingFilter, answer_start, without_thinking


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>why</think>\n\nHello", "Hello"),
        ("  <think>a</think><think>b</think> Hi", "Hi"),
        ('<think>{"answer": "no"}</think>{"answer": "yes"}', '{"answer": "yes"}'),
        ("<think>cut off before the end", ""),
        ("Hello", "Hello"),
        (
            "Use <think> tags like this: <think>x</think>",
            "Use <think> tags like this: <think>x</think>",
        ),
        ("<b>bold</b>", "<b>bold</b>"),
        ("<thi", "<thi"),
        ("", ""),
    ],
)
def test_without_thinking(text: str, expected: str) -> None:
    assert without_thinking(text) == expected


@pytest.mark.parametrize(
    "text", ["", "  ", "<", "<thin", "<think>", "<think>still</thi", "\n<think>x"]
)
def test_the_start_is_not_told_while_it_may_still_be_reasoning(text: str) -> None:
    assert answer_start(text) is None


def test_a_stream_shows_nothing_of_the_reasoning() -> None:
    thinking = ThinkingFilter()
    pieces = ["<th", "ink>I should say", " hi</th", "ink>\n", "\nHel", "lo"]

    shown = [thinking.feed(piece) for piece in pieces]

    assert shown == ["", "", "", "", "Hel", "lo"], "what the answer gained, piece by piece"
    assert thinking.finish() == "Hello"


def test_a_stream_without_reasoning_shows_at_once() -> None:
    thinking = ThinkingFilter()
    assert thinking.feed("<b") == "<b"
    assert thinking.feed(">x <think>") == ">x <think>"
    assert thinking.finish() == "<b>x <think>"


def test_a_long_block_of_reasoning_ends_wherever_its_end_is_cut() -> None:
    thinking = ThinkingFilter()
    pieces = ["<think>", *(["step. "] * 500), "<", "/", "think", ">", " ", "Done", "."]

    shown = "".join(thinking.feed(piece) for piece in pieces)

    assert shown == "Done."
    assert thinking.finish() == "Done."
