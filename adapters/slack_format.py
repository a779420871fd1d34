"""Text across the Slack boundary: the model's Markdown out as Slack mrkdwn, Slack markup in as
plain text for the model.

Slack's mrkdwn is not Markdown: bold is ``*x*``, italics ``_x_``, strike ``~x~``, links
``<url|text>``, no headings, and ``&``, ``<`` and ``>`` must always be escaped because Slack
reads ``<...>`` as a control sequence (also inside code, where Slack shows the entities as the
characters). Code blocks and inline code keep their content as written otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

FENCE = "```"

_PROTECT = str.maketrans("", "", "\x00\x01\x02\x03")
"""Characters used as placeholders below; removed from the model's text first."""

_LINK = re.compile(r"!?\[([^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"\n]*\")?\s*\)")
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_BOLD_ITALIC = re.compile(r"(\*\*\*|___)(?=\S)(.+?)(?<=\S)\1")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_ITALIC_STAR = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])")
_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_BULLET = re.compile(r"^(\s*)[-*+][ \t]+(.*)$")
_QUOTE = re.compile(r"^ {0,3}>[ \t]?(.*)$")
_RULE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_PLACEHOLDER = re.compile("\x00(\\d+)\x01")


def escape(text: str) -> str:
    """Escape Slack's three control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markdown_to_mrkdwn(text: str) -> str:
    """Slack mrkdwn that shows ``text`` (Markdown, as models write it) as its author meant."""
    text = text.translate(_PROTECT)
    out: list[str] = []
    in_code = False
    for line in text.split("\n"):
        stripped = line.strip()
        if stripped.startswith(FENCE):
            if in_code:
                in_code = False
                out.append(FENCE + escape(stripped[len(FENCE) :].lstrip("`")))
            else:
                in_code = True
                out.append(FENCE)  # Slack has no languages: "```python" would show "python"
            continue
        out.append(escape(line) if in_code else _line(line))
    return "\n".join(out)


def _line(line: str) -> str:
    if _RULE.match(line):
        return "───"
    heading = _HEADING.match(line)
    if heading:
        title = _BOLD.sub(r"\2", heading.group(1))
        return f"*{_inline(title)}*" if title.strip() else ""
    bullet = _BULLET.match(line)
    if bullet:
        return f"{bullet.group(1)}• {_inline(bullet.group(2))}"
    quote = _QUOTE.match(line)
    if quote:
        return "> " + _inline(quote.group(1))  # a literal ">" is safe: every "<" is escaped
    return _inline(line)


def _inline(text: str) -> str:
    """Convert emphasis and links outside inline code; code spans keep their text."""
    parts: list[str] = []
    position = 0
    for match in _CODE_SPAN.finditer(text):
        parts.append(_emphasis(text[position : match.start()]))
        parts.append("`" + escape(match.group(2)) + "`")
        position = match.end()
    parts.append(_emphasis(text[position:]))
    return "".join(parts)


def _emphasis(text: str) -> str:
    links: list[str] = []

    def keep(rendered: str) -> str:
        links.append(rendered)
        return f"\x00{len(links) - 1}\x01"

    def link(match: re.Match[str]) -> str:
        label, url = match.group(1).strip(), match.group(2)
        if not label or label == url:
            return keep(f"<{escape(url)}>")
        return keep(f"<{escape(url)}|{escape(label).replace('|', '¦')}>")

    text = _LINK.sub(link, text)
    text = _AUTOLINK.sub(lambda m: keep(f"<{escape(m.group(1))}>"), text)
    text = escape(text)
    text = _BOLD_ITALIC.sub(lambda m: "\x02_" + m.group(2) + "_\x02", text)
    text = _BOLD.sub(lambda m: "\x02" + m.group(2) + "\x02", text)
    text = _STRIKE.sub(r"~\1~", text)
    text = _ITALIC_STAR.sub(r"_\1_", text)
    text = text.replace("\x02", "*")
    return _PLACEHOLDER.sub(lambda m: links[int(m.group(1))], text)


# inbound ---------------------------------------------------------------------------------

_ANGLE = re.compile(r"<([^<>\n]+)>")
_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def mentioned_users(text: str) -> list[str]:
    """User ids mentioned in Slack markup, in order, without repeats."""
    seen: dict[str, None] = {}
    for match in _USER_MENTION.finditer(text):
        seen.setdefault(match.group(1), None)
    return list(seen)


def remove_mention(text: str, user_id: str) -> str:
    """``text`` without mentions of ``user_id`` (the bot), whitespace tidied."""
    pattern = re.compile(r"<@" + re.escape(user_id) + r"(?:\|[^>]*)?>")
    return re.sub(r"[ \t]{2,}", " ", pattern.sub(" ", text)).strip()


def slack_to_plain(text: str, names: Mapping[str, str] | None = None) -> str:
    """Plain text for the model: mentions as ``@name``, channels as ``#name``, links as
    ``label (url)``, entities decoded."""
    known = names or {}

    def replace(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            user = target[1:]
            return "@" + (known.get(user) or label or user)
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            command = target[1:].split("^", 1)[0]
            if label:
                return label
            return "@" + command if command in {"here", "channel", "everyone"} else ""
        return _plain_link(target, label)

    return unescape(_ANGLE.sub(replace, text))


def unescape(text: str) -> str:
    """Decode the three entities Slack escapes (and only those)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _plain_link(url: str, label: str) -> str:
    if url.startswith("mailto:"):
        return label or url.removeprefix("mailto:")
    if not label or label == url:
        return url
    return f"{label} ({url})"
