from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.prompt import SUMMARY_HEADING, PastMessage, build_prompt, group_turns, shape_directive
from memory.base import Message
from tests.support.agents import agent, agents_file, plain

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def words(text: str) -> int:
    """A stand-in tokenizer: one token a word keeps the arithmetic readable."""
    return len(text.split())


def message(seq: int, role: str, text: str, **fields: object) -> PastMessage:
    """A stored message as prompts take it."""
    stored = Message(
        id=f"{seq:032x}",
        conversation_id="c" * 32,
        seq=seq,
        role=role,  # type: ignore[arg-type]
        text=text,
        created_at=NOW,
        **fields,  # type: ignore[arg-type]
    )
    return PastMessage.of(stored)


def turns(count: int, start_seq: int = 1, size: int = 10) -> list[PastMessage]:
    """``count`` user/assistant pairs whose texts are ``size`` words each."""
    history = []
    for number in range(count):
        seq = start_seq + 2 * number
        history.append(message(seq, "user", " ".join([f"q{number}"] * size), author_name="Ada"))
        history.append(message(seq + 1, "assistant", " ".join([f"a{number}"] * size)))
    return history


def test_order_and_content() -> None:
    chef = agent()
    prompt = build_prompt(
        agent=chef,
        summary="Ada is allergic to nuts.",
        history=turns(2),
        new_text="What can I cook tonight?",
        new_author="Ada",
        count=words,
    )
    roles = [m.role for m in prompt.messages]
    assert roles == [
        "system",
        "assistant",
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    system = prompt.messages[0].content
    assert system.startswith("You are a Mediterranean chef.")
    assert "Ask about allergies before suggesting recipes." in system
    assert shape_directive(chef) in system
    assert '"answer"' in system
    assert prompt.messages[1].content == chef.first_message
    assert prompt.messages[2].content == f"{SUMMARY_HEADING}\nAda is allergic to nuts."
    assert prompt.messages[3].content.startswith("Ada: q0")
    assert prompt.messages[-1].content == "Ada: What can I cook tonight?"
    assert prompt.included_seqs == (1, 2, 3, 4)
    assert prompt.dropped_through == 0


def test_plain_agent_has_no_shape_directive_and_no_summary_without_one() -> None:
    helper = agents_file(plain()).default
    prompt = build_prompt(
        agent=helper, summary="  ", history=[], new_text="hi", new_author="", count=words
    )
    assert [m.role for m in prompt.messages] == ["system", "assistant", "user"]
    assert "JSON" not in prompt.messages[0].content
    assert prompt.messages[-1].content == "hi", "no name, no prefix"


def test_budget_drops_oldest_turns_in_whole_pairs() -> None:
    # a user turn is "Ada:" + 10 words + 4 overhead = 15 tokens, a reply 14: a pair costs 29
    chef = agent(context_tokens=200)
    history = turns(10)
    prompt = build_prompt(
        agent=chef, summary="", history=history, new_text="next", new_author="Ada", count=words
    )
    assert prompt.history_tokens == 6 * 29
    assert prompt.included_seqs == tuple(range(9, 21))
    assert prompt.dropped_through == 8
    shown = [m.content for m in prompt.messages[2:-1]]
    assert shown[0].startswith("Ada: q4")
    assert shown[-1].startswith("a9")
    assert len(shown) % 2 == 0


def test_a_turn_with_several_replies_is_dropped_whole() -> None:
    chef = agent(context_tokens=200)
    history = [
        message(1, "user", " ".join(["x"] * 100)),
        message(2, "assistant", " ".join(["y"] * 50)),
        message(3, "assistant", " ".join(["z"] * 50)),
        message(4, "user", "short"),
        message(5, "assistant", "reply"),
    ]
    prompt = build_prompt(
        agent=chef, summary="", history=history, new_text="n", new_author="", count=words
    )
    assert prompt.included_seqs == (4, 5)
    assert prompt.dropped_through == 3


def test_stored_token_counts_are_used() -> None:
    chef = agent(context_tokens=200)
    history = [
        message(1, "user", "tiny", token_count=150),
        message(2, "assistant", "tiny", token_count=150),
    ]
    prompt = build_prompt(
        agent=chef, summary="", history=history, new_text="n", new_author="", count=words
    )
    assert prompt.included_seqs == ()
    assert prompt.dropped_through == 2


def test_structured_replies_are_replayed_as_their_json() -> None:
    chef = agent()
    data = {"answer": "Try paella.", "recipes": ["Paella"], "ingredients": [], "summary": "s"}
    history = [message(1, "user", "idea?"), message(2, "assistant", "Try paella.", data=data)]
    prompt = build_prompt(
        agent=chef, summary="", history=history, new_text="n", new_author="", count=words
    )
    assert json.loads(prompt.messages[3].content) == data


def test_failed_replies_and_the_stored_opener_are_left_out() -> None:
    chef = agent()
    history = [
        message(1, "assistant", chef.first_message),
        message(2, "user", "hello"),
        message(3, "assistant", "Sorry, I couldn't answer.", error="model timed out"),
        message(4, "user", "hello again"),
        message(5, "assistant", "Hi!"),
    ]
    prompt = build_prompt(
        agent=chef, summary="", history=history, new_text="n", new_author="", count=words
    )
    contents = [m.content for m in prompt.messages]
    assert contents.count(chef.first_message) == 1
    assert "Sorry, I couldn't answer." not in contents
    assert prompt.included_seqs == (2, 4, 5)


def test_group_turns() -> None:
    history = [message(1, "assistant", "hi"), message(2, "user", "a"), message(3, "assistant", "b")]
    assert [[m.seq for m in turn] for turn in group_turns(history)] == [[1], [2, 3]]
