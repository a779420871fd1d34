"""Which remembered facts about a person a turn gets: the same rule in every store.

A person's memories are few (tens, a few hundred for a regular), so a store reads the newest
:data:`MAX_RECALL_SCAN` current memories of the scope through an index and ranks them here:
facts sharing more words with the message first, the newest first among equals. Facts that
share no word still follow, newest first, so what the bot knows about a person (their name,
an allergy) is there when the budget leaves room for it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from memory.rules import fold

if TYPE_CHECKING:
    from memory.base import Memory

MAX_RECALL_SCAN = 1000
"""The newest current memories of a scope a recall ranks (older ones wait for a match in
these to be deleted or superseded)."""

MAX_HISTORY = 100
"""Superseded memories followed back from one forgotten memory (its history)."""

_WORD = re.compile(r"\w+")
_STOPWORDS_TEXT = """
a about after again all am an and any are as at be been before being but by can could
did do does doing for from had has have having he her here hers him his how i if in into is
it its just me more most my no not now of on or our ours out over she should so some such
than that the their theirs them then there these they this those through to too under up
very was we were what when where which while who whom why will with would you your yours
de la le les des et un une est en du je tu il elle nous vous ils der die das und ist ein
eine ich du er sie es wir ihr
"""
_STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def terms(text: str) -> frozenset[str]:
    """The words a memory or a message is matched by: folded, without the commonest words,
    a plural ``s`` dropped from words of four letters or more."""
    found = set()
    for word in _WORD.findall(fold(text)):
        if len(word) < 2 or word in _STOPWORDS:
            continue
        found.add(word[:-1] if len(word) > 3 and word.endswith("s") else word)
    return frozenset(found)


def rank(memories: Iterable[Memory], query: str, limit: int) -> list[Memory]:
    """The ``limit`` best memories for ``query``: most words shared, then newest, then id."""
    wanted = terms(query)
    scored = [(len(wanted & terms(memory.text)), memory) for memory in memories]
    scored.sort(key=lambda pair: (-pair[0], -pair[1].created_at.timestamp(), pair[1].id))
    return [memory for _, memory in scored[: max(limit, 0)]]


def newest_first(memories: Sequence[Memory]) -> list[Memory]:
    return sorted(memories, key=lambda memory: (-memory.created_at.timestamp(), memory.id))


MAX_QUERY_TERMS = 32
"""Words of a message a knowledge search looks up (the longest first: the rarest, mostly)."""
MAX_KNOWLEDGE_SCAN = 2000
"""Chunks a store reads for one knowledge search before ranking them."""


def query_terms(text: str) -> list[str]:
    """The words a knowledge search looks up: longest first, then alphabetical."""
    return sorted(terms(text), key=lambda word: (-len(word), word))[:MAX_QUERY_TERMS]
