"""Text search: a literal, caseless (``str.casefold``) substring of title, summary or source.

The first tests run against every store; the rest pin the SQLite store's index (an FTS5
trigram table over folded text) to exactly the semantics of ``needle in field.casefold()``.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient, monitoring

import memory.sqlite.search
from memory.base import ConversationQuery, ConversationStore, PlatformKey
from memory.mongo import MongoStore
from memory.sqlite import SqliteStore
from tests.support.clock import FakeClock

Fields = tuple[str, str, str | None]
"""A conversation's title, summary and source."""


def key(n: int) -> PlatformKey:
    return PlatformKey(platform="api", channel=f"search-{n}")


async def add(
    store: ConversationStore,
    n: int,
    title: str = "",
    summary: str = "",
    source: str | None = None,
    *,
    agent_id: str = "chef",
) -> str:
    conversation, created = await store.get_or_create_conversation(
        key=key(n), agent_id=agent_id, title=title
    )
    assert created
    if summary:
        assert await store.set_summary(
            conversation_id=conversation.id, summary=summary, summary_seq=1
        )
    if source is not None:
        await store.update_conversation(conversation_id=conversation.id, source=source)
    return conversation.id


async def found(store: ConversationStore, text: str, **filters: object) -> set[str]:
    page = await store.list_conversations(
        ConversationQuery(text=text, limit=200, **filters)  # type: ignore[arg-type]
    )
    ids = {conversation.id for conversation in page.items}
    assert page.total == len(page.items) == len(ids)
    return ids


def expected(texts: dict[str, Fields], needle: str) -> set[str]:
    """What search must find: Python's own caseless substring test, field by field."""
    folded = needle.casefold()
    return {
        conversation_id
        for conversation_id, fields in texts.items()
        if any(field is not None and folded in field.casefold() for field in fields)
    }


# every store -------------------------------------------------------------------------------


async def test_search_reads_title_summary_and_source(store: ConversationStore) -> None:
    texts: dict[str, Fields] = {}
    for n, fields in enumerate(
        [
            ("Paella night", "", None),
            ("", "They want a vegan PAELLA.", None),
            ("", "", "crm/import-42"),
            ("Tapas", "crm follow-up", "web form"),
            ("Ends with ab", "cd starts the summary", "xy"),
        ]
    ):
        texts[await add(store, n, *fields)] = fields
    for needle in (
        "paella",
        "PAELLA",
        "a",
        "e",
        "cr",
        "crm",
        "import-4",
        "night",
        "vegan paella.",
        "web form",
        "ab",
        "abcd",  # across the end of the title and the start of the summary: no match
        "ab cd",
        "xyz",
        "Tapas crm",
    ):
        assert await found(store, needle) == expected(texts, needle), needle


@pytest.mark.parametrize(
    "needle",
    [
        *['"', '""', 'say "hi"', "AND", "a AND b", "NEAR(", "NEAR(a b)", "*", "pa*", "^"],
        *["^start", ":", "title:x", "-", "-minus", "(", ")", "{title}", "'", "it's", "OR"],
        *["NOT", "+"],
    ],
)
async def test_search_treats_query_syntax_as_text(store: ConversationStore, needle: str) -> None:
    """Words and signs that mean something to FTS5 (or a regex, or LIKE) are plain text."""
    titles = [
        'She said "hi" and left',
        "sand AND gravel",
        "NEAR(a b) is not a query",
        "pa* and ^start",
        "title:x -minus (a) {title}",
        "it's OR NOT + more",
        "plain words only",
    ]
    texts: dict[str, Fields] = {}
    for n, title in enumerate(titles):
        texts[await add(store, n, title)] = (title, "", None)
    assert await found(store, needle) == expected(texts, needle)


