"""The MongoDB store's one client: opening (migrations), closing, and driver errors turned
into store errors that hold no secrets.

Every record type's class derives from :class:`MongoConnection`; :class:`MongoStore` composes
them, so all of them share this client.

Every multi-writer guarantee of :class:`~memory.base.ConversationStore` rests on single-document
atomic operations and unique indexes, so no transactions (and no replica set) are needed:

* one open conversation per platform key: a unique index on ``key_id`` that only holds open
  conversations (closing one unsets the field);
* message seqs: an ``$inc`` of the conversation's ``message_count``;
* processed events and claims: an upsert on ``_id`` whose filter only matches an expired (or own)
  record, so a live record turns the upsert into a duplicate-key error;
* the turn journal: an insert on ``_id`` (the platform's message id) for each new entry, and one
  pipeline update per state change, whose condition on the stored state keeps states from
  moving backwards.

JSON ``data`` is kept as JSON text: BSON cannot hold integers beyond 64 bits, and ``$``-prefixed
or dotted keys (a model reply's ``"$schema"``) are not reliably accepted inside update operators.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from bson.errors import BSONError
from pydantic import JsonValue
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConfigurationError, ConnectionFailure, PyMongoError

from bot.errors import StoreError, StoreUnavailable
from config.redact import redact_url
from memory.base import Clock
from memory.mongo import schema
from memory.rules import truncate_ms, utc_now

logger = logging.getLogger(__name__)

Document = dict[str, Any]

UPSERT_ATTEMPTS = 5
"""Tries of an insert-or-read that races other writers."""

_SECRET_OPTIONS = frozenset({"tlscertificatekeyfilepassword"})
_PUBLIC_AUTH_PROPERTIES = frozenset(
    {
        "ALLOWED_HOSTS",
        "CANONICALIZE_HOST_NAME",
        "ENVIRONMENT",
        "SERVICE_HOST",
        "SERVICE_NAME",
        "SERVICE_REALM",
        "TOKEN_RESOURCE",
    }
)


def redact_uri(uri: str) -> str:
    """The connection string with its password and secret options replaced by ``***``
    (``authMechanismProperties`` keeps its public properties)."""
    redacted = redact_url(uri, secret_params=_SECRET_OPTIONS)
    return re.sub(
        r"(?i)(?<=[?&;])(authMechanismProperties=)([^&;]*)",
        lambda m: m.group(1) + _redact_auth_properties(m.group(2)),
        redacted,
    )


def _redact_auth_properties(value: str) -> str:
    properties = []
    for item in unquote(value).split(","):
        name, colon, _secret = item.partition(":")
        secret = colon and name.upper() not in _PUBLIC_AUTH_PROPERTIES
        properties.append(f"{name}:***" if secret else item)
    return ",".join(properties)


def utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else utc(moment)


def dump_json(value: Mapping[str, JsonValue] | None) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def load_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def literal(value: str) -> str:
    """``value`` for a plain equality match: a string, never an operator document."""
    if not isinstance(value, str):
        raise TypeError(f"expected a string, not {type(value).__name__}")
    return value


class MongoConnection:
    """One ``AsyncMongoClient`` on one database, shared by every record type."""

    def __init__(
        self,
        *,
        uri: str,
        database: str,
        clock: Clock = utc_now,
        server_selection_timeout_ms: int = 5000,
    ) -> None:
        self._uri = uri
        self._redacted_uri = redact_uri(uri)
        self._database_name = database
        self._clock = clock
        self._server_selection_timeout_ms = server_selection_timeout_ms
        self._client: AsyncMongoClient[Document] | None = None
        self._db: AsyncDatabase[Document] | None = None
        self._open_lock = asyncio.Lock()

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(uri={self._redacted_uri!r}, database={self._database_name!r})"

    @property
    def description(self) -> str:
        return f"MongoDB ({self._redacted_uri}, database {self._database_name})"

    async def open(self) -> None:
        """Connect and bring the database up to date (:mod:`memory.mongo.schema`). Idempotent."""
        async with self._open_lock:
            if self._client is not None:
                return
            try:
                client: AsyncMongoClient[Document] = AsyncMongoClient(
                    self._uri,
                    tz_aware=True,
                    tzinfo=UTC,
                    appname="parley",
                    serverSelectionTimeoutMS=self._server_selection_timeout_ms,
                )
            except (ConfigurationError, ValueError, TypeError) as exc:
                raise StoreError(self._invalid_settings_message(exc)) from None
            try:
                with self._errors("connect"):
                    db = client[self._database_name]
                    await db.command("ping")
                    await schema.migrate(db)
            except BaseException:
                await client.close()
                raise
            self._client, self._db = client, db
            logger.info("connected to %s", self.description)

    async def close(self) -> None:
        async with self._open_lock:
            client, self._client, self._db = self._client, None, None
            if client is not None:
                await client.close()

    async def ping(self) -> bool:
        if self._db is None:
            return False
        try:
            await self._db.command("ping")
        except PyMongoError:
            return False
        return True

    def _now(self) -> datetime:
        return truncate_ms(self._clock())

    def _collection(self, name: str) -> AsyncCollection[Document]:
        if self._db is None:
            raise StoreError("the MongoDB store is not open; call open() first")
        return self._db[name]

    def _invalid_settings_message(self, error: Exception) -> str:
        """Why the driver refused the URI, unless the URI holds secrets.

        The driver quotes pieces of a URI it cannot parse, and a malformed password is split in
        unpredictable places, so with credentials in the URI only the error type is kept.
        """
        message = f"invalid MongoDB URI or options ({self._redacted_uri})"
        if self._redacted_uri != self._uri:
            return f"{message}: {type(error).__name__}"
        return f"{message}: {error}"

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn driver errors into store errors whose messages hold no secrets."""
        try:
            yield
        except ConnectionFailure as exc:
            raise StoreUnavailable(
                f"could not {action}: MongoDB at {self._redacted_uri} is unreachable "
                f"({type(exc).__name__})"
            ) from exc
        except (PyMongoError, BSONError) as exc:
            code = getattr(exc, "code", None)
            detail = type(exc).__name__ if code is None else f"{type(exc).__name__} {code}"
            raise StoreError(f"could not {action}: MongoDB failed ({detail})") from exc
