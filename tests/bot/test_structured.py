from __future__ import annotations

import pytest

from bot.structured import (
    mend_object,
    parse_object,
    reply_problems,
    strict_schema_ok,
)
from tests.support.agents import agent
from tests.support.imports import imported

SCHEMA = agent().response_shape
assert SCHEMA is not None


def test_parse_object_tolerates_fences_and_prose() -> None:
    assert parse_object('{"a": 1}') == {"a": 1}
    assert parse_object('```json\n{"a": {"b": [1]}}\n```') == {"a": {"b": [1]}}
    assert parse_object('Here you go: {"a": "}"} hope it helps') == {"a": "}"}
    assert parse_object("no json") is None
    assert parse_object('{"a": ') is None
    assert parse_object("[1]") is None


def test_reply_problems() -> None:
    good = {"answer": "hi", "recipes": ["Paella"], "ingredients": [], "summary": "s"}
    assert reply_problems(good, SCHEMA) == []
    assert reply_problems({**good, "recipes": "Paella"}, SCHEMA) == [
        "field 'recipes' must be array"
    ]
    assert reply_problems({**good, "recipes": [1]}, SCHEMA) == ["field 'recipes[0]' must be string"]
    missing = {key: value for key, value in good.items() if key != "summary"}
    assert reply_problems(missing, SCHEMA) == ["missing field 'summary'"]
    assert reply_problems({**good, "extra": 1}, SCHEMA) == ["unexpected field 'extra'"]
    assert reply_problems(["not", "an", "object"], SCHEMA) == ["the reply must be object"]
    flags = {"type": "object", "properties": {"n": {"type": "integer"}, "ok": {"type": "boolean"}}}
    assert reply_problems({"n": True, "ok": 1}, flags) == [
        "field 'n' must be integer",
        "field 'ok' must be boolean",
    ]
    assert reply_problems({"n": 2}, {"properties": {"n": {"enum": [1, 3]}}}) == [
        "field 'n' must be one of [1, 3]"
    ]


def test_reply_problems_honour_the_whole_dialect() -> None:
    schema = {
        "type": "object",
        "properties": {
            "answer": {"type": "string", "pattern": "^[A-Z]"},
            "recipes": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "serves": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]},
            "place": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    good = {"answer": "Hi", "recipes": ["Paella"], "serves": None, "place": {"city": "Rome"}}
    assert reply_problems(good, schema) == []

    bad = {"answer": "hi", "recipes": [], "serves": 0, "place": {}}
    assert reply_problems(bad, schema) == [
        "field 'answer': 'hi' does not match '^[A-Z]'",
        "field 'recipes': [] should be non-empty",
        "field 'serves': 0 is not valid under any of the given schemas",
        "missing field 'place.city'",
    ]


def test_a_long_problem_is_cut_short() -> None:
    [problem] = reply_problems({"a": "x" * 1000}, {"properties": {"a": {"maxLength": 3}}})
    assert problem.startswith("field 'a': 'xxx")
    assert len(problem) < 200


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"answer": "Hi", "recipes": ["a"', {"answer": "Hi", "recipes": ["a"]}),
        ("Sure: {'answer': 'single quotes',}", {"answer": "single quotes"}),
        ('```json\n{"answer": "fenced"\n```', {"answer": "fenced"}),
        ("no JSON here at all", None),
        ("{}", None),
    ],
)
def test_mend_object(text: str, expected: dict[str, object] | None) -> None:
    assert mend_object(text) == expected


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


def test_json_repair_is_loaded_only_to_mend_a_reply() -> None:
    assert imported("import bot.runtime, bot.structured", "json_repair") == []
    mended = "from bot.structured import mend_object\nassert mend_object('{\"a\": 1') == {'a': 1}"
    assert imported(mended, "json_repair") != []
