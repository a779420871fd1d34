"""People memory (issue #16): how well a turn remembers the person speaking, and at what cost.

Quality, on one store: a generated workload with a fixed seed. People in two Discord guilds
(some person ids in both, with facts drawn independently, so a fact crossing the guild line
would show) each hold a number of conversations in their own channels. They state facts
(name, where they live, job, favourite cuisine, allergies, a pet) and, in later conversations,
updates ("I moved to Berlin." after "I live in Paris."), plus facts about their family that
share words with the questions ("My sister lives in Rome."), between food chatter. Every
message goes through the real :class:`bot.engine.Engine` one at a time, with the instant fake
model, which lists the first-person sentences of a message in the reply's ``remember`` field
and answers consolidations by a fixed rule (``bench.fake_model``). Turns are paced as people
type: every consolidation the engine scheduled has run before anyone's next message, the
worst case for the engine's batching (its few seconds of settling merge a burst of facts into
one call). Then each person asks questions, one per topic they told, in a new conversation,
and the memory message of each prompt the model received is checked:

* recall@5: the person's current fact(s) of the topic among the first five remembered lines;
* superseded facts in the prompt (an older fact a later one replaced);
* leaks: a line that is not one of the speaker's own facts, from another person of the same
  guild or of the other guild (checked on every turn's prompt, and by id on a direct recall
  for each question);
* tokens the memory message adds (content plus the message's own overhead) against the
  agent's ``memory_tokens``;
* model calls: reply-path calls beyond one per turn, consolidation calls per turn.

Retrieval time, per store: ``PeopleMemory.recall`` (keyword ranking, no embeddings) for
random people among a store holding many memories (100 a person), timed one at a time.
"""

from __future__ import annotations

import asyncio
import random
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from time import perf_counter

from bench.fake_model import InstantModel, prompt_tokens
from bench.report import Target
from bench.stats import Row, percentile, summarise
from bench.workload import CHEF, MODEL
from bot.engine import Engine, IncomingMessage
from bot.llm import ChatRequest
from bot.memory import MEMORY_HEADING, PeopleMemory
from bot.prompt import MESSAGE_OVERHEAD_TOKENS, ChatMessage
from bot.tokens import TokenCounter
from config.agents import Agent, AgentsFile, parse_agents
from memory.base import ConversationStore, MemoryQuery, MemoryScope, NewMemory, PlatformKey
from memory.rules import MAX_PAGE

SEED = 16
RECALL_TARGET_MS = 10.0
"""p99 of one recall on SQLite, keyword only."""
CONSOLIDATION_TARGET = 0.25
"""Consolidation calls per turn, amortised."""
TOP = 5
"""recall@TOP."""
SETTLE = 0.01
"""The engine's consolidation settle: the benchmark paces messages itself."""
WARM_RECALLS = 20
GUILDS = ("700000000000000001", "700000000000000002")
SHARED_IDS = 40
"""Person ids present in both guilds (as two people: memory never crosses a guild)."""

_HEADING = MEMORY_HEADING.split("{name}")[0]


def memory_agents() -> AgentsFile:
    """The benchmark's chef with people memory on (``memory_tokens`` at its default)."""
    return parse_agents({"agents": [{**CHEF, "memory": {"extract": "inline"}}]}, source="bench")


# plan --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryPlan:
    people: int
    """People of the quality workload (0: not run on this store)."""
    conversations: int
    """Conversations per person before the questions."""
    retrieval_people: int
    per_person: int
    """Memories per person in the retrieval store."""
    recalls: int
    """Timed recalls."""
    notes: tuple[str, ...] = ()

    @property
    def stored(self) -> int:
        return self.retrieval_people * self.per_person


def memory_plan(store: str, *, quick: bool, quality: bool) -> MemoryPlan:
    people = (40 if quick else 200) if quality else 0
    if store == "sqlite":
        return MemoryPlan(
            people=people,
            conversations=10,
            retrieval_people=1_000,
            per_person=100,
            recalls=500 if quick else 2_000,
        )
    return MemoryPlan(
        people=people,
        conversations=10,
        retrieval_people=20 if quick else 100,
        per_person=100,
        recalls=100 if quick else 200,
        notes=(
            "reduced for SecantusDB 0.7.0b3, which reads the whole memories collection for "
            "every recall (explain() shows a COLLSCAN: the scope's index is not used), so a "
            "recall's time grows with every memory stored, anyone's",
        ),
    )


