"""``slack-manifest.yaml``: the shape Slack's manifest reference documents, and in step with
the code (every event the adapter listens to is subscribed and the other way round; every
Web API method the adapter calls has its scope)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from adapters.slack.agent import SUGGESTED_PROMPTS
from tests.support.fake_slack import (
    BOT_USER,
    FakeSlack,
    agent_session_stopped,
    app_home_opened,
    assistant_thread_started,
    mention_event,
    message_event,
    new_ts,
)
from tests.support.slack_bot import DM, BotFactory, texts

ROOT = Path(__file__).resolve().parents[3]
MANIFEST = ROOT / "slack-manifest.yaml"
SLACK_CODE = sorted((ROOT / "adapters" / "slack").glob("*.py"))

_TEXT = {"type": "string", "minLength": 1}
_FLAG = {"type": "boolean"}
_NAMES = {"type": "array", "items": {"type": "string", "maxLength": 50}, "uniqueItems": True}


def _object(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(required),
        "properties": properties,
    }


SCHEMA: dict[str, Any] = _object(
    {
        "_metadata": _object(
            {"major_version": {"const": 2}, "minor_version": {"type": "integer"}},
            "major_version",
        ),
        "display_information": _object(
            {
                "name": {**_TEXT, "maxLength": 35},
                "description": {**_TEXT, "maxLength": 140},
                "background_color": {"type": "string", "pattern": "^#[0-9a-fA-F]{3,6}$"},
                "long_description": {"type": "string", "minLength": 175, "maxLength": 4000},
            },
            "name",
        ),
        "features": _object(
            {
                "app_home": _object(
                    {
                        "home_tab_enabled": _FLAG,
                        "messages_tab_enabled": _FLAG,
                        "messages_tab_read_only_enabled": _FLAG,
                    }
                ),
                "bot_user": _object(
                    {"display_name": {**_TEXT, "maxLength": 80}, "always_online": _FLAG},
                    "display_name",
                ),
                "agent_view": _object(
                    {
                        "agent_description": _TEXT,
                        "suggested_prompts": {
                            "type": "array",
                            "minItems": 1,
                            "items": _object(
                                {"title": _TEXT, "message": _TEXT}, "title", "message"
                            ),
                        },
                    },
                    "agent_description",
                ),
                "slash_commands": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 50,
                    "items": _object(
                        {
                            "command": {"type": "string", "pattern": "^/", "maxLength": 32},
                            "description": {**_TEXT, "maxLength": 2000},
                            "usage_hint": {**_TEXT, "maxLength": 1000},
                            "should_escape": _FLAG,
                            "url": {"type": "string", "pattern": "^https?://"},
                        },
                        "command",
                        "description",
                    ),
                },
            },
        ),
        "oauth_config": _object({"scopes": _object({"bot": _NAMES}, "bot")}, "scopes"),
        "settings": _object(
            {
                "event_subscriptions": _object(
                    {
                        "bot_events": _NAMES,
                        "request_url": {"type": "string", "pattern": "^https?://"},
                    },
                    "bot_events",
                ),
                "interactivity": _object(
                    {"is_enabled": _FLAG, "request_url": {"type": "string"}}, "is_enabled"
                ),
                "org_deploy_enabled": _FLAG,
                "socket_mode_enabled": _FLAG,
                "token_rotation_enabled": _FLAG,
            },
        ),
    },
    "display_information",
)
"""The parts of Slack's app manifest Parley uses, as its manifest reference describes them
(limits included); anything else (a typo, the retired ``assistant_view``) is refused."""

SCOPES = {
    "auth.test": set(),
    "chat.postMessage": {"chat:write"},
    "chat.postEphemeral": {"chat:write"},
    "chat.update": {"chat:write"},
    "chat.delete": {"chat:write"},
    "chat.startStream": {"chat:write"},
    "chat.appendStream": {"chat:write"},
    "chat.stopStream": {"chat:write"},
    "agents.sessions.setStatus": {"chat:write", "assistant:write"},
    "agents.sessions.rename": {"chat:write", "assistant:write"},
    "assistant.threads.setStatus": {"chat:write"},
    "assistant.threads.setSuggestedPrompts": {"assistant:write"},
    "conversations.replies": {"channels:history", "groups:history", "im:history", "mpim:history"},
    "users.info": {"users:read"},
    "files.upload.v2": {"files:write"},
}
"""Each Web API method the adapter calls, and the bot scopes Slack's reference lists for it."""
SOCKET_MODE = {"is_connected", "issue_new_wss_url"}
"""Calls on the Socket Mode client (the app-level token's ``connections:write``)."""
EVENTS = {
    "message": {"message.channels", "message.groups", "message.im", "message.mpim"},
}
"""Listened events subscribed under other names (``message`` per kind of conversation)."""


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    return loaded


