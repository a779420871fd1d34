"""Text across the Slack boundary: the model's Markdown out (as Markdown Slack renders itself,
or as Slack mrkdwn where Slack takes no Markdown), Slack markup in as plain text for the model.

Slack's mrkdwn is not Markdown: bold is ``*x*``, italics ``_x_``, strike ``~x~``, links
``<url|text>``, no headings, and ``&``, ``<`` and ``>`` must always be escaped because Slack
reads ``<...>`` as a control sequence (also inside code, where Slack shows the entities as the
characters). Code blocks and inline code keep their content as written otherwise.

Text from a model or a person never mentions anyone: Slack's control sequences (``<!here>``,
``<!channel>``, ``<!everyone>``, ``<!subteam^S1>``, ``<@U1>``, ``<#C1>``) only come from the
product, built from ids. Links are made for web and mail addresses alone
(:func:`is_safe_link`); anything else shows as written. Three renderings keep that rule, one
per kind of Slack field: :func:`safe_markdown` for the Markdown Slack renders itself (every
reply and thread post: ``markdown_text`` and ``markdown`` blocks), :func:`markdown_to_mrkdwn`
(and :func:`escape`) for the few mrkdwn fields left (response URLs, slash-command acks,
ephemeral command lines, a file's comment, notification fallbacks), :func:`safe_plain_text`
for fields shown as written (titles, ``plain_text`` objects). Bare
``@here`` in mrkdwn is plain text as long as no call asks Slack to link names (``link_names``,
``parse=full``), and none does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from adapters.links import SAFE_LINK_SCHEMES, is_safe_link

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


def _link_target(url: str) -> str:
    """``url`` for inside ``<...|...>``: escaped, and a ``|`` encoded so it cannot end the
    target early and start a label."""
    return escape(url).replace("|", "%7C")


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
        if not is_safe_link(url):
            return match.group(0)  # shown as written, escaped below like the rest
        if not label or label == url:
            return keep(f"<{_link_target(url)}>")
        return keep(f"<{_link_target(url)}|{escape(label).replace('|', '¦')}>")

    text = _LINK.sub(link, text)
    text = _AUTOLINK.sub(
        lambda m: keep(f"<{_link_target(m.group(1))}>") if is_safe_link(m.group(1)) else m[0],
        text,
    )
    text = escape(text)
    text = _BOLD_ITALIC.sub(lambda m: "\x02_" + m.group(2) + "_\x02", text)
    text = _BOLD.sub(lambda m: "\x02" + m.group(2) + "\x02", text)
    text = _STRIKE.sub(r"~\1~", text)
    text = _ITALIC_STAR.sub(r"_\1_", text)
    text = text.replace("\x02", "*")
    return _PLACEHOLDER.sub(lambda m: links[int(m.group(1))], text)


# Markdown and plain text -------------------------------------------------------------------

_JOINER = "\u2060"
"""WORD JOINER: invisible; after ``<``, ``@`` or a link's ``]`` it breaks the mention or link
Slack or Markdown would read there."""

_MENTION_START = re.compile(r"(<|&(?:lt|#0*60|#x0*3c);)(?=[!@#](?:[A-Za-z0-9]|\Z))", re.IGNORECASE)
"""``<`` (or an entity for it) opening a control sequence: ``<!here>``, ``<@U1>``, ``<#C1>``,
or ending the text before ``!`` and the rest arrive (streams grow)."""
_BROADCAST = re.compile(r"(?<![\w@/.+-])@(?=(?:here|channel|everyone|group)\b)", re.IGNORECASE)
"""A bare ``@here`` and the like, which some Slack surfaces link by name."""
_LINK_OPEN = re.compile(r"\](?=\()|^ {0,3}\[[^\]\n]+\](?=:)|<(?=[A-Za-z][A-Za-z0-9+.-]{1,31}:)")
"""Where Markdown opens a link's target: an inline link's ``](``, a reference definition's
``[name]:`` (the joiner goes between ``]`` and the following character) and an autolink's
``<scheme:``."""
_TARGET_LEAD = re.compile(r"[(:]?[ \t]*<?")


def safe_markdown(text: str) -> str:
    """Markdown for Slack to render (``markdown_text``), as written but unable to mention
    anyone or to link anywhere but a web or mail address.

    An invisible word joiner goes where Slack would read a mention (``<!here>``, ``<@U1>``,
    ``<#C1>``, the same with ``&lt;``, and a bare ``@here``) and, outside code, between a link
    and a target that is not ``http(s)://`` or ``mailto:``, so such a link shows as written.
    The result for a longer text extends the one for its beginning (but where the first
    characters of a target or a mention decide), so a stream can carry it piece by piece.
    """
    lines = text.split("\n")
    out: list[str] = []
    in_code = False
    for number, line in enumerate(lines, start=1):
        if line.strip().startswith(FENCE):
            in_code = not in_code
            out.append(line)
        else:
            out.append(line if in_code else _unlink_line(line, last=number == len(lines)))
    return _defuse("\n".join(out))


def safe_plain_text(text: str) -> str:
    """Text for a field Slack shows as written (titles, ``plain_text`` objects), with an
    invisible word joiner wherever some surface might still read a mention."""
    return _defuse(text)


def _defuse(text: str) -> str:
    text = _MENTION_START.sub(lambda m: m.group(1) + _JOINER, text)
    return _BROADCAST.sub("@" + _JOINER, text)


def _unlink_line(line: str, *, last: bool) -> str:
    """``line`` with a joiner after every link opening, outside code, whose target is not
    allowed. The end of the last line may be the start of a target still streaming in."""
    parts: list[str] = []
    position = 0
    for match in _CODE_SPAN.finditer(line):
        parts.append(_unlink(line[position : match.start()], open_end=False))
        parts.append(match.group(0))
        position = match.end()
    parts.append(_unlink(line[position:], open_end=last))
    return "".join(parts)


def _unlink(text: str, *, open_end: bool) -> str:
    def open_link(match: re.Match[str]) -> str:
        rest = text[match.end() :]
        lead = _TARGET_LEAD.match(rest)
        target = (rest[lead.end() :] if lead else rest).lower()
        if target.startswith(SAFE_LINK_SCHEMES):
            return match.group(0)
        if open_end and any(scheme.startswith(target) for scheme in SAFE_LINK_SCHEMES):
            return match.group(0)  # undecided until more text arrives
        return match.group(0) + _JOINER

    return _LINK_OPEN.sub(open_link, text)


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
