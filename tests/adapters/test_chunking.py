from __future__ import annotations

import pytest

from adapters.chunking import split_message


def test_short_text_is_one_part() -> None:
    assert split_message("hello", 2000) == ["hello"]
    assert split_message("", 2000) == []


def test_splits_at_lines_then_words() -> None:
    paragraph = " ".join(f"word{n}" for n in range(200))
    text = "\n".join([paragraph[:900], paragraph[:900], paragraph[:900]])
    parts = split_message(text, 2000)
    assert all(len(part) <= 2000 for part in parts)
    assert parts[0] == "\n".join([paragraph[:900], paragraph[:900]])
    words_only = split_message(paragraph * 3, 500)
    assert all(len(part) <= 500 for part in words_only)
    assert all(not part.startswith(" ") and not part.endswith(" ") for part in words_only)
    assert " ".join(words_only).split() == (paragraph * 3).split()


def test_a_4500_character_reply_with_code_is_three_parts_with_fences_intact() -> None:
    prose = "Here is the plan.\n" + "Some explanation line.\n" * 40
    code = "```python\n" + "".join(f"print('line {n:04d}')\n" for n in range(150)) + "```\n"
    body = prose + code + "That is all."
    text = body + " padding" * ((4500 - len(body)) // 8)
    assert 4490 <= len(text) <= 4500
    parts = split_message(text, 2000)
    assert len(parts) == 3
    assert all(len(part) <= 2000 for part in parts)
    for part in parts:
        assert part.count("```") % 2 == 0, part[:80]
    assert parts[1].startswith("```python\n")
    rejoined = "".join(part for part in parts)
    assert rejoined.count("print('line") == 150


def test_unbreakable_text_is_cut_hard() -> None:
    parts = split_message("x" * 5000, 2000)
    assert [len(part) for part in parts] == [1996, 1996, 1008]


def test_limit_must_leave_room() -> None:
    with pytest.raises(ValueError, match="limit"):
        split_message("text", 5)
