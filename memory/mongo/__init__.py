"""The MongoDB store, on PyMongo's native asyncio client.

One module per record type (``conversations``, ``messages``, ``goal_checks``, ``bindings``,
``agents``, ``api_keys``, ``coordination``, ``journal``), each a class over the one client of
:mod:`~memory.mongo.connection`; :mod:`~memory.mongo.schema` holds the collections, indexes
and numbered migrations, and :mod:`~memory.mongo.search` the index-backed text search.
:class:`MongoStore` composes them.
"""

from memory.mongo.connection import redact_uri
from memory.mongo.store import MongoStore

__all__ = ["MongoStore", "redact_uri"]
