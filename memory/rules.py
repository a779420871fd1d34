"""Rules every store applies alike: ids, paging, search folding, the journal's arguments.

Kept in one place so that the SQLite and MongoDB stores cannot drift apart: each imports its
checks from here instead of writing its own. Nothing here touches a database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

JournalState = Literal["received", "answered", "shown", "failed"]
"""Where a turn of the journal stands: ``received`` < ``answered`` < ``shown``; ``failed`` is
terminal, reached only from an unfinished state."""

ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
"""Conversation, message, goal check and API key ids: 32 lowercase hex digits (a UUID4
without dashes)."""

MAX_PAGE = 1000
"""Conversations at most in one listing page."""
MAX_RESTRICTION = 1000
"""Values at most in each of a listing's key limits (``ConversationQuery.agent_ids``...)."""
MAX_SEARCH_TEXT = 200
"""Characters at most in a listing's search text."""

MAX_JOURNAL_ID = 200
"""Characters at most in a journal entry's id (the platform's id of the message)."""
MAX_JOURNAL_MESSAGE = 256 * 1024
"""Bytes at most in a journal entry's message, as compact UTF-8 JSON."""
MAX_JOURNAL_ERROR = 2000
"""Characters of a journal entry's ``error`` that are kept; the rest is cut off."""
JOURNAL_UNFINISHED: frozenset[JournalState] = frozenset({"received", "answered"})
"""States of turns still to be answered or shown: what ``journal_next`` and a takeover find."""
JOURNAL_RANK: Mapping[JournalState, int] = {"received": 0, "answered": 1, "shown": 2, "failed": 2}
"""A state moves only from an unfinished state to one of a higher rank."""
JOURNAL_FIELDS = ("conversation_id", "user_message_id", "reply_message_id", "shown_ref", "error")
"""The fields of a journal entry an update may set besides its state."""

PLACE_SEPARATOR = "\x1f"
"""Joins a place's platform, workspace, channel and thread into one string."""

SEARCH_GRAM = 3
"""Search grams are three characters long (shorter only at the end of a field)."""


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""Marks an update argument that was not given (``None`` is a value for ``source``)."""


# ids and pages ------------------------------------------------------------------------------


def is_valid_id(value: object) -> bool:
    """A stored record's id: 32 lowercase hex digits. Anything else finds nothing."""
    return isinstance(value, str) and bool(ID_PATTERN.fullmatch(value))


def is_valid_journal_id(value: object) -> bool:
    """A journal entry id: 1 to ``MAX_JOURNAL_ID`` printable characters (so no ``\\x1f``)."""
    return isinstance(value, str) and 0 < len(value) <= MAX_JOURNAL_ID and value.isprintable()


def wants_rows(limit: int) -> bool:
    """False for a page limit below one: such a listing is empty without asking the store."""
    return limit >= 1


# time ---------------------------------------------------------------------------------------


def utc_now() -> datetime:
    """The current time in UTC, truncated to milliseconds as every store keeps it."""
    return truncate_ms(datetime.now(UTC))


def truncate_ms(moment: datetime) -> datetime:
    """Truncate to milliseconds (MongoDB's precision) and normalise to UTC."""
    if moment.tzinfo is None:
        raise ValueError("naive datetimes are not stored; give a timezone")
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def ceil_ms(moment: datetime) -> datetime:
    """The first whole millisecond at or after ``moment``: bounds for ``>=`` comparisons."""
    truncated = truncate_ms(moment)
    return truncated + timedelta(milliseconds=1) if moment.microsecond % 1000 else truncated


# JSON ---------------------------------------------------------------------------------------


