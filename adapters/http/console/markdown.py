"""Model and user text as safe HTML: CommonMark with raw HTML off, images off (no fetches from
addresses in a message), and links only to http(s) and mailto.

markdown-it is pure Python: text made of its own syntax costs it 10 to 20 µs a character (a
run of 31,000 ``[`` takes over half a second), and a page shows up to a hundred messages that
anyone in a conversation can write. So text longer than ``MAX_MARKDOWN`` is shown as it is,
preformatted, and pages render through :class:`MarkdownRenderer`: off the event loop in one
worker thread, within a time budget, and each message once.

A thread still shares the GIL with the loop. The loop waits up to ``sys.getswitchinterval()``
(5 ms) each time it wants the GIL back, so the parser lets it go every few hundred
microseconds (``_let_the_loop_in``). And markdown-it allocates enough to set off full garbage
collections, 50 to 90 ms with the GIL held; its objects hold no cycles (reference counting
frees them all), so automatic collection is off while the worker renders.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from adapters.links import is_safe_link
from bot.lru import BoundedLRU
from memory.base import Message

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

MAX_MARKDOWN = 8_000
"""Characters; at most ~150 ms of markdown-it on its worst input (2-core Xeon, under load)."""
RENDER_BUDGET = 0.2
"""Seconds of rendering one page may start; messages left over show preformatted this time."""
CACHE_SIZE = 1_000
"""Rendered messages kept (ten pages of the longest; at most ~50 MB on hostile text)."""

_STEPS_BETWEEN_YIELDS = 128
"""Parser steps (~3 µs each on costly text) between two releases of the GIL."""
_steps = itertools.count()


def _link_open(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
    tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
    rendered: str = renderer.renderToken(tokens, idx, options, env)
    return rendered


def _let_the_loop_in(*_state: Any) -> bool:
    """A parser rule that matches nothing: every ``_STEPS_BETWEEN_YIELDS`` calls it releases
    the GIL, so the event loop, if it waits for it, takes it now and not at the next switch."""
    if next(_steps) % _STEPS_BETWEEN_YIELDS == 0:
        time.sleep(0)
    return False


def _parser() -> MarkdownIt:
    from markdown_it import MarkdownIt  # 2 MiB: imported when a console page first needs it

    md = MarkdownIt("commonmark", {"html": False}).disable("image")
    md.block.ruler.before("code", "let_the_loop_in", _let_the_loop_in)
    md.inline.ruler.before("text", "let_the_loop_in", _let_the_loop_in)
    md.validateLink = is_safe_link  # type: ignore[method-assign,assignment]
    md.add_render_rule("link_open", _link_open)
    return md


_MD: MarkdownIt | None = None
"""Built on first use, in the renderer's worker thread: a bot whose console shows no message
never loads markdown-it."""


def preformatted(text: str) -> Markup:
    """``text`` escaped, as it was written."""
    return Markup("<pre>{}</pre>").format(text)


def render_markdown(text: str) -> Markup:
    """HTML for ``text``; nothing in it can add markup of its own.

    Text longer than ``MAX_MARKDOWN`` comes back preformatted. ``Markup`` is HTML that a
    :class:`MarkdownRenderer` already made, and comes back as it is (the templates' filter).
    """
    if isinstance(text, Markup):
        return text
    if len(text) > MAX_MARKDOWN:
        return preformatted(text)
    global _MD  # noqa: PLW0603 - one parser, made once; two racing threads make equal ones
    if _MD is None:
        _MD = _parser()
    return Markup(_MD.render(text))  # noqa: S704 - markdown-it escapes all text, html is off


@dataclass(frozen=True)
class Rendered:
    messages: list[Message]
    """Copies whose ``text`` is its HTML (``Markup``), for the templates."""
    summary: Markup | None


class MarkdownRenderer:
    """Renders a page's texts in one hop to a worker thread, never on the event loop.

    Work starts only within ``budget`` seconds of the request; texts not reached by then show
    preformatted this time and are rendered on a later view. One worker renders for all pages,
    so the loop competes for the GIL with one thread at most, and a queue of views only makes
    more texts show preformatted. Messages never change: their HTML is kept by message id.
    """

    def __init__(
        self,
        *,
        budget: float = RENDER_BUDGET,
        capacity: int = CACHE_SIZE,
        render: Callable[[str], Markup] = render_markdown,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._budget = budget
        self._cache: BoundedLRU[str, Markup] = BoundedLRU(capacity)
        self._render = render
        self._clock = clock
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="console-markdown")

    async def messages(self, messages: Sequence[Message], *, summary: str = "") -> Rendered:
        """The messages (and a conversation's summary) as a page shows them."""
        texts: list[tuple[str | None, str]] = [(message.id, message.text) for message in messages]
        html = await self.render([*texts, (None, summary)] if summary else texts)
        shown = [
            message.model_copy(update={"text": text})
            for message, text in zip(messages, html, strict=False)
        ]
        return Rendered(messages=shown, summary=html[-1] if summary else None)

    async def render(self, texts: Sequence[tuple[str | None, str]]) -> list[Markup]:
        """HTML for each ``(cache key or None, text)``, in order."""
        html: dict[int, Markup] = {}
        todo: list[int] = []
        for i, (key, text) in enumerate(texts):
            found = self._cache.get(key) if key is not None else None
            if found is not None:
                html[i] = found
            elif len(text) > MAX_MARKDOWN:
                html[i] = preformatted(text)
            else:
                todo.append(i)
        if todo:
            deadline = self._clock() + self._budget
            done = await asyncio.get_running_loop().run_in_executor(
                self._worker, self._render_until, [texts[i][1] for i in todo], deadline
            )
            for n, i in enumerate(todo):
                key, text = texts[i]
                if n < len(done):
                    html[i] = done[n]
                    if key is not None:
                        self._cache.put(key, done[n])
                else:
                    html[i] = preformatted(text)
        return [html[i] for i in range(len(texts))]

    def _render_until(self, texts: list[str], deadline: float) -> list[Markup]:
        """In the worker: the HTML of the first texts, as many as start before ``deadline``
        (with automatic garbage collection off meanwhile: see the module's docstring)."""
        done: list[Markup] = []
        collecting = gc.isenabled()
        gc.disable()
        try:
            for text in texts:
                if self._clock() >= deadline:
                    break
                done.append(self._render(text))
        finally:
            if collecting:
                gc.enable()
        return done
