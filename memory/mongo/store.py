"""The MongoDB store: every record type's class over one client."""

from __future__ import annotations

from memory.mongo.agents import MongoAgents
from memory.mongo.api_keys import MongoApiKeys
from memory.mongo.bindings import MongoBindings
from memory.mongo.conversations import MongoConversations
from memory.mongo.coordination import MongoCoordination
from memory.mongo.feedback import MongoFeedback
from memory.mongo.goal_checks import MongoGoalChecks
from memory.mongo.journal import MongoJournal
from memory.mongo.knowledge import MongoKnowledge
from memory.mongo.memories import MongoMemories
from memory.mongo.messages import MongoMessages
from memory.mongo.usage import MongoUsage


class MongoStore(
    MongoConversations,
    MongoMessages,
    MongoGoalChecks,
    MongoBindings,
    MongoFeedback,
    MongoAgents,
    MongoApiKeys,
    MongoJournal,
    MongoCoordination,
    MongoMemories,
    MongoKnowledge,
    MongoUsage,
):
    """A :class:`~memory.base.ConversationStore` in one MongoDB database.

    One object, one ``AsyncMongoClient`` (:class:`~memory.mongo.connection.MongoConnection`)
    shared by every record type.
    """
