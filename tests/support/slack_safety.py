"""Whether anything the bot sent to the fake Slack could mention someone or link somewhere it
should not.

:func:`assert_no_mentions` looks at everything the bot sent: every Web API call's arguments
(walked recursively, JSON strings too), what it posted to response URLs, what it put in Socket
Mode acknowledgements, and each message as Slack shows it (a stream's pieces joined). A
control sequence (``<!here>``, ``<@U1>``, ``<#C1>``, ``<!subteam^S1>``...) may only be one the
product builds from ids, listed in ``allowed``. Markdown that Slack renders itself
(``markdown_text``, ``markdown`` blocks, streamed messages) is also read with its entities
decoded and must link only to web and mail addresses. No call may ask Slack to link names
(``link_names``, ``parse=full``), which would make a bare ``@here`` a mention.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from tests.support.fake_slack import FakeSlack

CONTROL = re.compile(r"<\s*[!@#][^<>]*>?")
"""A Slack control sequence that mentions: ``<!here>``, ``<!subteam^S1|@team>``, ``<@U1>``,
``<#C1>`` (its end optional: a stream may carry the rest later)."""
MARKDOWN_LINK = re.compile(r"\]\([ \t]*<?(\S*)|<([A-Za-z][A-Za-z0-9+.-]{1,31}:\S*)")
"""A Markdown link's target: ``[x](target)``, ``<scheme:...>``."""
SAFE_SCHEMES = ("https://", "http://", "mailto:")
MARKDOWN_KEYS = frozenset({"markdown_text"})
"""Arguments whose text Slack renders as Markdown."""
_NAME_LINKING: dict[str, frozenset[object]] = {
    "link_names": frozenset({True, "1", "true", "True"}),  # True == 1
    "parse": frozenset({"full", "client"}),
}


def mention_problems(fake: FakeSlack, *, allowed: Iterable[str] = ()) -> list[str]:
    """Everything sent to ``fake`` that could mention someone, one line each."""
    permitted = frozenset(allowed)
    problems: list[str] = []
    for index, call in enumerate(fake.calls):
        where = f"{call.method} #{index}"
        problems += _problems(call.args, where, permitted)
        for name, values in _NAME_LINKING.items():
            if call.args.get(name) in values:
                problems.append(f"{where}: asks Slack to link names ({name}={call.args[name]!r})")
    for index, response in enumerate(fake.responses):
        body = {key: value for key, value in response.items() if key != "_url"}
        problems += _problems(body, f"response_url #{index}", permitted)
    for envelope in fake.envelopes:
        if envelope.ack_payload:
            problems += _problems(envelope.ack_payload, f"ack of {envelope.type}", permitted)
    for message in fake.messages:
        where = f"message {message.ts} as shown"
        markdown = message.markdown
        problems += _text_problems(message.text, where, permitted, markdown=markdown)
    return problems


def assert_no_mentions(fake: FakeSlack, *, allowed: Iterable[str] = ()) -> None:
    problems = mention_problems(fake, allowed=allowed)
    assert not problems, "Slack was sent what could mention someone:\n" + "\n".join(problems)


def _problems(value: Any, where: str, allowed: frozenset[str], key: str = "") -> list[str]:
    problems: list[str] = []
    for path, leaf_key, text in _strings(value, where, key):
        markdown = leaf_key in MARKDOWN_KEYS
        problems += _text_problems(text, path, allowed, markdown=markdown)
    return problems


def _strings(value: Any, path: str, key: str) -> Iterator[tuple[str, str, str]]:
    """Every string in ``value`` with its path and the key it sits under (a ``markdown``
    block's text under ``markdown_text``: Slack renders both as Markdown)."""
    if isinstance(value, dict) and value.get("type") == "markdown":
        for name, item in value.items():
            inner = "markdown_text" if name == "text" else str(name)
            yield from _strings(item, f"{path}.{name}", inner)
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _strings(item, f"{path}.{name}", str(name))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            yield from _strings(item, f"{path}[{position}]", key)
    elif isinstance(value, str):
        decoded = _json(value)
        if decoded is not None:
            yield from _strings(decoded, path, key)
        else:
            yield path, key, value


def _json(text: str) -> Any:
    if not text.lstrip().startswith(("[", "{")):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, (dict, list)) else None


def _text_problems(text: str, where: str, allowed: frozenset[str], *, markdown: bool) -> list[str]:
    readings = [text, html.unescape(text)] if markdown else [text]
    problems = [
        f"{where}: {match.group(0)!r} in {text!r}"
        for reading in readings
        for match in CONTROL.finditer(reading)
        if match.group(0) not in allowed
    ]
    if markdown:
        problems += [
            f"{where}: a link to {match.group(0)!r} in {text!r}"
            for match in MARKDOWN_LINK.finditer(text)
            if not _may_link(match, text)
        ]
    return list(dict.fromkeys(problems))


def _may_link(match: re.Match[str], text: str) -> bool:
    """A web or mail target, or, at the end of a stream's piece, the start of one."""
    target = (match.group(1) or match.group(2) or "").lower()
    if target.startswith(SAFE_SCHEMES):
        return True
    return match.end() == len(text) and any(scheme.startswith(target) for scheme in SAFE_SCHEMES)