# the workload ------------------------------------------------------------------------------

_FIRST = (
    "Ada", "Bruno", "Chiara", "Dmitri", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas",
    "Kemal", "Lena", "Marco", "Nadia", "Omar", "Priya", "Quentin", "Rosa", "Sven", "Tamar",
    "Umberto", "Vera", "Wanjiru", "Xavier", "Yusuf", "Zofia", "Aiko", "Bilal", "Carmen", "Dario",
)  # fmt: skip
_LAST = (
    "Okafor", "Rossi", "Novak", "Haddad", "Larsen", "Moreau", "Tanaka", "Silva", "Kowalski",
    "Nguyen", "Fischer", "Ortega", "Petrov", "Costa", "Yilmaz", "Dubois", "Jansen", "Mensah",
    "Romano", "Berg", "Sato", "Alvarez", "Keller", "Papadopoulos", "Ferreira", "Lind", "Bauer",
    "Rahman", "Esposito", "Varga",
)  # fmt: skip
_CITIES = (
    "Paris", "Berlin", "Lisbon", "Madrid", "Rome", "Vienna", "Prague", "Warsaw", "Athens",
    "Dublin", "Oslo", "Lyon", "Porto", "Naples", "Munich", "Zagreb", "Seville", "Krakow",
    "Ghent", "Turin",
)  # fmt: skip
_JOBS = (
    "nurse", "teacher", "software developer", "carpenter", "pharmacist", "bus driver",
    "journalist", "architect", "electrician", "accountant", "baker", "translator",
    "firefighter", "dentist", "gardener",
)  # fmt: skip
_CUISINES = (
    "Thai", "Lebanese", "Japanese", "Mexican", "Georgian", "Ethiopian", "Sicilian", "Korean",
    "Peruvian", "Turkish", "Vietnamese", "Moroccan",
)  # fmt: skip
_ALLERGENS = (
    "peanuts", "shellfish", "sesame", "gluten", "eggs", "soy", "tree nuts", "mustard",
    "celery", "kiwi",
)  # fmt: skip
_PETS = (
    "Rex", "Miso", "Luna", "Pepper", "Biscuit", "Olive", "Nacho", "Tofu", "Ziggy", "Mango",
    "Pixel", "Juniper",
)  # fmt: skip
_RELATIVES = ("sister", "brother", "partner", "mother", "father", "cousin", "neighbour")
_FOOD = (
    "chickpeas", "lentils", "spinach", "aubergine", "courgette", "tomatoes", "peppers",
    "sea bream", "sardines", "mussels", "feta", "halloumi", "bulgur", "couscous", "orzo",
    "fennel", "artichokes", "rice", "potatoes", "chicken thighs", "white beans", "mushrooms",
)  # fmt: skip
_ASKS = (
    "Could you suggest something with",
    "What do you think about a dish with",
    "Can we try something with",
    "Is it a good idea to cook",
    "Please help me plan a meal with",
    "Tell me more about cooking",
    "How long should the oven stay on for",
    "What goes well with",
)
_FILLER = (
    "for dinner",
    "on a weeknight",
    "that reheats well",
    "for two people",
    "in under forty minutes",
    "for the weekend",
    "that is not too spicy",
    "for a picnic",
    "with leftovers",
    "for lunch boxes",
)
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_QUESTIONS: dict[str, tuple[str, ...]] = {
    "name": ("What's my name?", "Do you remember who I am?", "How should you address me?"),
    "home": (
        "Which city do I live in?",
        "Can you recommend a market near where I live?",
        "Where am I based these days?",
    ),
    "job": ("What do I do for work?", "What is my job?", "Any lunch ideas that suit my work?"),
    "cuisine": (
        "What is my favourite cuisine?",
        "Cook me something in the style I like best.",
        "Which cuisine do I like most?",
    ),
    "allergy": (
        "What am I allergic to?",
        "Plan a dinner that avoids my allergies.",
        "Is there anything I must not eat?",
    ),
    "pet": (
        "What is my {kind} called?",
        "Any treats I could bake for my {kind}?",
        "Do you remember my pet's name?",
    ),
}
ONE_VALUED = frozenset({"name", "home", "job", "cuisine"})
"""Topics a later fact updates; allergies and pets add up."""