async def test_search_follows_changes(store: ConversationStore, clock: FakeClock) -> None:
    a = await add(store, 1)
    b = await add(store, 2, "Quarterly budget", "about taxes")
    c = await add(store, 3, "Holiday", source="crm")
    assert await found(store, "budget") == {b}

    # A title set later, and replaced.
    await store.update_conversation(conversation_id=a, title="Budget for the trip")
    assert await found(store, "budget") == {a, b}
    await store.update_conversation(conversation_id=a, title="Trip")
    assert await found(store, "budget") == {b}
    assert await found(store, "trip") == {a}

    # A summary replaced; an older one never overwrites a newer one.
    assert await store.set_summary(conversation_id=b, summary="about invoices", summary_seq=2)
    assert await found(store, "taxes") == set()
    assert await found(store, "invoices") == {b}
    assert not await store.set_summary(conversation_id=b, summary="about taxes", summary_seq=1)
    assert await found(store, "taxes") == set()

    # A source patched, then removed; other updates leave the text alone.
    await store.update_conversation(conversation_id=c, source="web-form")
    assert await found(store, "crm") == set()
    assert await found(store, "web-form") == {c}
    await store.update_conversation(conversation_id=c, source=None)
    assert await found(store, "web-form") == set()
    await store.update_conversation(conversation_id=c, data={"k": "web-form"}, tags=["web-form"])
    assert await found(store, "holiday") == {c}
    assert await found(store, "web-form") == set()

    # Closed conversations stay searchable; deleted ones are gone.
    assert await store.close_conversation(conversation_id=b)
    assert await found(store, "invoices") == {b}
    assert await found(store, "invoices", include_closed=False) == set()
    assert await store.delete_conversation(conversation_id=b)
    assert await found(store, "invoices") == set()
    assert await found(store, "quarterly") == set()


async def test_search_combines_with_filters_order_and_pages(
    store: ConversationStore, clock: FakeClock
) -> None:
    ids = []
    for n in range(6):
        clock.advance(1)
        ids.append(await add(store, n, f"Order {n}", agent_id="chef" if n % 2 else "tutor"))
        if n == 3:
            await store.update_conversation(conversation_id=ids[3], tags=["vip"])
    await add(store, 9, "Unrelated")

    page = await store.list_conversations(ConversationQuery(text="ORDER", limit=2, offset=1))
    assert page.total == 6
    assert [item.id for item in page.items] == [ids[4], ids[3]]
    oldest = await store.list_conversations(ConversationQuery(text="order", order="created_asc"))
    assert [item.id for item in oldest.items] == ids
    chef = await store.list_conversations(ConversationQuery(text="order", agent_id="chef"))
    assert [item.id for item in chef.items] == [ids[5], ids[3], ids[1]]
    assert await found(store, "order", tag="vip") == {ids[3]}
    assert await found(store, "r 2") == {ids[2]}


# SQLite ------------------------------------------------------------------------------------


@pytest.fixture
async def sqlite_store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(path=tmp_path / "search.sqlite3", clock=clock)
    await store.open()
    yield store
    await store.close()


UNICODE: list[Fields] = [
    ("STRASSE 1", "", None),
    ("Straße 2", "", None),
    ("ǄEMAL", "", None),
    ("ǅemal", "", None),
    ("", "ǆemal", None),
    ("İstanbul", "", None),
    ("ΣΊΣΥΦΟΣ", "\N{GREEK SMALL LETTER SIGMA}ίσυφος", None),
    ("Ωmega \N{BLACK-LETTER CAPITAL H} ﬁne", "", "\uff26\uff35\uff2c\uff2c"),  # fullwidth FULL
    ("chef 🧑‍🍳 cooks", "e\u0301te", None),
]


