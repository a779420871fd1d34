"""A conversation that people had in Slack, read by a program through the API: same store,
platform and key in the answer, messages and goal checks, but answered only in Slack."""

from __future__ import annotations

from tests.support.api import ApiFactory
from tests.support.fake_slack import TEAM, FakeSlack, mention_event
from tests.support.slack_bot import CHANNEL, BotFactory


async def test_a_slack_conversation_is_readable_through_the_api(
    start_slack: BotFactory, fake_slack: FakeSlack, api_factory: ApiFactory
) -> None:
    bot = await start_slack()
    mention = mention_event("my name is Bob")
    await bot.deliver(mention)
    await bot.settle()
    api = await api_factory(store=bot.store)
    client = await api.as_key("write")

    found = await client.get("/api/v1/conversations", params={"platform": "slack"})
    assert found.status_code == 200
    assert found.json()["total"] == 1
    (conversation,) = found.json()["items"]
    assert conversation["key"] == {
        "platform": "slack",
        "workspace": TEAM,
        "channel": CHANNEL,
        "thread": mention["ts"],
    }
    messages = await client.get(f"/api/v1/conversations/{conversation['id']}/messages")
    assert [(m["role"], m["text"]) for m in reversed(messages.json()["items"])] == [
        ("user", "my name is Bob"),
        ("assistant", "You said: Ada: my name is Bob"),
    ]
    checked = await client.post(f"/api/v1/conversations/{conversation['id']}/goal-check")
    assert checked.status_code == 201
    assert checked.json()["conversation_id"] == conversation["id"]

    answer = await client.post(
        f"/api/v1/conversations/{conversation['id']}/messages", json={"text": "hello?"}
    )
    assert answer.status_code == 409
    assert "lives on slack" in answer.json()["error"]["message"]
    assert len(fake_slack.thread(CHANNEL, mention["ts"])) == 1, "nothing was posted to Slack"
