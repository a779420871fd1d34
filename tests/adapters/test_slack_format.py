"""Markdown to Slack mrkdwn, and Slack markup to plain text."""

from __future__ import annotations

import pytest

from adapters.slack_format import (
    markdown_to_mrkdwn,
    mentioned_users,
    remove_mention,
    slack_to_plain,
)


@pytest.mark.parametrize(
    ("markdown", "mrkdwn"),
    [
        ("**bold** and __bold__", "*bold* and *bold*"),
        ("*italic* and _italic_", "_italic_ and _italic_"),
        ("***both***", "*_both_*"),
        ("~~gone~~", "~gone~"),
        ("[Paella](https://example.com/paella)", "<https://example.com/paella|Paella>"),
        ("![a photo](https://example.com/p.png)", "<https://example.com/p.png|a photo>"),
        ("<https://example.com>", "<https://example.com>"),
        ("[https://example.com](https://example.com)", "<https://example.com>"),
        ("# Paella", "*Paella*"),
        ("### Step **one** ###", "*Step one*"),
        ("- rice\n* saffron\n+ stock", "• rice\n• saffron\n• stock"),
        ("  - nested", "  • nested"),
        ("> a quote", "> a quote"),
        ("---", "───"),
        ("1. first\n2. second", "1. first\n2. second"),
        ("salt & pepper <to taste>", "salt &amp; pepper &lt;to taste&gt;"),
        ("2 * 3 * 4 = 24", "2 * 3 * 4 = 24"),
        ("snake_case_name stays", "snake_case_name stays"),
        ("**bold *nested* yes**", "*bold _nested_ yes*"),
    ],
)
def test_markdown_becomes_mrkdwn(markdown: str, mrkdwn: str) -> None:
    assert markdown_to_mrkdwn(markdown) == mrkdwn


def test_links_escape_their_parts() -> None:
    assert (
        markdown_to_mrkdwn("[A & B | C](https://x.example/?a=1&b=2)")
        == "<https://x.example/?a=1&amp;b=2|A &amp; B ¦ C>"
    )


def test_code_blocks_keep_their_text() -> None:
    markdown = "Try:\n```python\nx = a**b  # **not bold**\nif x < 3: [no](link)\n```\nDone **now**."
    assert markdown_to_mrkdwn(markdown) == (
        "Try:\n```\nx = a**b  # **not bold**\nif x &lt; 3: [no](link)\n```\nDone *now*."
    )


def test_inline_code_keeps_its_text() -> None:
    assert markdown_to_mrkdwn("Run `a **b** <c>` then **go**") == (
        "Run `a **b** &lt;c&gt;` then *go*"
    )


def test_placeholder_characters_in_the_input_are_harmless() -> None:
    assert markdown_to_mrkdwn("odd \x00 0 \x01 [x](https://y.z)") == "odd  0  <https://y.z|x>"


def test_slack_markup_becomes_plain_text() -> None:
    text = (
        "<@U0OLU> see <#C0KITCHEN|kitchen> and <https://example.com|this page>, "
        "<https://example.com>, <mailto:ada@example.com|ada@example.com>, <!here>, "
        "<!subteam^S1|@cooks>, a &lt;b&gt; &amp;amp;"
    )
    assert slack_to_plain(text, {"U0OLU": "Olu"}) == (
        "@Olu see #kitchen and this page (https://example.com), https://example.com, "
        "ada@example.com, @here, @cooks, a <b> &amp;"
    )


def test_unknown_mentions_keep_their_id() -> None:
    assert slack_to_plain("hi <@U0NOBODY>") == "hi @U0NOBODY"


def test_mentions_and_their_removal() -> None:
    assert mentioned_users("<@U1> <@W2|w> <@U1> <#C1>") == ["U1", "W2"]
    assert remove_mention("<@U0PARLEY>   summary ", "U0PARLEY") == "summary"
    assert remove_mention("thanks <@U0PARLEY|parley>!", "U0PARLEY") == "thanks !"
    assert remove_mention("line one\n<@U0PARLEY> two", "U0PARLEY") == "line one\n two"
