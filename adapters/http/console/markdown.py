"""Model and user text as safe HTML: CommonMark with raw HTML off, images off (no fetches from
addresses in a message), and links only to http(s) and mailto."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup

_SAFE_SCHEMES = ("http://", "https://", "mailto:")


def _valid_link(url: str) -> bool:
    return url.strip().lower().startswith(_SAFE_SCHEMES)


def _link_open(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
    rendered: str = renderer.renderToken(tokens, idx, options, env)
    return rendered


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).disable("image")
    md.validateLink = _valid_link  # type: ignore[method-assign]
    md.add_render_rule("link_open", _link_open)
    return md


_MD = _parser()


def render_markdown(text: str) -> Markup:
    """HTML for ``text``; nothing in it can add markup of its own."""
    return Markup(_MD.render(text))  # noqa: S704 - markdown-it escapes all text, html is off
