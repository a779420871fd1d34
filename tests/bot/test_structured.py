from __future__ import annotations

import pytest

from bot.structured import parse_object, partial_field, schema_problems, strict_schema_ok
from tests.support.agents import agent

SCHEMA = agent().response_shape
assert SCHEMA is not None


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
def test_partial_field(text: str, expected: str | None) -> None:
    assert partial_field(text, "answer") == expected


def test_parse_object_tolerates_fences_and_prose() -> None:
    assert parse_object('{"a": 1}') == {"a": 1}
    assert parse_object('```json\n{"a": {"b": [1]}}\n```') == {"a": {"b": [1]}}
    assert parse_object('Here you go: {"a": "}"} hope it helps') == {"a": "}"}
    assert parse_object("no json") is None
    assert parse_object('{"a": ') is None
    assert parse_object("[1]") is None


def test_schema_problems() -> None:
    good = {"answer": "hi", "recipes": ["Paella"], "ingredients": [], "summary": "s"}
    assert schema_problems(good, SCHEMA) == []
    assert schema_problems({**good, "recipes": "Paella"}, SCHEMA) == [
        "field 'recipes' must be array"
    ]
    assert schema_problems({**good, "recipes": [1]}, SCHEMA) == [
        "field 'recipes'[0] must be string"
    ]
    missing = {key: value for key, value in good.items() if key != "summary"}
    assert schema_problems(missing, SCHEMA) == ["missing field 'summary'"]
    assert schema_problems({**good, "extra": 1}, SCHEMA) == ["unexpected field 'extra'"]
    assert schema_problems(["not", "an", "object"], SCHEMA) == ["the reply must be object"]
    flags = {"type": "object", "properties": {"n": {"type": "integer"}, "ok": {"type": "boolean"}}}
    assert schema_problems({"n": True, "ok": 1}, flags) == [
        "field 'n' must be integer",
        "field 'ok' must be boolean",
    ]
    assert schema_problems({"n": 2}, {"properties": {"n": {"enum": [1, 3]}}}) == [
        "field 'n' must be one of [1, 3]"
    ]


def test_strict_schema_check() -> None:
    assert strict_schema_ok(SCHEMA)
    assert not strict_schema_ok({"type": "object", "properties": {"a": {"type": "string"}}})
    loose_inside = {
        "type": "object",
        "properties": {"a": {"type": "array", "items": {"type": "object", "properties": {}}}},
        "required": ["a"],
        "additionalProperties": False,
    }
    assert not strict_schema_ok(loose_inside)