@dataclass(frozen=True)
class Question:
    topic: str
    text: str
    expected: tuple[str, ...]
    """The person's current facts of the topic."""


@dataclass
class Person:
    guild: str
    person_id: str
    first_name: str
    messages: list[tuple[int, str]] = field(default_factory=list)
    """(conversation, text) in the order they are sent."""
    questions: list[Question] = field(default_factory=list)
    updates: int = 0
    """Facts a later fact of the same topic replaces."""

    @property
    def scope(self) -> MemoryScope:
        return MemoryScope(
            platform="discord", workspace=self.guild, person=self.person_id, agent_id=CHEF["id"]
        )

    def key(self, conversation: int) -> PlatformKey:
        """Each conversation in its own channel (a Discord thread is a channel)."""
        number = 800_000_000_000_000_000 + int(self.person_id[1:]) * 100 + conversation
        guild = GUILDS.index(self.guild)
        return PlatformKey(platform="discord", workspace=self.guild, channel=f"{number}{guild}")


def chatter(rng: random.Random) -> str:
    """A food question with no first-person sentence: nothing to remember."""
    return f"{rng.choice(_ASKS)} {rng.choice(_FOOD)} {rng.choice(_FILLER)}?"


def make_people(count: int, conversations: int, *, seed: int = SEED) -> list[Person]:
    """``count`` people, alternating between the two guilds; the last :data:`SHARED_IDS`
    of the first guild's ids are also ids of the second guild's first people."""
    rng = random.Random(seed)
    names = rng.sample([f"{first} {last}" for first in _FIRST for last in _LAST], count)
    first_guild = (count + 1) // 2
    shared = min(SHARED_IDS, first_guild, count - first_guild)
    people = []
    for index in range(count):
        in_first = index % 2 == 0
        ordinal = index // 2 if in_first else first_guild - shared + index // 2
        person = Person(
            guild=GUILDS[0 if in_first else 1],
            person_id=f"U{ordinal:05d}",
            first_name=names[index].split()[0],
        )
        _tell(person, names[index], conversations, rng)
        people.append(person)
    ids = {(p.guild, p.person_id) for p in people}
    if len(ids) != count:
        raise RuntimeError("memory workload: two people share a guild and an id")
    return people


