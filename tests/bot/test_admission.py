"""The admission table alone: caps per quota holder, per conversation and in all, the API's
share, and places given back exactly once."""

from __future__ import annotations

import pytest

from bot.admission import (
    Admission,
    ApiShareFull,
    ConversationBusy,
    EngineBusy,
    KeyBusy,
    Ticket,
)


def table(
    *, total: int = 100, per_quota: int = 4, per_conversation: int = 8, api_share: float = 0.5
) -> Admission:
    return Admission(
        total=total, per_quota=per_quota, per_conversation=per_conversation, api_share=api_share
    )


def api_turn(admission: Admission, quota: str, conversation: str = "") -> Ticket:
    return admission.admit(conversation=conversation or f"api:{quota}", quota=quota, kind="api")


def test_a_quota_holder_gets_its_cap_then_a_key_busy_line() -> None:
    admission = table(per_quota=4)
    tickets = [api_turn(admission, "k1", f"c{n}") for n in range(4)]
    assert admission.of_quota("k1") == 4

    with pytest.raises(KeyBusy) as refused:
        api_turn(admission, "k1", "c9")
    assert str(refused.value) == (
        "this key already has 4 turns running or waiting; wait for one to finish"
    )
    assert refused.value.retry_after > 0
    assert admission.in_flight == 4, "a refusal counts nothing"
    assert admission.of_conversation("c9") == 0

    api_turn(admission, "k2", "c9")  # another key is served
    tickets[0].release()
    api_turn(admission, "k1", "c9")  # and k1 again once one of its turns ended


def test_a_conversation_gets_its_cap_whoever_asks() -> None:
    admission = table(per_conversation=3, per_quota=10)
    admission.admit(conversation="slack:t1")
    admission.admit(conversation="slack:t1")
    api_turn(admission, "k1", "slack:t1")
    with pytest.raises(ConversationBusy, match="already has 3 messages waiting"):
        admission.admit(conversation="slack:t1")
    with pytest.raises(ConversationBusy):
        api_turn(admission, "k2", "slack:t1")
    admission.admit(conversation="slack:t2")
    assert admission.of_conversation("slack:t1") == 3


def test_api_turns_take_at_most_their_share_and_chat_turns_the_whole() -> None:
    admission = table(total=10, api_share=0.55)
    assert admission.api_total == 5, "floor(0.55 * 10)"
    for n in range(5):
        api_turn(admission, f"k{n}")
    with pytest.raises(ApiShareFull) as refused:
        api_turn(admission, "k9")
    assert isinstance(refused.value, EngineBusy), "every existing catch of EngineBusy holds"
    assert admission.api_in_flight == 5

    chat = [admission.admit(conversation=f"slack:{n}") for n in range(5)]
    assert admission.in_flight == 10
    with pytest.raises(EngineBusy, match="too many messages are waiting") as full:
        admission.admit(conversation="slack:late")
    assert type(full.value) is EngineBusy

    chat[0].release()
    with pytest.raises(ApiShareFull):
        api_turn(admission, "k9")  # a chat place freed is not the API's
    admission.admit(conversation="slack:late")


def test_chat_turns_may_fill_the_engine_and_then_the_api_waits() -> None:
    admission = table(total=4, api_share=0.5)
    for n in range(4):
        admission.admit(conversation=f"discord:{n}")
    with pytest.raises(EngineBusy):
        api_turn(admission, "k1")
    assert admission.api_in_flight == 0


def test_releasing_twice_gives_back_one_place_and_the_table_empties() -> None:
    admission = table(per_quota=2)
    first = api_turn(admission, "k1", "c1")
    second = api_turn(admission, "k1", "c1")
    chat = admission.admit(conversation="slack:t1")
    assert admission.entries == 3

    first.release()
    first.release()
    assert first.released
    assert admission.of_quota("k1") == 1
    assert admission.of_conversation("c1") == 1
    assert admission.in_flight == 2
    assert admission.api_in_flight == 1

    second.release()
    chat.release()
    assert (admission.in_flight, admission.api_in_flight, admission.entries) == (0, 0, 0)


def test_a_zero_total_refuses_everything_and_bad_limits_are_refused() -> None:
    admission = table(total=0)
    assert admission.api_total == 0
    with pytest.raises(EngineBusy):
        admission.admit(conversation="slack:t1")
    for bad in ({"per_quota": 0}, {"per_conversation": 0}, {"total": -1}, {"api_share": 0.0}):
        with pytest.raises(ValueError, match="must be"):
            table(**bad)


def test_each_refusal_is_told_with_its_reason() -> None:
    reasons: list[str] = []
    admission = Admission(
        total=3, per_quota=1, per_conversation=1, api_share=0.5, on_refused=reasons.append
    )
    api_turn(admission, "k1", "c1")
    with pytest.raises(KeyBusy):
        api_turn(admission, "k1", "c2")
    with pytest.raises(ApiShareFull):
        api_turn(admission, "k2", "c3")
    admission.admit(conversation="chat")
    with pytest.raises(ConversationBusy):
        admission.admit(conversation="c1")
    admission.admit(conversation="other")
    with pytest.raises(EngineBusy):
        admission.admit(conversation="more")

    assert reasons == ["too_many_turns", "api_share", "conversation_busy", "busy"]
    assert admission.in_flight == 3, "a refusal takes no place"
