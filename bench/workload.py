"""The workload: the agent, realistic message texts, conversation keys and history pre-fill.

Texts come from a seeded random generator, so every run (and every store) sees the same
conversations. User messages are 20-40 words; replies are the chef agent's JSON objects.

Pre-filled history is written through ``store.append_message`` exactly as the engine writes
turns: user messages carry the token count of ``"Author: text"``, replies carry their whole
JSON object in ``data`` and the token count of ``json.dumps(data)``. A conversation that grew
through the engine also has a rolling summary; :func:`engine_summary_seq` replays the engine's
compaction rule over the pre-filled token counts to find where that summary would stand, so a
pre-filled conversation starts in the state the engine would have left it in.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.prompt import MESSAGE_OVERHEAD_TOKENS, user_content
from bot.tokens import TokenCounter
from config.agents import Agent, AgentsFile, parse_agents
from memory.base import ConversationStore, NewMessage, PlatformKey

MODEL = "gpt-4o-mini"
CONTEXT_TOKENS = 3000
AUTHORS = ("Ana", "Bruno", "Chiara", "Dmitri")

CHEF: dict[str, Any] = {
    "id": "chef",
    "name": "Chef",
    "context": (
        "You are a Mediterranean chef who helps people plan home meals: you know regional "
        "dishes, seasonal produce and how to adapt recipes to allergies and budgets."
    ),
    "first_message": "Hello, I am your personal chef. What can I do for you today?",
    "instructions": (
        "Ask about allergies before suggesting recipes. Keep answers short and practical, "
        "give quantities for two people unless told otherwise."
    ),
    "response_shape": {
        "answer": "String, your reply to the person",
        "recipes": "List of strings with the names of the recipes",
        "ingredients": "List of strings with the ingredients",
        "summary": "String, summary of the conversation",
    },
    "goal": "The person chose a recipe.",
    "context_tokens": CONTEXT_TOKENS,
}

SUMMARY_TEXT = (
    "Ana and Bruno are planning dinners for the week for two people. Ana is allergic to "
    "tree nuts; Bruno avoids pork. They liked the chickpea and spinach stew and the baked "
    "sea bream with lemon potatoes, found the shakshuka too spicy, and want quick weeknight "
    "dishes under forty minutes. They have a small oven, no food processor, and shop at a "
    "market on Saturdays. Open question: a vegetarian dish for Thursday that reheats well. "
    "Chef promised a shopping list grouped by market stall."
)
"""What the fake model answers to a summary request (about 90 words, as a real one would)."""

_OPENERS = (
    "Could you suggest",
    "What do you think about",
    "I was wondering about",
    "We would like",
    "Can we try",
    "Is it a good idea to make",
    "Please help me plan",
    "Tell me more about",
)
_FOOD = (
    "chickpeas",
    "lentils",
    "spinach",
    "aubergine",
    "courgette",
    "tomatoes",
    "peppers",
    "sea bream",
    "sardines",
    "mussels",
    "feta",
    "halloumi",
    "yoghurt",
    "bulgur",
    "couscous",
    "orzo",
    "farro",
    "lemon",
    "garlic",
    "oregano",
    "saffron",
    "paprika",
    "olive oil",
    "fennel",
    "artichokes",
    "rice",
    "potatoes",
    "chicken thighs",
    "lamb",
    "white beans",
)
_FILLER = (
    "for dinner",
    "on a weeknight",
    "that reheats well",
    "without nuts",
    "for two people",
    "with what we have",
    "in under forty minutes",
    "for the weekend",
    "that is not too spicy",
    "for a picnic",
    "using the small oven",
    "with leftovers",
    "and something green",
    "that a child would eat",
    "for lunch boxes",
)
_DISHES = (
    "Chickpea and spinach stew",
    "Baked sea bream with lemon potatoes",
    "Shakshuka",
    "Lentil and bulgur pilaf",
    "Grilled halloumi salad",
    "Mussels in white wine",
    "Orzo with courgette and feta",
    "Saffron rice with peppers",
    "Fennel and orange salad",
    "Lamb and white bean casserole",
)
_REPLY_WORDS = (
    "you",
    "can",
    "make",
    "this",
    "with",
    "a",
    "the",
    "and",
    "then",
    "add",
    "slowly",
    "minutes",
    "until",
    "golden",
    "season",
    "serve",
    "warm",
    "bake",
    "simmer",
    "stir",
    "gently",
    "for",
    "about",
    "twenty",
    "fresh",
    "good",
    "pinch",
    "of",
    "salt",
    "lid",
    "low",
    "heat",
)


class TextSource:
    """Seeded generator of user messages and chef replies."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def _words(self, vocabulary: Sequence[str], low: int, high: int) -> list[str]:
        return [self._rng.choice(vocabulary) for _ in range(self._rng.randint(low, high))]

    def user_text(self) -> str:
        """A 20-40 word message about food."""
        words: list[str] = []
        target = self._rng.randint(20, 40)
        while len(words) < target:
            phrase = (
                f"{self._rng.choice(_OPENERS)} something with {self._rng.choice(_FOOD)} "
                f"and {self._rng.choice(_FOOD)} {self._rng.choice(_FILLER)}?"
            )
            words.extend(phrase.split())
        return " ".join(words[:target]).rstrip("?,") + "?"

    def reply_data(self) -> dict[str, Any]:
        """A valid chef reply: a 40-90 word answer, a few recipes and ingredients, a summary."""
        answer = " ".join(self._words(_REPLY_WORDS, 40, 90)).capitalize() + "."
        recipes = self._rng.sample(_DISHES, self._rng.randint(0, 3))
        ingredients = self._rng.sample(_FOOD, self._rng.randint(0, 6))
        summary = " ".join(self._words(_REPLY_WORDS, 15, 30)).capitalize() + "."
        return {
            "answer": answer,
            "recipes": recipes,
            "ingredients": ingredients,
            "summary": summary,
        }

    def author(self) -> str:
        return self._rng.choice(AUTHORS)


