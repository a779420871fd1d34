from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from bot.errors import ConfigError
from config.agents import (
    AgentsFile,
    crontab_fields,
    load_agents,
    normalise_response_shape,
    parse_duration,
)

REPO = Path(__file__).resolve().parents[2]

CHEF = {
    "id": "chef",
    "name": "Chef",
    "context": "You are a chef.",
    "first_message": "Hello!",
    "response_shape": {"answer": "String, the reply", "recipes": "List of strings, recipes"},
}


def write(tmp_path: Path, document: object, name: str = "agents.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def refused(tmp_path: Path, document: object) -> str:
    path = write(tmp_path, document)
    with pytest.raises(ConfigError) as caught:
        load_agents(path)
    return str(caught.value)


def test_shipped_agents_file_is_valid() -> None:
    agents = load_agents(REPO / "agents.yaml")
    assert len(agents.agents) >= 2
    chef = agents.get("chef")
    assert agents.default is chef
    assert chef.first_message == (
        "Hello, I am your personal chef and cooking advisor. What can I do for you today?"
    )
    assert chef.reply_field == "answer"
    assert chef.response_shape is not None
    properties = chef.response_shape["properties"]
    assert isinstance(properties, dict)
    assert list(properties) == ["answer", "recipes", "ingredients", "summary"]
    assert "10" in chef.instructions
    assert "allerg" in chef.instructions.lower()
    assert chef.goal_check is not None
    assert chef.goal_check.every == timedelta(hours=1)


def test_simple_shape_becomes_a_strict_schema() -> None:
    schema = normalise_response_shape(
        {
            "answer": "String, the reply",
            "recipes": "List of strings with the names of the recipes",
            "servings": "Integer, how many people",
            "price": "Number in euros",
            "vegan": "Boolean, whether it is vegan",
            "note": "anything else",
            "extra": {"type": "array", "items": {"type": "integer"}},
        }
    )
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == [
        "answer",
        "recipes",
        "servings",
        "price",
        "vegan",
        "note",
        "extra",
    ]
    properties = schema["properties"]
    assert properties["answer"] == {"type": "string", "description": "String, the reply"}
    assert properties["recipes"]["type"] == "array"
    assert properties["recipes"]["items"] == {"type": "string"}
    assert properties["servings"]["type"] == "integer"
    assert properties["price"]["type"] == "number"
    assert properties["vegan"]["type"] == "boolean"
    assert properties["note"]["type"] == "string"
    assert properties["extra"] == {"type": "array", "items": {"type": "integer"}}


def test_json_schema_shape_is_kept() -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}, "score": {"type": "number"}},
        "required": ["answer"],
    }
    assert normalise_response_shape(schema) == schema


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (90, timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("1h", timedelta(hours=1)),
        ("1h30m", timedelta(minutes=90)),
        ("2d", timedelta(days=2)),
        (" 1H ", timedelta(hours=1)),
    ],
)
def test_durations(value: object, expected: timedelta) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize("value", ["soon", "10", "1x", "30s", 5, True, "1h junk"])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError, match=r"duration|minute"):
        parse_duration(value)


def test_minimal_file_and_defaults(tmp_path: Path) -> None:
    agents = load_agents(write(tmp_path, {"agents": [CHEF]}))
    chef = agents.default
    assert chef.id == "chef"
    assert chef.context_tokens == 3000
    assert chef.goal is None
    assert chef.goal_check is None
    assert chef.model is None
    assert chef.effective_model("gpt-4o-mini") == "gpt-4o-mini"
    assert chef.apology


