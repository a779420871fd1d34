"""Text search in MongoDB: a literal, caseless (:func:`memory.rules.fold`) substring of a
conversation's title, summary or source, found through an index, as in SQLite.

Each conversation keeps its three fields folded (``search_text``) and the distinct grams of
them (``search_grams``, :func:`memory.rules.search_grams`) under a multikey index. A needle of
three or more characters must have all its trigrams there (``$all``, which the index serves),
and is then checked literally with ``$indexOfCP`` against each folded field (``$literal``, so
a needle such as ``$title`` is text, never a field path). A shorter needle is the start of a
gram of the field that holds it, so one index range over the grams (``$elemMatch``, so that
both bounds hold for the same gram) finds exactly its conversations. No regular expressions:
nothing in a needle is syntax.

The index is named in a hint: SecantusDB (and a MongoDB whose plan cache went astray) would
otherwise scan the collection for ``$all``. A server-side text index (``$text``) cannot do
this: it matches words, not substrings, and SecantusDB has none.

Every writer of title, summary or source keeps these fields in step (see
``MongoConversations._sync_search``); processes of a release from before migration 2 do not,
so upgrade every process sharing a database together.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel

from memory.rules import SEARCH_GRAM, fold, needle_grams, prefix_bounds, search_grams

Document = dict[str, Any]

GRAMS_INDEX_NAME = "search_grams"
GRAMS_INDEX = IndexModel([("search_grams", ASCENDING)], name=GRAMS_INDEX_NAME)

_FIELDS = ("title", "summary", "source")


def fields(title: str, summary: str, source: str | None) -> Document:
    """The search fields of a conversation with this title, summary and source."""
    folded = {
        "title": fold(title),
        "summary": fold(summary),
        "source": None if source is None else fold(source),
    }
    return {"search_text": folded, "search_grams": search_grams(folded.values())}


def conditions(text: str) -> Document:
    """The filter that finds conversations holding ``text``; use it with :data:`GRAMS_INDEX`
    as the hint."""
    needle = fold(text)
    if len(needle) < SEARCH_GRAM:
        low, high = prefix_bounds(needle)
        bounds: Document = {"$gte": low} if high is None else {"$gte": low, "$lt": high}
        return {"search_grams": {"$elemMatch": bounds}}
    held = [
        {"$gte": [{"$indexOfCP": [f"$search_text.{field}", {"$literal": needle}]}, 0]}
        for field in _FIELDS
    ]
    return {"search_grams": {"$all": needle_grams(needle)}, "$expr": {"$or": held}}
