"""People's ratings of replies (the good / bad buttons under them), recorded in one place.

Every platform records a click through :meth:`FeedbackBook.rate`; whoever counts ratings
(metrics) watches that one place with :meth:`FeedbackBook.watch`. A watcher is told each new
or changed rating, never a repeated click, so a person counts once per reply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from bot.logs import conversation_context
from memory.base import Feedback, FeedbackRecords, Platform, Rating

logger = logging.getLogger(__name__)

FeedbackWatcher = Callable[["Rated"], None]
"""Told each new or changed rating (synchronously: keep it quick, never block)."""


@dataclass(frozen=True, slots=True)
class Rated:
    """A rating as stored, and what it replaced."""

    feedback: Feedback
    before: Rating | None
    """The person's earlier rating of this reply (None: their first)."""

    @property
    def changed(self) -> bool:
        """New, or different from the person's earlier rating."""
        return self.before != self.feedback.rating


class FeedbackBook:
    """Records ratings in the store and tells the watchers."""

    def __init__(self, store: FeedbackRecords, *, watchers: tuple[FeedbackWatcher, ...] = ()):
        self._store = store
        self._watchers = list(watchers)

    def watch(self, watcher: FeedbackWatcher) -> None:
        """Tell ``watcher`` every new or changed rating from now on."""
        self._watchers.append(watcher)

    async def rate(
        self, *, message_id: str, platform: Platform, person: str, rating: Rating
    ) -> Rated | None:
        """Record ``person``'s rating of the reply ``message_id``; None for no such reply.
        Raises the store's errors."""
        stored = await self._store.rate_message(
            message_id=message_id, platform=platform, person=person, rating=rating
        )
        if stored is None:
            return None
        rated = Rated(feedback=stored[0], before=stored[1])
        if rated.changed:
            logger.info(
                "reply rated %s",
                rating,
                extra=conversation_context(
                    conversation_id=rated.feedback.conversation_id, platform=platform
                ),
            )
            for watcher in self._watchers:
                try:
                    watcher(rated)
                except Exception:
                    logger.exception("a feedback watcher failed")
        return rated