def dump_compact(value: object) -> str:
    """Compact UTF-8 JSON, as the stores keep journal messages. NaN is refused."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def journal_message_size(message: Mapping[str, Any]) -> int:
    """Bytes of ``message`` as compact UTF-8 JSON, as the stores keep it. NaN is refused."""
    return len(dump_compact(message).encode())


# search -------------------------------------------------------------------------------------


def fold(value: str) -> str:
    """Caseless text for search, the same in every store: ``str.casefold``.

    Not ``lower()``: "Straße" folds to "strasse", so "STRASSE" finds it; Greek final sigma
    and the DŽ digraphs fold alike in all their forms.
    """
    return value.casefold()


def search_grams(texts: Iterable[str | None]) -> list[str]:
    """The distinct grams an index keeps for text search over ``texts`` (already folded).

    Each field gives, for every position, the three characters starting there (fewer at its
    end), so that every substring of a field of up to three characters is the start of a gram
    of that field, and every longer one is a run of its grams. Grams never cross fields.
    """
    grams: set[str] = set()
    for text in texts:
        if text:
            grams.update(text[i : i + SEARCH_GRAM] for i in range(len(text)))
    return sorted(grams)


def needle_grams(needle: str) -> list[str]:
    """The distinct three-character grams of a folded needle at least that long, in order.

    A field holding the needle holds every one of them; one holding them all may still not
    hold the needle (they can occur apart), so the match is checked literally afterwards.
    """
    seen: dict[str, None] = {}
    for i in range(len(needle) - SEARCH_GRAM + 1):
        seen.setdefault(needle[i : i + SEARCH_GRAM])
    return list(seen)


def prefix_bounds(prefix: str) -> tuple[str, str | None]:
    """Strings starting with ``prefix`` are ``>= low`` and (if ``high`` is given) ``< high``.

    In code point order, which is also UTF-8 byte order (how MongoDB compares strings).
    """
    for cut in range(len(prefix), 0, -1):
        point = ord(prefix[cut - 1]) + 1
        if 0xD800 <= point <= 0xDFFF:
            point = 0xE000
        if point <= 0x10FFFF:
            return prefix, prefix[: cut - 1] + chr(point)
    return prefix, None


# places -------------------------------------------------------------------------------------


def place_parts(canonical: str) -> tuple[str, str, str, str]:
    """Platform, workspace, channel and thread of a place's canonical string."""
    platform, workspace, channel, thread = canonical.split(PLACE_SEPARATOR)
    return platform, workspace, channel, thread


# the journal --------------------------------------------------------------------------------


def journal_state_after(current: JournalState, requested: JournalState) -> JournalState:
    """The state an entry in ``current`` has after an update asks for ``requested``.

    States never move backwards: received, answered, shown; failed only from an unfinished
    state. Shown and failed are final.
    """
    if current in JOURNAL_UNFINISHED and JOURNAL_RANK[requested] > JOURNAL_RANK[current]:
        return requested
    return current


def journal_changes(
    *,
    state: JournalState = UNSET,
    conversation_id: str | None = UNSET,
    user_message_id: str | None = UNSET,
    reply_message_id: str | None = UNSET,
    shown_ref: str | None = UNSET,
    error: str | None = UNSET,
) -> dict[str, str | None]:
    """The fields a ``journal_update`` sets, checked alike for every store.

    Raises ValueError for a value no store keeps: an unknown state, a stored-record id that is
    not 32 lowercase hex digits, a ``shown_ref`` that is not a journal id. ``error`` is cut to
    ``MAX_JOURNAL_ERROR`` characters. ``None`` clears a field (not ``state``).
    """
    changes: dict[str, str | None] = {}
    if state is not UNSET:
        if not isinstance(state, str) or state not in JOURNAL_RANK:
            raise ValueError(f"state: not a journal state: {state!r}")
        changes["state"] = state
    for name, value in (
        ("conversation_id", conversation_id),
        ("user_message_id", user_message_id),
        ("reply_message_id", reply_message_id),
    ):
        if value is UNSET:
            continue
        if value is not None and not is_valid_id(value):
            raise ValueError(f"{name}: must be 32 lowercase hex digits or None")
        changes[name] = value
    if shown_ref is not UNSET:
        if shown_ref is not None and not is_valid_journal_id(shown_ref):
            raise ValueError(f"shown_ref: must be 1 to {MAX_JOURNAL_ID} printable characters")
        changes["shown_ref"] = shown_ref
    if error is not UNSET:
        if error is not None and not isinstance(error, str):
            raise ValueError("error: must be a string or None")
        changes["error"] = None if error is None else error[:MAX_JOURNAL_ERROR]
    return changes


def paired_vectors(count: int, vectors: Sequence[bytes | None], what: str) -> list[bytes | None]:
    """One embedding (or None) for each of ``count`` records kept together: ``vectors`` as
    given, or none at all. Raises ValueError for any other number."""
    paired = list(vectors) or [None] * count
    if len(paired) != count:
        raise ValueError(f"vectors: one per {what}, or none")
    return paired
