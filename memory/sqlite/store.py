"""The embedded store: every record type's SQLite class over one connection."""

from __future__ import annotations

from memory.sqlite.agents import SqliteAgents
from memory.sqlite.api_keys import SqliteApiKeys
from memory.sqlite.bindings import SqliteBindings
from memory.sqlite.conversations import SqliteConversations
from memory.sqlite.coordination import SqliteCoordination
from memory.sqlite.feedback import SqliteFeedback
from memory.sqlite.goal_checks import SqliteGoalChecks
from memory.sqlite.journal import SqliteJournal
from memory.sqlite.knowledge import SqliteKnowledge
from memory.sqlite.memories import SqliteMemories
from memory.sqlite.messages import SqliteMessages
from memory.sqlite.usage import SqliteUsage


class SqliteStore(
    SqliteConversations,
    SqliteMessages,
    SqliteGoalChecks,
    SqliteBindings,
    SqliteFeedback,
    SqliteAgents,
    SqliteApiKeys,
    SqliteCoordination,
    SqliteJournal,
    SqliteMemories,
    SqliteKnowledge,
    SqliteUsage,
):
    """A :class:`~memory.base.ConversationStore` kept in one SQLite file.

    One object, one aiosqlite connection (:class:`~memory.sqlite.connection.SqliteConnection`)
    shared by every record type, so that a write spanning types (a conversation deleted with
    its messages and goal checks) is one transaction.
    """