def test_channel_bindings(tmp_path: Path) -> None:
    tutor = {
        "id": "tutor",
        "name": "Tutor",
        "context": "You teach.",
        "first_message": "Hi",
        "bindings": {"slack": ["C0TUTOR", "T0B:C0SHARED"], "discord": [123456789012345678]},
    }
    agents = load_agents(write(tmp_path, {"default_agent": "chef", "agents": [CHEF, tutor]}))
    assert agents.get("tutor").bindings.discord == ("123456789012345678",)
    assert agents.for_channel("slack", "C0TUTOR").id == "tutor"
    assert agents.for_channel("slack", "C0OTHER").id == "chef"
    assert agents.for_channel("slack", "C0SHARED", workspace="T0B").id == "tutor"
    assert agents.for_channel("slack", "C0SHARED", workspace="T0A").id == "chef"
    assert agents.for_channel("discord", "123456789012345678").id == "tutor"
    assert agents.for_channel("discord", "99999").id == "chef"
    assert agents.find("nobody") is None


def test_goal_check_forms(tmp_path: Path) -> None:
    cron_agent = {
        **CHEF,
        "goal": "Pick a recipe",
        "goal_check": {
            "cron": "0 9 * * 1-5",
            "timezone": "Europe/Madrid",
            "post_to": "slack:C0REPORT",
        },
    }
    agent = load_agents(write(tmp_path, {"agents": [cron_agent]})).default
    assert agent.goal_check is not None
    assert agent.goal_check.cron == "0 9 * * 1-5"
    assert agent.goal_check.post_to == "slack:C0REPORT"


# refusals: each names the file, the agent and the field ---------------------------------


@pytest.mark.parametrize(
    ("change", "field", "hint"),
    [
        ({"response_shape": "answer please"}, "response_shape", "mapping"),
        ({"response_shape": {"type": "object", "properties": {}}}, "response_shape", "properties"),
        ({"response_shape": {"answer": 3}}, "response_shape", "description"),
        ({"response_shape": {"bad name": "String"}}, "response_shape", "valid name"),
        ({"reply_field": "text"}, "reply_field", "'text' is not a field of response_shape"),
        (
            {"response_shape": {"answer": "List of strings", "x": "String"}},
            "reply_field",
            "must be a string",
        ),
        ({"context": ""}, "context", "at least 1 character"),
        ({"first_message": None}, "first_message", "string"),
        ({"temperature": 3}, "temperature", "less than or equal to 2"),
        ({"context_tokens": 10}, "context_tokens", "greater than or equal to 200"),
        ({"max_turns": 0}, "max_turns", "greater than 0"),
        ({"goal_check": {"every": "1h"}}, "goal", "needs a goal"),
        (
            {"goal": "g", "goal_check": {"every": "1h", "cron": "* * * * *"}},
            "goal_check",
            "exactly one",
        ),
        ({"goal": "g", "goal_check": {}}, "goal_check", "exactly one"),
        ({"goal": "g", "goal_check": {"cron": "61 * * * *"}}, "goal_check", "crontab"),
        ({"goal": "g", "goal_check": {"every": "often"}}, "goal_check.every", "duration"),
        (
            {"goal": "g", "goal_check": {"every": "1h", "timezone": "Mars/Base"}},
            "goal_check.timezone",
            "Mars/Base",
        ),
        (
            {"goal": "g", "goal_check": {"every": "1h", "post_to": "email:x"}},
            "goal_check.post_to",
            "thread",
        ),
        ({"bindings": {"slack": ["general"]}}, "bindings.slack", "Slack channel id"),
        ({"bindings": {"discord": ["abc"]}}, "bindings.discord", "Discord channel id"),
        ({"bindings": {"teams": ["x"]}}, "bindings.teams", "Extra inputs"),
        ({"personality": "x"}, "personality", "Extra inputs"),
        ({"id": "Chef Bot"}, "id", "pattern"),
    ],
)
def test_bad_agent_fields_are_named(
    tmp_path: Path, change: dict[str, object], field: str, hint: str
) -> None:
    message = refused(tmp_path, {"agents": [{**CHEF, **change}]})
    agent_name = change.get("id", "chef")
    assert message.startswith(f"{tmp_path / 'agents.yaml'}: agent {agent_name!r}: {field}: "), (
        message
    )
    assert hint in message
    assert "Traceback" not in message


def test_agent_without_id_is_named_by_position(tmp_path: Path) -> None:
    nameless = {key: value for key, value in CHEF.items() if key != "id"}
    message = refused(tmp_path, {"agents": [CHEF, nameless]})
    assert ": agents[1]: id: Field required" in message


