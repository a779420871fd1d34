"""The embedded store: one SQLite file in WAL mode, shared by coroutines and processes.

One module per record type (``conversations``, ``messages``, ``goal_checks``, ``bindings``,
``agents``, ``api_keys``, ``coordination``, ``journal``), each a class over the one connection
of :mod:`~memory.sqlite.connection`; :mod:`~memory.sqlite.schema` holds the numbered
migrations and :mod:`~memory.sqlite.search` the text search. :class:`SqliteStore` composes
them.
"""

from memory.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