def bench_agents() -> AgentsFile:
    return parse_agents({"agents": [CHEF]}, source="bench")


def slack_key(group: str, index: int) -> PlatformKey:
    """A distinct Slack thread per conversation."""
    return PlatformKey(
        platform="slack",
        workspace="TBENCH",
        channel=f"C{group.upper()}",
        thread=f"{1_700_000_000 + index}.000100",
    )


@dataclass
class History:
    """A pre-filled conversation: its id and the prompt cost of every stored message."""

    conversation_id: str
    costs: list[int] = field(default_factory=list)
    """``token_count + MESSAGE_OVERHEAD_TOKENS`` of seq 1, 2, 3..."""

    @property
    def messages(self) -> int:
        return len(self.costs)


async def open_history(store: ConversationStore, key: PlatformKey, agent: Agent) -> History:
    conversation, _ = await store.get_or_create_conversation(
        key=key, agent_id=agent.id, title="Weekly dinners"
    )
    return History(conversation_id=conversation.id)


async def prefill(
    store: ConversationStore,
    history: History,
    *,
    until: int,
    texts: TextSource,
    tokens: TokenCounter,
    agent: Agent,
    summarised: bool,
) -> None:
    """Append user/reply messages until the conversation holds ``until`` messages.

    With ``summarised``, also store the rolling summary where the engine would have it.
    """
    while history.messages < until:
        if history.messages % 2 == 0:
            author = texts.author()
            text = texts.user_text()
            message = NewMessage(
                role="user",
                text=text,
                author_id=f"U{author.upper()}",
                author_name=author,
                token_count=tokens.count(user_content(text, author), MODEL),
            )
        else:
            data = texts.reply_data()
            message = NewMessage(
                role="assistant",
                text=data["answer"],
                author_name=agent.name,
                data=data,
                token_count=tokens.count(json.dumps(data, ensure_ascii=False), MODEL),
            )
        stored = await store.append_message(
            conversation_id=history.conversation_id, message=message
        )
        if stored.seq != history.messages + 1:
            raise RuntimeError(f"pre-fill expected seq {history.messages + 1}, got {stored.seq}")
        history.costs.append(message.token_count + MESSAGE_OVERHEAD_TOKENS)
    if summarised:
        through = engine_summary_seq(history.costs, agent.context_tokens)
        if through > 0:
            await store.set_summary(
                conversation_id=history.conversation_id, summary=SUMMARY_TEXT, summary_seq=through
            )


def engine_summary_seq(costs: Sequence[int], budget: int) -> int:
    """Where the engine's rolling summary stands after these messages arrived turn by turn.

    Mirrors ``bot.prompt.build_prompt`` (newest whole turns within the budget) and the
    engine's compaction target (fold what fell out plus the older half of the window),
    assuming each background summary finishes before the next turn, as it does with an
    instant model. ``costs[i]`` is the prompt cost of seq ``i + 1``; users have odd seqs.
    """
    summary_seq = 0
    for user_seq in range(1, len(costs) + 1, 2):
        turns: list[list[int]] = []
        for seq in range(summary_seq + 1, user_seq):
            if seq % 2 == 1 or not turns:
                turns.append([seq])
            else:
                turns[-1].append(seq)
        kept: list[list[int]] = []
        used = 0
        for turn in reversed(turns):
            cost = sum(costs[seq - 1] for seq in turn)
            if used + cost > budget:
                break
            kept.append(turn)
            used += cost
        window = [seq for turn in reversed(kept) for seq in turn]
        first_kept = window[0] if window else user_seq
        dropped_through = first_kept - 1 if first_kept - 1 > summary_seq else 0
        if dropped_through > summary_seq:
            keep = window[len(window) // 2 :]
            older = [seq for seq in window if keep and seq < keep[0]]
            summary_seq = max([dropped_through, *older])
    return summary_seq
