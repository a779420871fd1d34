"""Choose the store from settings: MongoDB when MONGODB_URI is set, else embedded SQLite."""

from __future__ import annotations

from config.settings import Settings
from memory.base import Clock, ConversationStore, utc_now


def build_store(settings: Settings, *, clock: Clock = utc_now) -> ConversationStore:
    if settings.mongodb_uri is not None:
        from memory.mongo import MongoStore

        return MongoStore(
            uri=settings.mongodb_uri.get_secret_value(),
            database=settings.mongodb_db,
            clock=clock,
        )
    from memory.sqlite import SqliteStore

    return SqliteStore(path=settings.store_path, clock=clock)