@pytest.mark.parametrize(
    "needle",
    [
        *["straße", "STRASSE", "ss", "ß", "SS", "sse 2", "ße", "ǆ", "Ǆ", "ǅe", "ǄEMAL", "ǆemal"],
        *["İ", "i\u0307stan", "istan", "\N{GREEK SMALL LETTER SIGMA}ίσυφος", "ΣΊΣΥΦΟΣ", "ς"],
        *["ωMEGA", "ﬁ", "fine", "\uff46\uff55\uff4c\uff4c", "h", "🧑\u200d🍳", "\u200d🍳 c"],
        *["\u0301", "e\u0301t", "é"],
    ],
)
async def test_search_folds_case_as_python_does(store: ConversationStore, needle: str) -> None:
    texts: dict[str, Fields] = {}
    for n, fields in enumerate(UNICODE):
        texts[await add(store, n, *fields)] = fields
    assert await found(store, needle) == expected(texts, needle)


async def test_search_folds_sharp_s_and_digraphs(store: ConversationStore) -> None:
    sharp = await add(store, 1, "Straße")
    upper = await add(store, 2, "STRASSE")
    digraph = await add(
        store, 3, "", "\N{LATIN CAPITAL LETTER D WITH SMALL LETTER Z WITH CARON}emal"
    )
    await add(store, 4, "Strand")
    for needle in ("strasse", "STRASSE", "straße", "STRAẞE", "aß", "SS"):
        assert await found(store, needle) == {sharp, upper}, needle
    for needle in ("ǆ", "Ǆ", "ǅ", "ǄE", "ǆemal"):
        assert await found(store, needle) == {digraph}, needle


async def test_search_handles_what_the_tokenizer_cannot(store: ConversationStore) -> None:
    """A NUL ends FTS5's tokens and queries; U+FFFD, U+FFFE and U+FFFF all read as U+FFFD
    to it; MongoDB's grams and ``$indexOfCP`` must take them literally too."""
    texts: dict[str, Fields] = {}
    for n, fields in enumerate(
        [
            ("abc\x00defgh", "", None),
            ("", "x\x00\x00y", "tail\x00Source"),
            ("a\ufffeb c", "", None),
            ("a\ufffdb c", "", None),
            ("a\uffffb c", "", None),
            ("defgh", "", None),
        ]
    ):
        texts[await add(store, n, *fields)] = fields
    for needle in (
        "defgh",
        "DEF",
        "c\x00d",
        "\x00",
        "\x00\x00",
        "x\x00\x00y",
        "source",
        "\x00source",
        "a\ufffeb",
        "a\ufffdb",
        "a\uffffb c",
        "\ufffd",
        "\ufffe",
    ):
        assert await found(store, needle) == expected(texts, needle), repr(needle)


async def test_search_is_python_substring_search(store: ConversationStore) -> None:
    """Random text from awkward characters, random needles: always what Python finds."""
    rng = random.Random(20240611)  # noqa: S311 - reproducible test data, not secrets
    alphabet = [*"aAbB sSß\"*:^-('", "Ǆ", "ǅ", "ǆ", "İ", "i", "\u0307", "Σ", "ς", "\u03c3"]
    alphabet += ["\x00", "\ufffd", "\ufffe", "\uffff", "🍳", "ﬁ"]

    def text(most: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, most)))

    def needles(texts: Iterable[Fields]) -> list[str]:
        pieces = [field for fields in texts for field in fields if field]
        picked = []
        for _ in range(120):
            piece = rng.choice(pieces)
            start = rng.randrange(len(piece))
            picked.append(piece[start : start + rng.randint(1, 6)])
            picked.append(text(6) or "a")
        return picked

    texts: dict[str, Fields] = {}
    for n in range(30):
        fields = (text(12), text(20), rng.choice([None, text(8)]))
        texts[await add(store, n, *fields)] = fields
    for needle in needles(texts.values()):
        assert await found(store, needle) == expected(texts, needle), repr(needle)

    for conversation_id in rng.sample(sorted(texts), 10):
        title, summary, source = text(12), text(20), text(8)
        await store.update_conversation(conversation_id=conversation_id, title=title, source=source)
        await store.set_summary(conversation_id=conversation_id, summary=summary, summary_seq=2)
        texts[conversation_id] = (title, summary, source)
    for needle in needles(texts.values()):
        assert await found(store, needle) == expected(texts, needle), repr(needle)