def _tell(person: Person, name: str, conversations: int, rng: random.Random) -> None:
    """Spread the person's facts over their conversations, with chatter around them."""
    early = max(1, conversations // 2)  # first statements; updates come later
    told: list[tuple[int, str, str]] = []  # (conversation, topic, text)

    def one_valued(topic: str, first: str, later: Callable[[], str], chance: float) -> None:
        start = rng.randrange(early)
        told.append((start, topic, first))
        at = start
        while at < conversations - 1 and rng.random() < chance:
            at = rng.randrange(max(at + 1, early), conversations)
            told.append((at, topic, later()))
            person.updates += 1
            chance /= 3

    told.append((0, "name", f"My name is {name}."))
    cities = rng.sample(_CITIES, 4)
    one_valued("home", f"I live in {cities[0]}.", lambda: f"I moved to {cities.pop()}.", 0.6)
    jobs = rng.sample(_JOBS, 3)
    one_valued(
        "job", f"I work as a {jobs[0]}.", lambda: f"I started a new job as a {jobs.pop()}.", 0.4
    )
    if rng.random() < 0.8:
        cuisines = rng.sample(_CUISINES, 3)
        one_valued(
            "cuisine",
            f"My favourite cuisine is {cuisines[0]}.",
            lambda: f"My favourite cuisine is {cuisines.pop()} these days.",
            0.4,
        )
    allergens = rng.sample(_ALLERGENS, 2)
    if rng.random() < 0.7:
        at = rng.randrange(early)
        told.append((at, "allergy", f"I am allergic to {allergens[0]}."))
        if rng.random() < 0.3:
            later = rng.randrange(at + 1, conversations)
            told.append((later, "allergy", f"I am also allergic to {allergens[1]}."))
    kind = rng.choice(("dog", "cat"))
    if rng.random() < 0.5:
        pet = f"My {kind} is called {rng.choice(_PETS)}."
        told.append((rng.randrange(conversations), "pet", pet))
    relatives = rng.sample(_RELATIVES, 3)
    for chance, text in (
        (0.6, f"My {relatives[0]} lives in {rng.choice(_CITIES)}."),
        (0.4, f"My {relatives[1]} works as a {rng.choice(_JOBS)}."),
        (0.3, f"My {relatives[2]} is allergic to {rng.choice(_ALLERGENS)}."),
        (0.3, f"I usually shop at the market on {rng.choice(_DAYS)}."),
    ):
        if rng.random() < chance:
            told.append((rng.randrange(conversations), "other", text))

    for conversation in range(conversations):
        messages = [chatter(rng) for _ in range(rng.randint(1, 3))]
        for _, _, text in (item for item in told if item[0] == conversation):
            slot = rng.randrange(len(messages))
            messages[slot] = (
                f"{text} {messages[slot]}" if rng.random() < 0.5 else f"{messages[slot]} {text}"
            )
        person.messages += [(conversation, text) for text in messages]
    _ask(person, told, kind, rng)


def _ask(person: Person, told: list[tuple[int, str, str]], kind: str, rng: random.Random) -> None:
    """One question per topic the person told, expecting their current fact(s) of it."""
    current: dict[str, list[str]] = {}
    for _, topic, text in sorted(told, key=lambda item: item[0]):
        if topic in ONE_VALUED:
            current[topic] = [text]
        else:
            current.setdefault(topic, []).append(text)
    for topic, questions in _QUESTIONS.items():
        if topic in current:
            text = rng.choice(questions).format(kind=kind)
            person.questions.append(Question(topic, text, tuple(current[topic])))


# quality -----------------------------------------------------------------------------------


def memory_lines(messages: Sequence[ChatMessage]) -> tuple[str, list[str]]:
    """The prompt's memory message and its remembered lines ("" and [] when none)."""
    for message in messages:
        if message.role == "system" and message.content.startswith(_HEADING):
            lines = message.content.splitlines()[1:]
            return message.content, [line.removeprefix("- ") for line in lines]
    return "", []


@dataclass
class _Seen:
    """What the model received during the workload."""

    purposes: Counter[str] = field(default_factory=Counter)
    prompts: list[tuple[ChatMessage, ...]] = field(default_factory=list)
    """The reply requests of the current turn (a repair would be a second one)."""

    def __call__(self, request: ChatRequest) -> None:
        purpose = request.metadata.get("purpose", "?")
        self.purposes[purpose] += 1
        if purpose == "reply":
            self.prompts.append(request.messages)


@dataclass
class _TurnSeen:
    person: int
    question: Question | None
    block: str
    lines: list[str]
    prompt: tuple[ChatMessage, ...]


async def quality(
    store: ConversationStore,
    *,
    store_name: str,
    plan: MemoryPlan,
    tokens: TokenCounter,
    progress: Callable[[str], None],
) -> tuple[list[Row], list[Target], list[str]]:
    people = make_people(plan.people, plan.conversations)
    agents = memory_agents()
    agent = agents.default
    model = InstantModel()
    seen = _Seen()
    model.watch = seen
    engine = Engine(
        store=store,
        agents=agents,
        model=model,
        tokens=tokens,
        default_model=MODEL,
        consolidation_settle=SETTLE,
    )
    consolidation = engine._consolidation  # its tasks (to pace the workload) and its calls
    turns: list[_TurnSeen] = []
    latencies: list[float] = []

    async def turn(index: int, key: PlatformKey, text: str, question: Question | None) -> None:
        person = people[index]
        seen.prompts.clear()
        incoming = IncomingMessage(
            key=key, text=text, author_id=person.person_id, author_name=person.first_name
        )
        start = perf_counter()
        result = await engine.reply(incoming).result()
        latencies.append(perf_counter() - start)
        if result.failed or result.data is None:
            raise RuntimeError(f"a memory benchmark turn failed: {result.text!r}")
        prompt = seen.prompts[0]
        block, lines = memory_lines(prompt)
        turns.append(_TurnSeen(index, question, block, lines, prompt))

    async def settled() -> None:
        while pending := consolidation.tasks:
            await asyncio.gather(*pending, return_exceptions=True)

    steps = max(len(person.messages) for person in people)
    total = sum(len(person.messages) for person in people)
    progress(
        f"memory: {len(people)} people x {plan.conversations} conversations, {total:,} "
        f"messages, one at a time in {steps} rounds"
    )
    try:
        for step in range(steps):
            for index, person in enumerate(people):
                if step < len(person.messages):
                    conversation, text = person.messages[step]
                    await turn(index, person.key(conversation), text, None)
            await settled()
            if step % 10 == 9:
                progress(f"memory: round {step + 1}/{steps}")
        asked = sum(len(person.questions) for person in people)
        progress(f"memory: {asked:,} questions in a new conversation each")
        for index, person in enumerate(people):
            key = person.key(plan.conversations)
            for question in person.questions:
                await turn(index, key, question.text, question)
        await settled()
        direct = await _direct_recalls(store, agent, people, tokens)
    finally:
        await engine.aclose()
        await model.close()
    if consolidation.calls != seen.purposes["memory"]:
        raise RuntimeError("the model saw another number of consolidations than the engine made")
    owned = await _owned(store, people)
    row = summarise(
        latencies=latencies,
        wall=sum(latencies),
        cpu=0.0,
        store=store_name,
        section="memory",
        approach="engine",
        scenario=f"turns with memory on, one at a time ({len(people)} people x "
        f"{plan.conversations} conversations, then questions)",
    )
    row.prompt_tokens = round(statistics.median(prompt_tokens(t.prompt, tokens) for t in turns))
    return _judge_quality(
        row=row,
        store_name=store_name,
        agent=agent,
        people=people,
        turns=turns,
        owned=owned,
        direct=direct,
        purposes=seen.purposes,
        tokens=tokens,
    )


@dataclass
class _Owned:
    """Every memory the store holds for the workload's people, by text."""

    current: dict[tuple[str, str], set[str]]
    superseded: dict[tuple[str, str], set[str]]
    owners: dict[str, set[tuple[str, str]]]
    stored: int
    superseded_count: int
    teaching: set[str] = field(default_factory=set)
    """The replies that carried new facts (one per turn that taught something)."""


async def _owned(store: ConversationStore, people: Sequence[Person]) -> _Owned:
    owned = _Owned({}, {}, {}, 0, 0)
    for person in people:
        scope = person.scope
        found = await store.list_memories(
            MemoryQuery(
                platform=scope.platform,
                workspace=scope.workspace,
                person=scope.person,
                agent_id=scope.agent_id,
                include_superseded=True,
                limit=MAX_PAGE,
            )
        )
        who = (person.guild, person.person_id)
        for memory in found:
            kind = owned.current if memory.superseded_by is None else owned.superseded
            kind.setdefault(who, set()).add(memory.text)
            owned.owners.setdefault(memory.text, set()).add(who)
            owned.stored += 1
            owned.superseded_count += memory.superseded_by is not None
            if memory.message_id is not None:
                owned.teaching.add(memory.message_id)
    return owned


async def _direct_recalls(
    store: ConversationStore, agent: Agent, people: Sequence[Person], tokens: TokenCounter
) -> tuple[int, int]:
    """The same recall as each question's, made directly: (questions, recalls holding only
    the asker's own memories, checked by scope)."""
    memory = PeopleMemory(store)
    clean = asked = 0
    for person in people:
        for question in person.questions:
            recalled = await memory.recall(
                agent,
                person.key(0),
                person=person.person_id,
                name=person.first_name,
                query=question.text,
                count=lambda text: tokens.count(text, MODEL),
            )
            asked += 1
            mine = recalled is not None and all(m.scope == person.scope for m in recalled.memories)
            clean += mine
    return asked, clean


def _judge_quality(
    *,
    row: Row,
    store_name: str,
    agent: Agent,
    people: Sequence[Person],
    turns: Sequence[_TurnSeen],
    owned: _Owned,
    direct: tuple[int, int],
    purposes: Counter[str],
    tokens: TokenCounter,
) -> tuple[list[Row], list[Target], list[str]]:
    hits: Counter[str] = Counter()
    expected: Counter[str] = Counter()
    anywhere = 0
    stale = 0
    cross_person = cross_guild = 0
    added: list[int] = []
    for seen in turns:
        person = people[seen.person]
        who = (person.guild, person.person_id)
        mine = owned.current.get(who, set()) | owned.superseded.get(who, set())
        for line in seen.lines:
            if line in mine:
                continue
            owners = owned.owners.get(line, set())
            if any(guild == person.guild for guild, _ in owners) or not owners:
                cross_person += 1
            else:
                cross_guild += 1
        added.append(tokens.count(seen.block, MODEL) + MESSAGE_OVERHEAD_TOKENS if seen.block else 0)
        question = seen.question
        if question is None:
            continue
        top = seen.lines[:TOP]
        for fact in question.expected:
            expected[question.topic] += 1
            hits[question.topic] += fact in top
            anywhere += fact in seen.lines
        current = owned.current.get(who, set())
        stale += sum(
            1
            for line in seen.lines
            if line in owned.superseded.get(who, set()) and line not in current
        )

    turn_count = len(turns)
    questions = sum(1 for seen in turns if seen.question is not None)
    facts = sum(expected.values())
    found = sum(hits.values())
    reply_calls = purposes["reply"]
    extra = reply_calls - turn_count
    consolidations = purposes["memory"]
    per_turn = consolidations / turn_count
    updates = sum(person.updates for person in people)
    with_memory = [tokens for tokens in added if tokens]
    budget = agent.memory_tokens
    by_topic = ", ".join(
        f"{topic} {hits[topic] / expected[topic]:.0%} ({hits[topic]}/{expected[topic]})"
        for topic in _QUESTIONS
        if expected[topic]
    )
    shared_ids = (
        len({p.person_id for p in people if p.guild == GUILDS[0]})
        + len({p.person_id for p in people if p.guild == GUILDS[1]})
        - len({p.person_id for p in people})
    )
    details = [
        f"Memory quality ({store_name}): {len(people)} people in 2 Discord guilds "
        f"({shared_ids} person ids in both), {turn_count:,} turns ({questions:,} of them "
        f"questions in a new conversation); {owned.stored:,} facts kept, "
        f"{owned.superseded_count:,} superseded (the workload states {updates:,} updates)",
        f"  recall@{TOP} of the current fact: {found / facts:.1%} ({found:,}/{facts:,}; "
        f"anywhere in the memory message: {anywhere / facts:.1%}); by topic: {by_topic}",
        f"  memory message per turn: median {statistics.median(with_memory):.0f} tokens, max "
        f"{max(added)} (content + {MESSAGE_OVERHEAD_TOKENS} tokens of message overhead; "
        f"memory_tokens {budget}); model calls: {reply_calls:,} reply, "
        f"{consolidations:,} consolidation, {purposes['summary']:,} summary",
    ]
    targets = [
        Target(
            store=store_name,
            name="superseded facts in the prompt: 0",
            met=stale == 0,
            detail=f"{stale} superseded lines in the {questions:,} question prompts "
            f"({owned.superseded_count:,} facts superseded)",
        ),
        Target(
            store=store_name,
            name="facts of another person or workspace in the prompt: 0",
            met=cross_person == 0 and cross_guild == 0 and direct[1] == direct[0],
            detail=f"{cross_person} from another person of the guild, {cross_guild} from the "
            f"other guild, over {turn_count:,} prompts; a direct recall per question held "
            f"only the asker's own memories (by scope) {direct[1]:,}/{direct[0]:,} times",
        ),
        Target(
            store=store_name,
            name=f"prompt tokens added by memory never above memory_tokens ({budget})",
            met=max(added) <= budget,
            detail=f"max {max(added)}, median {statistics.median(with_memory):.0f} over the "
            f"{len(with_memory):,} turns with something remembered",
        ),
        Target(
            store=store_name,
            name="extra model calls per reply: 0",
            met=extra == 0,
            detail=f"{reply_calls:,} reply-path calls for {turn_count:,} turns "
            f"({extra / turn_count:+.3f} a turn)",
        ),
        Target(
            store=store_name,
            name=f"consolidation calls per turn <= {CONSOLIDATION_TARGET:g} (amortised)",
            met=per_turn <= CONSOLIDATION_TARGET,
            detail=f"{consolidations:,} calls over {turn_count:,} turns = {per_turn:.3f}; "
            f"{len(owned.teaching):,} turns taught something new, and every consolidation ran "
            "before the person's next message (no batching: a person's first fact alone "
            "needs none)",
        ),
    ]
    row.target = f"recall@{TOP} {found / facts:.0%}"
    return [row], targets, details


# retrieval ---------------------------------------------------------------------------------


def _fact(rng: random.Random) -> str:
    kind = rng.randrange(9)
    relative = rng.choice(_RELATIVES)
    return (
        f"I live in {rng.choice(_CITIES)}.",
        f"I work as a {rng.choice(_JOBS)}.",
        f"My favourite cuisine is {rng.choice(_CUISINES)}.",
        f"I am allergic to {rng.choice(_ALLERGENS)}.",
        f"My {rng.choice(('dog', 'cat'))} is called {rng.choice(_PETS)}.",
        f"My {relative} lives in {rng.choice(_CITIES)} and works as a {rng.choice(_JOBS)}.",
        f"I like {rng.choice(_FOOD)} {rng.choice(_FILLER)}.",
        f"I promised to cook {rng.choice(_FOOD)} for my {relative} on {rng.choice(_DAYS)}.",
        f"I usually shop at the market on {rng.choice(_DAYS)}.",
    )[kind]


async def fill(
    store: ConversationStore, plan: MemoryPlan, progress: Callable[[str], None]
) -> list[MemoryScope]:
    """``plan.per_person`` memories for each of ``plan.retrieval_people`` people, half in each
    guild, one write per person."""
    rng = random.Random(SEED + 1)
    scopes = [
        MemoryScope(
            platform="discord",
            workspace=GUILDS[n % 2],
            person=f"R{n:05d}",
            agent_id=CHEF["id"],
        )
        for n in range(plan.retrieval_people)
    ]
    step = max(1, len(scopes) // 4)
    for index, scope in enumerate(scopes):
        await store.add_memories(
            [NewMemory(scope=scope, text=_fact(rng)) for _ in range(plan.per_person)]
        )
        if index % step == step - 1:
            progress(f"memory: {(index + 1) * plan.per_person:,} memories stored")
    return scopes


async def retrieval(
    store: ConversationStore,
    *,
    store_name: str,
    plan: MemoryPlan,
    tokens: TokenCounter,
    progress: Callable[[str], None],
) -> tuple[list[Row], list[Target], list[str]]:
    progress(
        f"memory: storing {plan.stored:,} memories ({plan.retrieval_people:,} people x "
        f"{plan.per_person})"
    )
    started = perf_counter()
    scopes = await fill(store, plan, progress)
    filled = perf_counter() - started
    agent = memory_agents().default
    memory = PeopleMemory(store)
    rng = random.Random(SEED + 2)
    questions = [q.format(kind="dog") for qs in _QUESTIONS.values() for q in qs]

    def count(text: str) -> int:
        return tokens.count(text, MODEL)

    progress(f"memory: {plan.recalls:,} recalls, one at a time")
    latencies: list[float] = []
    blocks: list[tuple[str, int]] = []
    for n in range(WARM_RECALLS + plan.recalls):
        scope = rng.choice(scopes)
        key = PlatformKey(platform="discord", workspace=scope.workspace, channel="900000000000")
        query = rng.choice(questions)
        start = perf_counter()
        recalled = await memory.recall(
            agent, key, person=scope.person, name="Ada", query=query, count=count
        )
        elapsed = perf_counter() - start
        if recalled is None or not recalled.memories:
            raise RuntimeError("a memory benchmark recall found nothing")
        if n >= WARM_RECALLS:
            latencies.append(elapsed)
            blocks.append((recalled.block, recalled.tokens))
    added = [count(block) + MESSAGE_OVERHEAD_TOKENS for block, _ in blocks]
    row = summarise(
        latencies=latencies,
        wall=sum(latencies),
        cpu=0.0,
        store=store_name,
        section="memory",
        approach="recall",
        scenario=f"recall with {plan.stored:,} memories stored ({plan.retrieval_people:,} "
        f"people x {plan.per_person}), keyword only",
    )
    row.prompt_tokens = round(statistics.median(added))
    p99 = percentile(latencies, 99) * 1000
    targets: list[Target] = []
    if store_name == "sqlite":
        met = p99 < RECALL_TARGET_MS
        row.target = f"p99<{RECALL_TARGET_MS:g}ms {'met' if met else 'NOT met'}"
        targets.append(
            Target(
                store=store_name,
                name=f"memory recall p99 < {RECALL_TARGET_MS:g} ms with {plan.stored:,} "
                "memories stored, keyword only",
                met=met,
                detail=f"p50 {row.p50_ms:.2f} ms, p99 {p99:.2f} ms over {len(latencies):,} "
                f"recalls (PeopleMemory.recall: the scope's newest current memories read "
                f"through the index, ranked, cut to memory_tokens)",
            )
        )
    else:
        row.target = "(no target)"
    budget = agent.memory_tokens
    targets.append(
        Target(
            store=store_name,
            name=f"prompt tokens added by memory never above memory_tokens ({budget}), "
            f"{plan.per_person} memories a person",
            met=max(added) <= budget,
            detail=f"memory message max {max(added)} tokens (content + "
            f"{MESSAGE_OVERHEAD_TOKENS} overhead), median {statistics.median(added):.0f}; "
            f"the recall's own count max {max(t for _, t in blocks)}",
        )
    )
    details = [
        f"Memory retrieval ({store_name}): {plan.stored:,} memories stored in "
        f"{filled:.1f} s, {plan.retrieval_people:,} people x {plan.per_person} in 2 guilds; "
        f"{len(latencies):,} recalls of random people with random questions after "
        f"{WARM_RECALLS} warm-up recalls",
        *(f"  note: {note}" for note in plan.notes),
    ]
    if plan.notes:
        per_memory = row.p50_ms / plan.stored
        details.append(
            f"  note: p50 / memories stored = {per_memory * 1000:.0f} microseconds a stored "
            f"memory; at that rate 100,000 memories would take about "
            f"{per_memory * 100:.1f} s a recall"
        )
    return [row], targets, details


async def run_memory(
    make_store: Callable[[str], ConversationStore],
    *,
    store_name: str,
    quick: bool,
    quality_here: bool,
    tokens: TokenCounter,
    progress: Callable[[str], None],
) -> tuple[list[Row], list[Target], list[str]]:
    """The memory section for one store: the quality workload (when ``quality_here``) on one
    fresh store, retrieval time on another."""
    plan = memory_plan(store_name, quick=quick, quality=quality_here)
    rows: list[Row] = []
    targets: list[Target] = []
    details: list[str] = []
    sections = (("memory", quality),) if plan.people else ()
    for section, measure in (*sections, ("recall", retrieval)):
        store = make_store(section)
        await store.open()
        try:
            more = await measure(
                store, store_name=store_name, plan=plan, tokens=tokens, progress=progress
            )
        finally:
            await store.close()
        rows += more[0]
        targets += more[1]
        details += more[2]
    return rows, targets, details
