"""The visible field read from a JSON reply as it is written (bot/fieldstream.py)."""

from __future__ import annotations

import json

import pytest
from pydantic_core import from_json

from bot.fieldstream import FieldReader


def read(pieces: list[str], field: str = "answer") -> list[str]:
    reader = FieldReader(field)
    return [reader.feed(piece) for piece in pieces]


def one_by_one(text: str) -> list[str]:
    return list(text)


@pytest.mark.parametrize(
    "value",
    [
        "plain words",
        'quotes " and \\ backslashes / slashes',
        "lines\nand\ttabs\r\x08\x0c",
        "accents é, CJK 日本語, emoji 😀 and 🇫🇷",
        "",
    ],
)
@pytest.mark.parametrize("ascii_only", [True, False])
def test_the_field_is_decoded_exactly_whatever_the_pieces(value: str, ascii_only: bool) -> None:
    """Every escape (\\uXXXX with surrogate pairs included) cut at every possible place."""
    text = json.dumps(
        {"mood": "ok", "answer": value, "more": [1, {"answer": "no"}]}, ensure_ascii=ascii_only
    )
    assert "".join(read(one_by_one(text))) == value
    for cut in range(len(text)):
        assert "".join(read([text[:cut], text[cut:]])) == value


def test_it_grows_as_the_partial_parse_does() -> None:
    """What has been shown after each piece is what a parse of the whole text so far gives."""
    text = json.dumps({"answer": 'Hello, "world"\nsecond line é', "n": 2})
    reader = FieldReader("answer")
    shown = ""
    for end in range(1, len(text) + 1):
        shown += reader.feed(text[end - 1])
        partial = from_json(text[:end], allow_partial="trailing-strings")
        expected = partial.get("answer") if isinstance(partial, dict) else None
        assert shown == (expected if isinstance(expected, str) else ""), text[:end]


def test_other_fields_and_nested_values_are_skipped() -> None:
    text = (
        '{"sources": [{"answer": "nested, not shown"}, "a \\" quote"], '
        '"count": 3, "ok": true, "note": null, "answer": "the one", "answer2": "x"}'
    )
    assert "".join(read([text])) == "the one"


def test_prose_or_a_fence_before_the_object_is_skipped() -> None:
    text = 'Sure! Here it is:\n```json\n{"answer": "fenced"}\n```'
    assert "".join(read(one_by_one(text))) == "fenced"


@pytest.mark.parametrize(
    "text",
    ['{"answer": 42}', '{"answer": ["a"]}', "no json at all", '{"other": "x"}', '["answer", "x"]'],
)
def test_a_field_that_is_no_string_shows_nothing(text: str) -> None:
    assert "".join(read(one_by_one(text))) == ""


def test_only_the_first_value_is_streamed() -> None:
    assert "".join(read(['{"answer": "first", "answer": "second"}'])) == "first"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ('{"ans', None),
        ('{"answer": "Hel', "Hel"),
        ('{"answer": "Hello \\u00', "Hello "),
        ('{"answer": "Hello \\u00e9t\\u00e9", "reci', "Hello été"),
        ('```json\n{"answer": "fenced', "fenced"),
        ('Sure! {"answer": "after prose"}', "after prose"),
        ('{"recipes": ["a"], "answer": "late field', "late field"),
        ('{"answer": 3}', None),
        ("[1, 2", None),
    ],
)
def test_what_a_partial_reply_shows(text: str, expected: str | None) -> None:
    assert "".join(read([text])) == (expected or "")