def test_file_level_problems(tmp_path: Path) -> None:
    assert "is not the id of an agent" in refused(
        tmp_path, {"default_agent": "waiter", "agents": [CHEF]}
    )
    assert "agent 'chef': id: used by more than one agent" in refused(
        tmp_path, {"agents": [CHEF, CHEF]}
    )
    assert "agents: " in refused(tmp_path, {"agents": []})
    assert "'agents' list" in refused(tmp_path, ["not", "a", "mapping"])
    double = {**CHEF, "id": "other", "bindings": {"slack": ["C0ONE"]}}
    first = {**CHEF, "bindings": {"slack": ["C0ONE"]}}
    assert "slack channel C0ONE is already bound to agent 'chef'" in refused(
        tmp_path, {"agents": [first, double]}
    )


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text("agents:\n  - id: chef\n    name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_agents(path)
    assert str(caught.value).startswith(f"{path}: line ")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_agents(tmp_path / "nope.yaml")


def test_many_errors_are_capped(tmp_path: Path) -> None:
    broken = [{"id": f"a{n}"} for n in range(10)]
    message = refused(tmp_path, {"agents": broken})
    assert message.count("\n") == 5
    assert message.endswith("more")


def test_model_is_the_whole_file() -> None:
    with pytest.raises(ValueError, match="agents"):
        AgentsFile.model_validate({})


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("61 * * * *", "minute '61' is out of range 0-59"),
        ("* * * * 8", "day of week '8' is out of range 0-7"),
        ("*/0 * * * *", "the step must be at least 1"),
        ("* * * jan/2 *", "month names take no step"),
        ("10-5 * * * *", "ends before it starts"),
        ("a * * * *", "'a' is not a number"),
        ("* * ? * *", "is not a number, a range or */step"),
        ("* * * * * *", "needs five fields"),
    ],
)
def test_crontab_problems_are_named(expression: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        crontab_fields(expression)


def test_crontab_weekdays_become_names_and_sunday_is_0_or_7() -> None:
    assert crontab_fields("0 9 * * 1-5").day_of_week == "mon,tue,wed,thu,fri"
    assert crontab_fields("0 9 * * sat-sun").day_of_week == "sat,sun"
    assert crontab_fields("0 9 * * sun-mon").day_of_week == "sun,mon"
    assert crontab_fields("0 9 * * mon-fri/2").day_of_week == "mon,wed,fri"
    assert crontab_fields("0 9 last JAN *") == ("0", "9", "last", "JAN", "*")


# model providers ----------------------------------------------------------------------------


def test_an_agent_names_a_configured_provider(tmp_path: Path) -> None:
    path = write(tmp_path, {"agents": [{**CHEF, "provider": "local"}]})
    agents = load_agents(path, providers=("default", "local"))
    chef = agents.get("chef")
    assert chef.provider == "local"
    assert chef.effective_model("gpt-4o-mini", {"local": "llama3.1"}) == "llama3.1"
    assert chef.effective_model("gpt-4o-mini", {}) == "gpt-4o-mini"
    own = load_agents(
        write(tmp_path, {"agents": [{**CHEF, "provider": "local", "model": "qwen3"}]}),
        providers=("default", "local"),
    )
    assert own.get("chef").effective_model("gpt-4o-mini", {"local": "llama3.1"}) == "qwen3"


def test_an_unknown_provider_is_refused_with_the_configured_ones(tmp_path: Path) -> None:
    path = write(tmp_path, {"agents": [CHEF, {**CHEF, "id": "tutor", "provider": "lcoal"}]})
    with pytest.raises(ConfigError) as caught:
        load_agents(path, providers=("default", "local"))
    assert str(caught.value) == (
        f"{path}: agent 'tutor': provider: 'lcoal' is not a configured model provider "
        "(configured: default, local); set MODEL_PROVIDERS__LCOAL__BASE_URL or __API_KEY"
    )
