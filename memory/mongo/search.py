"""Text search in MongoDB: a literal, caseless (:func:`memory.rules.fold`) substring of a
conversation's title, summary or source, found through an index, as in SQLite.

Each conversation with text has one document in ``conversation_search`` (same ``_id``) holding
its three fields folded (``search_text``) and their distinct grams (``search_grams``,
:func:`memory.rules.search_grams`) under a multikey index. A needle of three or more characters
must have all its trigrams there (``$all``, which the index serves), and is then checked
literally with ``$indexOfCP`` against each folded field (``$literal``, so a needle such as
``$title`` is text, never a field path). A shorter needle is the start of a gram of the field
that holds it, so one index range over the grams (``$elemMatch``, so that both bounds hold for
the same gram) finds exactly its conversations. No regular expressions: nothing in a needle is
syntax. The index is named in a hint: SecantusDB (and a MongoDB whose plan cache went astray)
would otherwise scan the collection for ``$all``. A server-side text index (``$text``) cannot
do this: it matches words, not substrings, and SecantusDB has none.

The grams live apart from the conversation because a server may rewrite every index entry of a
document on any update of it (SecantusDB does): with hundreds of grams in the conversation, each
message's ``$inc`` of ``message_count`` rewrote them all. Apart, they are written only when the
folded text changes.

A conversation keeps a fingerprint of each folded field (``search_hash``). Writers of title,
summary or source compare them in the same (pipeline) update that writes the fields
(:func:`changing`): only if the folded text changes does it ``$inc`` the conversation's
``search_seq`` and set ``search_changed``, and only then does the writer, seeing its own update
in the document returned, write the search document, with that number and only over an older
one (:func:`write_filter`), so a racing writer's newer text is never overwritten by stale text.
(The returned document is the one after the update: SecantusDB's pre-images are not reliable
under concurrent writers.) Processes of a release from before migration 3 do not, so upgrade
every process sharing a database together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from pymongo import ASCENDING, IndexModel

from memory.rules import SEARCH_GRAM, fold, needle_grams, prefix_bounds, search_grams

Document = dict[str, Any]

GRAMS_INDEX_NAME = "search_grams"
GRAMS_INDEX = IndexModel([("search_grams", ASCENDING)], name=GRAMS_INDEX_NAME)

SEQ = "search_seq"
"""The conversation's count of changes of its folded text, and the search document's copy."""
HASH = "search_hash"
"""The conversation's fingerprint of each folded field."""
CHANGED = "search_changed"
"""Whether the conversation's last update of title, summary or source changed its folded text."""

_FIELDS = ("title", "summary", "source")


def folded(title: str, summary: str, source: str | None) -> Document:
    """The folded search fields of a conversation with this title, summary and source."""
    return {
        "title": fold(title),
        "summary": fold(summary),
        "source": None if source is None else fold(source),
    }


def fingerprint(value: str | None) -> str | None:
    """What ``search_hash`` keeps of a field: a digest of its folded text."""
    if value is None:
        return None
    return hashlib.blake2b(fold(value).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def fingerprints(title: str, summary: str, source: str | None) -> Document:
    return {
        "title": fingerprint(title),
        "summary": fingerprint(summary),
        "source": fingerprint(source),
    }


def changing(fields: Mapping[str, str | None]) -> Document:
    """The ``$set`` stage of a pipeline update writing these search fields (title, summary,
    source): it counts a change of their folded text in ``search_seq`` and says in
    ``search_changed`` whether there was one."""
    hashes = {field: fingerprint(value) for field, value in fields.items()}
    changed = {
        "$or": [
            {"$ne": [f"${HASH}.{field}", {"$literal": value}]} for field, value in hashes.items()
        ]
    }
    seq = {"$ifNull": [f"${SEQ}", 0]}
    return {
        **{field: {"$literal": value} for field, value in fields.items()},
        CHANGED: changed,
        SEQ: {"$cond": [changed, {"$add": [seq, 1]}, seq]},
        HASH: {"$mergeObjects": [{"$ifNull": [f"${HASH}", {}]}, {"$literal": hashes}]},
    }


def document(seq: int, text: Document) -> Document:
    """The search document's fields (but ``_id``) for folded ``text`` written as ``seq``."""
    return {SEQ: seq, "search_text": text, "search_grams": search_grams(text.values())}


def write_filter(conversation_id: str, seq: int) -> Document:
    """Matches the conversation's search document only if it was written before ``seq``; an
    upsert with it raises DuplicateKeyError when a newer one is stored (nothing to do then)."""
    return {"_id": conversation_id, SEQ: {"$lt": seq}}


def conditions(text: str) -> Document:
    """The filter that finds search documents holding ``text``; use it with
    :data:`GRAMS_INDEX` as the hint."""
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
