"""Markdown to Slack mrkdwn, and Slack markup to plain text."""

from __future__ import annotations

import html
import re

import pytest

from adapters.slack.format import (
    is_safe_link,
    markdown_to_mrkdwn,
    mentioned_users,
    remove_mention,
    safe_markdown,
    safe_plain_text,
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


# nothing from a model or a person mentions anyone ------------------------------------------

MENTIONS = [
    "[!here](!here)",
    "[x](!channel)",
    "[x](!everyone)",
    "[x](!subteam^S1)",
    "[x](@U123)",
    "[x](#C123)",
    "[x](<!here>)",
    '[x](!here "title")',
    "![x](!here)",
    "<!channel>",
    "<!here|here>",
    "<@U123>",
    "<#C123>",
    "<!subteam^S1|@team>",
]
CONTROL = re.compile(r"<\s*[!@#]")
JOINER = "\u2060"


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("https://example.com", True),
        ("http://example.com/a?b=1", True),
        ("HTTPS://EXAMPLE.COM", True),
        ("mailto:ada@example.com", True),
        ("!here", False),
        ("@U123", False),
        ("#C123", False),
        ("!subteam^S1", False),
        ("http:!here", False),
        ("javascript:alert(1)", False),
        ("/relative/path", False),
        ("#anchor", False),
    ],
)
def test_only_web_and_mail_addresses_are_linked(target: str, safe: bool) -> None:
    assert is_safe_link(target) is safe


@pytest.mark.parametrize("spelling", MENTIONS)
@pytest.mark.parametrize("where", ["{}", "say {} now", "# {}", "- {}", "> {}", "**{}**"])
def test_mrkdwn_never_mentions(spelling: str, where: str) -> None:
    mrkdwn = markdown_to_mrkdwn(where.format(spelling))
    assert not CONTROL.search(mrkdwn), mrkdwn


def test_a_link_to_anything_else_shows_as_written() -> None:
    assert markdown_to_mrkdwn("[!here](!here)") == "[!here](!here)"
    assert markdown_to_mrkdwn("see [**this**](#setup)") == "see [*this*](#setup)"
    assert markdown_to_mrkdwn("[x](<!here>)") == "[x](&lt;!here&gt;)"
    assert markdown_to_mrkdwn("<http:!here> <https://ok.example>") == (
        "&lt;http:!here&gt; <https://ok.example>"
    )


def test_a_bar_in_a_link_target_cannot_start_its_label() -> None:
    assert markdown_to_mrkdwn("[x](https://a.example/|<!here>)") == (
        "<https://a.example/%7C&lt;!here|x>"
    )
    assert markdown_to_mrkdwn("<https://a.example/|!here>") == "<https://a.example/%7C!here>"


@pytest.mark.parametrize("spelling", MENTIONS)
def test_markdown_for_slack_never_mentions(spelling: str) -> None:
    for text in (spelling, f"say {spelling} now", f"`{spelling}`", f"```\n{spelling}\n```"):
        markdown = safe_markdown(text)
        assert not CONTROL.search(markdown), markdown
        assert not CONTROL.search(html.unescape(markdown)), markdown
        assert markdown.replace(JOINER, "") == text, "shown as written"


@pytest.mark.parametrize(
    ("markdown", "safe"),
    [
        ("[x](!here)", f"[x]{JOINER}(!here)"),
        ("[x]( <#C123> )", f"[x]{JOINER}( <{JOINER}#C123> )"),
        ("[r]: !here\n[x][r]", f"[r]{JOINER}: !here\n[x][r]"),
        ("<javascript:alert(1)>", f"<{JOINER}javascript:alert(1)>"),
        ("&lt;!here&gt; &#60;@U1&gt;", f"&lt;{JOINER}!here&gt; &#60;{JOINER}@U1&gt;"),
        (
            "ping @here, @Channel and @everyone",
            f"ping @{JOINER}here, @{JOINER}Channel and @{JOINER}everyone",
        ),
        (
            "ada@here.example, @heretic, example.com/@here",
            "ada@here.example, @heretic, example.com/@here",
        ),
        ("[x](/docs) and [y](#top)", f"[x]{JOINER}(/docs) and [y]{JOINER}(#top)"),
    ],
)
def test_markdown_for_slack_breaks_what_could_mention_or_link(markdown: str, safe: str) -> None:
    assert safe_markdown(markdown) == safe


def test_markdown_for_slack_keeps_the_rest_as_written() -> None:
    markdown = (
        "**Paella** needs rice, saffron & stock; see [the recipe](https://example.com/p).\n"
        "Mail [me](mailto:ada@example.com) or <https://example.com>. 1 < 2 > 0.\n"
        "> a quote\n"
        "```js\nhandlers[name](event); if (a < b) { /* <!-- x --> */ }\n```\n"
        "Call `fns[0](x)`, then `<b>` tags."
    )
    assert safe_markdown(markdown) == markdown


def test_markdown_for_slack_grows_as_its_text_grows() -> None:
    """A stream carries the result piece by piece: cut anywhere, the start's result begins
    the whole's, but inside an inline code span not yet closed and a word not yet whole."""
    reply = (
        "**Paella** needs rice & stock; see [the recipe](https://example.com/p) or "
        "[mail](mailto:a@example.com).\n```js\nhandlers[name](event); a < b && c;\n```\n"
        "Then `fns[0](x)`, <!here> and <@U123>, &lt;#C1&gt;, @channel. Done"
    )
    code = reply.index("`fns")
    word = reply.index("@channel")
    undecided = {
        *range(code + len("`fns[0](x"), code + len("`fns[0](x)`")),
        *range(word + 2, word + 8),
    }
    whole = safe_markdown(reply)
    for cut in range(len(reply)):
        if cut not in undecided:
            assert whole.startswith(safe_markdown(reply[:cut])), (cut, reply[:cut])


def test_plain_text_never_mentions() -> None:
    for spelling in MENTIONS:
        assert not CONTROL.search(safe_plain_text(f"Title {spelling}"))
    assert safe_plain_text("Paella & <b>rice</b> [x](y)") == "Paella & <b>rice</b> [x](y)"
    assert safe_plain_text("@here") == f"@{JOINER}here"