def code() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in SLACK_CODE)


def called_methods() -> set[str]:
    """Web API methods called through a client anywhere in the adapter: ``chat_postMessage``
    is ``chat.postMessage``."""
    names = set(re.findall(r"client\.([a-z]+_[A-Za-z0-9_]+)\(", code())) - SOCKET_MODE
    return {name.replace("_", ".") for name in names}


def listened_events() -> set[str]:
    return set(re.findall(r'app\.event\("([a-z_]+)"\)', code()))


def test_the_manifest_has_the_shape_slack_documents() -> None:
    jsonschema.validate(manifest(), SCHEMA)
    features = manifest()["features"]
    assert "assistant_view" not in features, "retired for new apps: agent_view"
    assert features["agent_view"]["suggested_prompts"] == [dict(p) for p in SUGGESTED_PROMPTS], (
        "the prompts Slack shows at first are the ones the adapter sets"
    )
    assert manifest()["settings"]["socket_mode_enabled"] is True
    assert manifest()["settings"]["interactivity"]["is_enabled"] is True, "buttons need it"
    assert [c["command"] for c in features["slash_commands"]] == ["/agent"]


@pytest.mark.parametrize(
    "broken",
    [
        {"features": {"assistant_view": {"assistant_description": "old"}}},
        {"features": {"agent_view": {"suggested_prompts": []}}},
        {"display_information": {"name": "x" * 36}},
        {"settings": {"event_subscriptions": {"bot_events": ["app_mention", "app_mention"]}}},
        {"oauth_config": {"scopes": {"bot": ["chat:write"], "bots": []}}},
    ],
)
def test_the_schema_refuses_what_slack_refuses(broken: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**manifest(), **broken}, SCHEMA)


def test_every_event_listened_to_is_subscribed_and_back() -> None:
    subscribed = set(manifest()["settings"]["event_subscriptions"]["bot_events"])
    expected: set[str] = set()
    for event in listened_events():
        expected |= EVENTS.get(event, {event})
    assert "agent_session_stopped" in expected
    assert "app_home_opened" in expected
    assert subscribed == expected


def test_every_method_called_has_its_scope() -> None:
    called = called_methods()
    assert "agents.sessions.setStatus" in called
    unknown = called - set(SCOPES)
    assert not unknown, f"add the scopes of {unknown} to SCOPES (from Slack's reference)"
    requested = set(manifest()["oauth_config"]["scopes"]["bot"])
    for method in called:
        assert SCOPES[method] <= requested, method
    assert {"app_mentions:read", "commands", "im:history", "channels:history"} <= requested


def manifest_event(name: str) -> dict[str, Any]:
    """A realistic event for each subscription, addressed to the bot."""
    text = f"<@{BOT_USER}> hello"
    if name == "app_mention":
        return mention_event("hello")
    if name.startswith("message."):
        kind = name.removeprefix("message.").rstrip("s")
        channel = {"channel": "C0KITCHEN", "group": "G0PRIVATE", "im": DM, "mpim": "G0MPIM"}
        return message_event(text, channel=channel[kind], channel_type=kind)
    if name == "app_home_opened":
        return app_home_opened(channel=DM)
    if name == "agent_session_stopped":
        return agent_session_stopped(channel=DM, thread_ts=new_ts())
    started = assistant_thread_started(channel=DM)
    if name == "assistant_thread_started":
        return started
    return {"type": name, "assistant_thread": started["assistant_thread"], "event_ts": new_ts()}


async def test_every_subscribed_event_is_acknowledged_and_used(
    start_slack: BotFactory, fake_slack: FakeSlack
) -> None:
    names = manifest()["settings"]["event_subscriptions"]["bot_events"]
    bot = await start_slack()

    events = {name: manifest_event(name) for name in names}
    for event in events.values():
        await bot.deliver(event)  # unacknowledged (no listener) would time out here
    await bot.settle()

    for name, event in events.items():
        if name.startswith(("message.", "app_mention")):
            assert texts(fake_slack, event["ts"], event["channel"]) == ["You said: Ada: hello"]
    assert fake_slack.calls_to("assistant.threads.setSuggestedPrompts")