QUERIES = [
    ConversationQuery(text=text, order=order, limit=limit, offset=offset, **filters)
    for text in ("der", "or", "ORDER", "zzz")
    for order in ("updated_desc", "updated_asc", "created_desc", "created_asc")
    for filters in (
        {},
        {"agent_id": "chef"},
        {"tag": "vip"},
        {"include_closed": False},
        {"agent_ids": ("tutor",), "platforms": ("api", "slack")},
        {"agent_ids": ("chef", "tutor"), "agent_id": "chef", "workspaces": ("",)},
    )
    for limit, offset in ((3, 0), (4, 5), (50, 0))
]


async def test_sqlite_many_matches_page_alike(
    sqlite_store: SqliteStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many matches are counted and paged through the indexes, few are looked up: same pages."""
    for n in range(24):
        clock.advance(1)
        conversation_id = await add(
            sqlite_store, n, f"Order {n}" if n % 3 else "misc", agent_id=("chef", "tutor")[n % 2]
        )
        if n % 4 == 0:
            await sqlite_store.update_conversation(conversation_id=conversation_id, tags=["vip"])
        if n % 5 == 0:
            await sqlite_store.close_conversation(conversation_id=conversation_id)
    few = [await sqlite_store.list_conversations(query) for query in QUERIES]
    monkeypatch.setattr(memory.sqlite.search, "_FEW_MATCHES", 0)
    many = [await sqlite_store.list_conversations(query) for query in QUERIES]
    assert many == few
    assert any(page.total > 10 for page in few)


async def _plans(store: SqliteStore, path: Path, query: ConversationQuery) -> list[str]:
    """The query plan of each statement a listing runs."""
    statements: list[str] = []
    db = store._db
    assert db is not None
    await db.set_trace_callback(statements.append)
    try:
        await store.list_conversations(query)
    finally:
        await db.set_trace_callback(None)
    check = sqlite3.connect(path)
    try:
        check.create_function("parley_fold", 1, str.casefold)
        check.execute(memory.sqlite.search.MATCHES_TABLE)
        return [
            " | ".join(row[3] for row in check.execute(f"EXPLAIN QUERY PLAN {sql}"))
            for sql in statements
            if sql.lstrip().startswith(("SELECT", "INSERT"))
        ]
    finally:
        check.close()


@pytest.mark.parametrize("many", [False, True], ids=["few-matches", "many-matches"])
@pytest.mark.parametrize(
    "filters",
    [{}, {"agent_id": "chef"}, {"platform": "api"}, {"tag": "vip"}, {"include_closed": False}],
    ids=lambda filters: "-".join(map(str, filters.values())) or "text-only",
)
async def test_sqlite_search_reads_indexes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filters: dict[str, object], many: bool
) -> None:
    """A needle of three or more characters is looked up in the trigram index: no statement
    reads every conversation (or all the search text), let alone folds each in Python."""
    path = tmp_path / "plans.sqlite3"
    store = SqliteStore(path=path)
    await store.open()
    try:
        await add(store, 1, "Paella night", "vegan")
        if many:
            monkeypatch.setattr(memory.sqlite.search, "_FEW_MATCHES", 0)
        query = ConversationQuery(text="PAELLA", **filters)  # type: ignore[arg-type]
        plans = await _plans(store, path, query)
    finally:
        await store.close()
    assert len(plans) == 3, plans  # find the matches, count them, read the page
    find, _count, page = plans
    assert "SCAN t VIRTUAL TABLE INDEX 0:M" in find, find  # the FTS5 MATCH
    # The only tables read whole: the (normally empty) queue, the partial index of text with
    # a NUL, the matches; and for many matches, the index in the page's order, until enough.
    allowed = {"SCAN p", "SCAN s USING INDEX conversation_search_nul", "SCAN m"}
    for plan in plans:
        for step in plan.split(" | "):
            if step.startswith("SCAN ") and step not in allowed:
                assert step.startswith("SCAN t VIRTUAL TABLE INDEX 0:M") or (
                    many and plan is page and step.startswith("SCAN conversations USING INDEX")
                ), plan
    if not many:
        assert "SEARCH conversations USING INDEX sqlite_autoindex_conversations_1 (id=?)" in page


async def test_sqlite_short_needles_scan_the_folded_text(
    sqlite_store: SqliteStore, tmp_path: Path
) -> None:
    """Two characters hold no trigram: the folded text is scanned (in C), never the
    conversations."""
    await add(sqlite_store, 1, "Paella night")
    find, *_ = await _plans(sqlite_store, tmp_path / "search.sqlite3", ConversationQuery(text="Pa"))
    assert "SCAN f" in find, find
    assert "SCAN c" not in find, find
    assert "SCAN conversations" not in find, find


async def test_sqlite_search_sees_other_writers_at_once(
    sqlite_store: SqliteStore, tmp_path: Path
) -> None:
    """Another process, of this release or an older one, writes through plain SQL: triggers
    queue its changes, searches fold the queue themselves until the store indexes it."""
    a = await add(sqlite_store, 1, "Paella", "rice")
    b = await add(sqlite_store, 2, "Tapas")
    other = sqlite3.connect(tmp_path / "search.sqlite3")
    with other:
        other.execute(
            "UPDATE conversations SET title = 'Gazpacho', summary = '' WHERE id = ?", (a,)
        )
        other.execute("UPDATE conversations SET source = 'CRM import' WHERE id = ?", (b,))
    queued = {row[0] for row in other.execute("SELECT * FROM conversation_search_pending")}
    assert queued == {a, b}
    assert await found(sqlite_store, "paella") == set()
    assert await found(sqlite_store, "rice") == set()
    assert await found(sqlite_store, "gazpacho") == {a}
    assert await found(sqlite_store, "crm i") == {b}
    assert await found(sqlite_store, "cr") == {b}

    await sqlite_store.update_conversation(conversation_id=a, data={"touched": True})
    assert {row[0] for row in other.execute("SELECT * FROM conversation_search_pending")} == {b}
    with other:
        other.execute("DELETE FROM conversations WHERE id = ?", (b,))
    assert other.execute("SELECT count(*) FROM conversation_search_pending").fetchone() == (0,)
    assert await found(sqlite_store, "crm") == set()
    assert await found(sqlite_store, "gazpacho") == {a}
    rows = other.execute("SELECT count(*) FROM conversation_search").fetchone()
    assert rows == (1,)
    other.close()


async def test_sqlite_upgrade_indexes_existing_conversations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file from before text search gains its index at open, in batches, and searches it."""
    path = tmp_path / "old.sqlite3"
    store = SqliteStore(path=path)
    await store.open()
    texts: dict[str, Fields] = {}
    for n in range(7):
        fields = (f"Title {n} Straße", f"summary {n}", f"source-{n}" if n % 2 else None)
        texts[await add(store, n, *fields)] = fields
    await store.close()
    _drop_search(path)

    batches: list[int] = []
    index_queued = memory.sqlite.search.index_queued

    async def counted(db: object, **kwargs: Any) -> int:
        batches.append(await index_queued(db, **kwargs))  # type: ignore[arg-type]
        return batches[-1]

    monkeypatch.setattr(memory.sqlite.search, "_INDEX_BATCH", 3)
    monkeypatch.setattr(memory.sqlite.search, "index_queued", counted)
    reopened = SqliteStore(path=path)
    await reopened.open()
    assert batches == [3, 3, 1]
    try:
        for needle in ("strasse", "Title 3", "summary", "source-5", "e-", "3"):
            assert await found(reopened, needle) == expected(texts, needle), needle
        db = sqlite3.connect(path)
        assert db.execute("SELECT count(*) FROM conversation_search_pending").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM conversation_search").fetchone() == (7,)
        db.close()
    finally:
        await reopened.close()


def _drop_search(path: Path) -> None:
    """Turn a file into the previous release's layout: no search tables, no triggers."""
    db = sqlite3.connect(path)
    with db:
        for (trigger,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        ).fetchall():
            db.execute(f"DROP TRIGGER {trigger}")
        for table in (
            "conversation_search_text",
            "conversation_search_folded",
            "conversation_search",
            "conversation_search_pending",
        ):
            db.execute(f"DROP TABLE {table}")
        left = db.execute("SELECT name FROM sqlite_master WHERE name LIKE '%search%'").fetchall()
        assert left == []
        db.execute("PRAGMA user_version = 0")  # as files from before numbered migrations
    db.close()


# MongoDB: the search reads the grams index -------------------------------------------------


class _Recorder(monitoring.CommandListener):
    """Records the commands sent to one database while ``on`` (pymongo's listeners are
    process-wide once registered)."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.on = False
        self.commands: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.on and event.database_name == self.database:
            self.commands.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def _stages(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in ("inputStage", "queryPlan"):
        if isinstance(plan.get(child), dict):
            yield from _stages(plan[child])
    for inner in plan.get("inputStages", ()):
        yield from _stages(inner)


@pytest.mark.parametrize("needle", ["STRASSE", "aß", "ǅe", "ß", "\N{GREEK SMALL LETTER SIGMA}"])
async def test_mongo_search_reads_the_grams_index(
    secantus_uri: str, mongo_database: str, clock: FakeClock, needle: str
) -> None:
    """The matches are read by an IXSCAN of ``search_grams`` in ``conversation_search``, and
    the count and the page by an IXSCAN of ``_id`` in ``conversations`` (SecantusDB's
    ``explain``), each reading only conversations that hold the needle's grams."""
    recorder = _Recorder(mongo_database)
    monitoring.register(recorder)
    store = MongoStore(uri=secantus_uri, database=mongo_database, clock=clock)
    await store.open()
    texts: dict[str, Fields] = {}
    try:
        for n, title in enumerate(["Straße 1", "STRASSE 2", "ǄEMAL", "ΣΊΣΥΦΟΣ", "Strand"]):
            texts[await add(store, n, title)] = (title, "", None)
        for n in range(5, 40):
            texts[await add(store, n, f"plain {n}", "nothing to see")] = (
                f"plain {n}",
                "nothing to see",
                None,
            )
        recorder.on = True
        assert await found(store, needle) == expected(texts, needle)
        recorder.on = False
    finally:
        recorder.on = False
        await store.close()
    reads = {
        collection: [
            command
            for command in recorder.commands
            if collection in (command.get("find"), command.get("aggregate"))
        ]
        for collection in ("conversation_search", "conversations")
    }
    # The matches (a find); the count (an aggregate) and the page (a find) of conversations.
    assert [len(reads["conversation_search"]), len(reads["conversations"])] == [1, 2]
    client: MongoClient[dict[str, Any]] = MongoClient(secantus_uri)
    try:
        db = client[mongo_database]
        for index, commands in (
            ("search_grams", reads["conversation_search"]),
            ("_id_", reads["conversations"]),
        ):
            for command in commands:
                sent = {
                    name: value
                    for name, value in command.items()
                    if name not in {"lsid", "$db", "$clusterTime", "$readPreference"}
                }
                assert sent["hint"] == index
                explained = db.command("explain", sent, verbosity="executionStats")
                stages = list(_stages(explained["queryPlanner"]["winningPlan"]))
                scans = [stage for stage in stages if stage["stage"] in {"IXSCAN", "COLLSCAN"}]
                assert [(stage["stage"], stage.get("indexName")) for stage in scans] == [
                    ("IXSCAN", index)
                ]
                examined = explained["executionStats"]["totalDocsExamined"]
                assert examined <= 5 < len(texts)
    finally:
        client.close()
