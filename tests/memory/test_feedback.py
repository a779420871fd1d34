"""The feedback records' contract (people's ratings of replies), run unchanged against each
store."""

from __future__ import annotations

from memory.base import ConversationStore, Feedback, Rating
from tests.memory.helpers import HOSTILE, SLACK_A, SLACK_B, reply, user
from tests.support.clock import FakeClock
from tests.support.stores import StoreFactory


async def test_one_rating_per_person_and_reply_the_latest(
    store_factory: StoreFactory, clock: FakeClock
) -> None:
    store = await store_factory()
    conversation, _ = await store.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    asked = await store.append_message(conversation_id=conversation.id, message=user("Hi"))
    answer = await store.append_message(conversation_id=conversation.id, message=reply("Hello"))
    assert await store.list_feedback(message_id=answer.id) == []

    first = await store.rate_message(
        message_id=answer.id, platform="slack", person="U1", rating="good"
    )
    assert first is not None
    stored, before = first
    assert before is None
    assert stored == Feedback(
        message_id=answer.id,
        conversation_id=conversation.id,
        platform="slack",
        person="U1",
        rating="good",
        rated_at=clock(),
    )
    clock.advance(1)
    assert await earlier(store, answer.id, "U1", "good") == "good", "a repeated click"
    clock.advance(1)
    assert await earlier(store, answer.id, "U1", "bad") == "good"
    clock.advance(1)
    assert await earlier(store, answer.id, "U2", "good") is None

    other_process = await store_factory()
    ratings = await other_process.list_feedback(message_id=answer.id)
    assert [(f.person, f.rating) for f in ratings] == [("U1", "bad"), ("U2", "good")]
    assert ratings[0].rated_at < ratings[1].rated_at
    assert await store.list_feedback(message_id=asked.id) == []


async def test_only_replies_can_be_rated(store: ConversationStore) -> None:
    conversation, _ = await store.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    asked = await store.append_message(conversation_id=conversation.id, message=user("Hi"))
    assert (
        await store.rate_message(message_id=asked.id, platform="slack", person="U1", rating="bad")
        is None
    )
    assert await store.list_feedback(message_id=asked.id) == []
    for hostile in [*HOSTILE, "0" * 32]:
        assert (
            await store.rate_message(
                message_id=hostile, platform="slack", person="U1", rating="good"
            )
            is None
        )
        assert await store.list_feedback(message_id=hostile) == []


async def test_ratings_go_with_their_conversation(store: ConversationStore) -> None:
    kept, _ = await store.get_or_create_conversation(key=SLACK_A, agent_id="chef")
    gone, _ = await store.get_or_create_conversation(key=SLACK_B, agent_id="chef")
    kept_reply = await store.append_message(conversation_id=kept.id, message=reply("Stays"))
    gone_reply = await store.append_message(conversation_id=gone.id, message=reply("Goes"))
    for message in (kept_reply, gone_reply):
        assert await earlier(store, message.id, "U1", "good") is None

    assert await store.delete_conversation(conversation_id=gone.id)
    assert await store.list_feedback(message_id=gone_reply.id) == []
    assert [f.rating for f in await store.list_feedback(message_id=kept_reply.id)] == ["good"]


async def earlier(
    store: ConversationStore, message_id: str, person: str, rating: Rating
) -> Rating | None:
    """The person's rating before this one, for a reply the store knows."""
    rated = await store.rate_message(
        message_id=message_id, platform="slack", person=person, rating=rating
    )
    assert rated is not None
    return rated[1]
