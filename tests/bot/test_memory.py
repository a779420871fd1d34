"""People memory through the engine: a fact told in one conversation reaches the prompts of
the same person's later conversations, and no one else's; the memory field never reaches the
stored data; the rules of bot.memory on their own."""

from __future__ import annotations

import pytest

from bot.commands.memories import PersonMemories
from bot.commands.outcomes import Said
from bot.consolidation import MEMORY_MARKER
from bot.engine import Engine, IncomingMessage
from bot.errors import ConfigError, StoreUnavailable
from bot.extraction import EXTRACT_MARKER
from bot.memory import (
    MAX_FACTS_PER_REPLY,
    MEMORY_HEADING,
    PLAIN_REPLY_FIELD,
    PeopleMemory,
    answering_agent,
    memory_scope,
    take_facts,
)
from bot.prompt import MESSAGE_OVERHEAD_TOKENS
from config.agents import MEMORY_FIELD
from memory.base import (
    API_KEY_AUTHOR,
    ConversationStore,
    MemoryQuery,
    MemoryScope,
    NewMemory,
    PlatformKey,
)
from tests.support.agents import agent, agents_file, chef, plain
from tests.support.engines import EngineFactory
from tests.support.fake_openai import FakeOpenAI, RecordedRequest
from tests.support.waiting import eventually

MEMORY_ON = {"memory": {"extract": "inline"}}


def thread(n: int, workspace: str = "T1", channel: str = "C1") -> PlatformKey:
    return PlatformKey(platform="slack", workspace=workspace, channel=channel, thread=f"{n}.0")


def said(text: str, key: PlatformKey, person: str = "U_ADA", name: str = "Ada") -> IncomingMessage:
    return IncomingMessage(key=key, text=text, author_id=person, author_name=name)


def memory_message(request: RecordedRequest) -> str:
    """The prompt's memory message ("" when there is none)."""
    heading = MEMORY_HEADING.split("{name}")[0]
    for message in request.messages:
        content = message.get("content")
        system = message.get("role") == "system" and isinstance(content, str)
        if system and str(content).startswith(heading):
            return str(content)
    return ""


async def ask(engine: Engine, fake_openai: FakeOpenAI, incoming: IncomingMessage) -> str:
    """Run a turn; the memory message its prompt carried."""
    await engine.reply(incoming).result()
    return memory_message(fake_openai.chat_requests()[-1])


@pytest.fixture
def chef_engine(make_engine: EngineFactory) -> Engine:
    return make_engine(agents_file(chef(**MEMORY_ON)))


async def test_a_fact_told_in_one_thread_reaches_the_same_persons_next_thread(
    chef_engine: Engine, fake_openai: FakeOpenAI
) -> None:
    first = await ask(chef_engine, fake_openai, said("I am allergic to peanuts.", thread(1)))
    assert first == "", "nothing known yet"
    later = await ask(chef_engine, fake_openai, said("What should I cook tonight?", thread(2)))
    assert "Ada" in later
    assert "- I am allergic to peanuts." in later


async def test_memories_stay_with_their_person_and_workspace(
    chef_engine: Engine, fake_openai: FakeOpenAI
) -> None:
    await ask(chef_engine, fake_openai, said("My favourite herb is basil.", thread(1)))
    bob = await ask(chef_engine, fake_openai, said("Any ideas?", thread(2), "U_BOB", "Bob"))
    assert bob == "", "another person's memories are never used"
    in_shared_thread = await ask(
        chef_engine, fake_openai, said("And for me?", thread(1), "U_BOB", "Bob")
    )
    assert in_shared_thread == "", "not even in the thread where Ada said it"
    elsewhere = await ask(chef_engine, fake_openai, said("Ideas?", thread(3, workspace="T2")))
    assert elsewhere == "", "another workspace is another person's scope"
    again = await ask(chef_engine, fake_openai, said("Ideas?", thread(4)))
    assert "basil" in again


async def test_a_fact_learned_in_a_direct_message_stays_in_direct_messages(
    chef_engine: Engine, fake_openai: FakeOpenAI
) -> None:
    dm = PlatformKey(platform="slack", workspace="T1", channel="D0123", thread="1.0")
    await ask(chef_engine, fake_openai, said("I am pregnant.", dm))
    in_channel = await ask(chef_engine, fake_openai, said("Dinner ideas?", thread(5)))
    assert "pregnant" not in in_channel
    other_dm = dm.model_copy(update={"thread": "2.0"})
    assert "pregnant" in await ask(chef_engine, fake_openai, said("Dinner ideas?", other_dm))
    (kept,) = await chef_engine.store.list_memories(MemoryQuery(person="U_ADA"))
    assert kept.private


async def test_the_memory_field_never_reaches_stored_data(
    chef_engine: Engine, fake_openai: FakeOpenAI
) -> None:
    result = await chef_engine.reply(said("I live in Paris.", thread(1))).result()
    assert result.data is not None
    assert MEMORY_FIELD not in result.data
    assert set(result.data) == {"answer", "recipes", "ingredients", "summary"}
    assert result.reply.data == result.data
    request = fake_openai.chat_requests()[-1]
    assert request.response_format is not None
    schema = request.response_format["json_schema"]["schema"]
    assert MEMORY_FIELD in schema["properties"]
    assert MEMORY_FIELD in schema["required"], "strict schemas require every field"
    (kept,) = await chef_engine.store.list_memories(MemoryQuery(person="U_ADA"))
    assert (kept.text, kept.conversation_id, kept.message_id) == (
        "I live in Paris.",
        result.conversation.id,
        result.reply.id,
    )
    assert kept.scope == MemoryScope(
        platform="slack", workspace="T1", person="U_ADA", agent_id="chef"
    )


async def test_a_plain_agent_with_memory_answers_in_text_and_keeps_no_data(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine(agents_file(plain(**MEMORY_ON)))
    result = await engine.reply(said("My name is Ada. Hello!", thread(1))).result()
    assert result.text == "You said: Ada: My name is Ada. Hello!"
    assert result.data is None
    assert result.reply.data is None
    await engine.reply(said("what's my name?", thread(2))).result()
    named = await engine.reply(said("what's my name?", thread(3))).result()
    assert named.text == "Your name is Ada.", "the fact reached the model in a new thread"


async def test_memory_off_keeps_nothing_and_asks_for_nothing(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine(agents_file(chef()))
    await engine.reply(said("I am allergic to peanuts.", thread(1))).result()
    request = fake_openai.chat_requests()[-1]
    assert request.response_format is not None
    assert MEMORY_FIELD not in request.response_format["json_schema"]["schema"]["properties"]
    assert await engine.store.list_memories(MemoryQuery()) == []


async def test_shared_memory_is_read_by_every_agent_of_the_workspace(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    shared = {"memory": {"extract": "inline", "shared": True}}
    engine = make_engine(agents_file(chef(**shared), plain(**shared), default="chef"))
    await ask(engine, fake_openai, said("I am vegetarian.", thread(1)))
    other = IncomingMessage(
        key=thread(2), text="Hello", author_id="U_ADA", author_name="Ada", agent_id="plain"
    )
    assert "vegetarian" in await ask(engine, fake_openai, other)


async def test_memory_respects_its_token_budget(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    engine = make_engine(agents_file(chef(memory={"extract": "inline"}, memory_tokens=60)))
    scope = MemoryScope(platform="slack", workspace="T1", person="U_ADA", agent_id="chef")
    await engine.store.add_memories(
        [NewMemory(scope=scope, text=f"Fact number {n} about cooking pasta") for n in range(40)]
    )
    block = await ask(engine, fake_openai, said("pasta?", thread(1)))
    assert 0 < block.count("\n- ") < 40
    assert engine.count_tokens(block, engine.agents.default) <= 60


async def test_the_memory_message_with_its_overhead_stays_within_the_budget(
    sqlite_store: ConversationStore,
) -> None:
    """Counted in characters, five facts fill ``memory_tokens`` exactly; the message that
    carries them costs its overhead too, so four are recalled."""
    heading = MEMORY_HEADING.format(name="Ada")
    facts = [f"fact {n:05d}" for n in range(5)]
    budget = len(heading) + sum(len(f"\n- {fact}") for fact in facts)
    chef_agent = agent(memory={"extract": "inline"}, memory_tokens=budget)
    scope = MemoryScope(platform="slack", workspace="T1", person="U_ADA", agent_id="chef")
    await sqlite_store.add_memories([NewMemory(scope=scope, text=fact) for fact in facts])
    recalled = await PeopleMemory(sqlite_store).recall(
        chef_agent, thread(1), person="U_ADA", name="Ada", query="fact", count=len
    )
    assert recalled is not None
    assert len(recalled.memories) == 4
    assert recalled.tokens == len(recalled.block)
    assert recalled.tokens + MESSAGE_OVERHEAD_TOKENS <= budget


async def test_known_facts_are_not_kept_twice(chef_engine: Engine, fake_openai: FakeOpenAI) -> None:
    for n in (1, 2):
        await ask(chef_engine, fake_openai, said("I am allergic to peanuts.", thread(n)))
    kept = await chef_engine.store.list_memories(MemoryQuery(person="U_ADA"))
    assert [memory.text for memory in kept] == ["I am allergic to peanuts."]


async def test_a_store_failure_in_memory_leaves_the_reply_standing(
    make_engine: EngineFactory, sqlite_store: ConversationStore, fake_openai: FakeOpenAI
) -> None:
    class Forgetful:
        def __init__(self, store: ConversationStore) -> None:
            self._store = store

        async def recall_memories(self, *args: object, **kwargs: object) -> object:
            raise StoreUnavailable("memory is down")

        add_memories = recall_memories

        def __getattr__(self, name: str) -> object:
            return getattr(self._store, name)

    engine = make_engine(agents_file(chef(**MEMORY_ON)), store=Forgetful(sqlite_store))  # type: ignore[arg-type]
    result = await engine.reply(said("I am allergic to peanuts.", thread(1))).result()
    assert result.text == "You said: Ada: I am allergic to peanuts."
    assert not result.failed


async def test_a_later_fact_supersedes_the_one_it_contradicts(
    chef_engine: Engine, fake_openai: FakeOpenAI
) -> None:
    """Consolidation, in the background after a fact is learned, marks the older fact
    superseded: the next conversation is given only the newer one."""
    await ask(chef_engine, fake_openai, said("I live in Paris.", thread(1)))
    await ask(chef_engine, fake_openai, said("I moved to Berlin.", thread(2)))

    async def consolidated() -> bool:
        current = await chef_engine.store.list_memories(MemoryQuery(person="U_ADA"))
        return [memory.text for memory in current] == ["I moved to Berlin."]

    await eventually(consolidated)
    block = await ask(chef_engine, fake_openai, said("Where should I eat?", thread(3)))
    assert "Berlin" in block
    assert "Paris" not in block, "a superseded fact is never given to the model"
    history = await chef_engine.store.list_memories(
        MemoryQuery(person="U_ADA", include_superseded=True)
    )
    assert [memory.text for memory in history] == ["I moved to Berlin.", "I live in Paris."]
    consolidations = [r for r in fake_openai.chat_requests() if MEMORY_MARKER in r.system_text]
    assert len(consolidations) == 1, "one call for the person, not one per fact or turn"


# the rules on their own ------------------------------------------------------------------


def test_memory_scope_follows_the_agent_and_the_speaker() -> None:
    on = agent(**MEMORY_ON)
    key = thread(1)
    assert memory_scope(on, key, "U_ADA") == MemoryScope(
        platform="slack", workspace="T1", person="U_ADA", agent_id="chef"
    )
    assert memory_scope(on, key, "") is None, "an unknown speaker has no memories"
    api = PlatformKey(platform="api", channel="c" * 32)
    assert memory_scope(on, api, f"{API_KEY_AUTHOR}{'k' * 32}") is None, (
        "an API key speaks for any number of people: none of their facts may meet"
    )
    assert memory_scope(agent(), key, "U_ADA") is None, "memory off"
    shared = agent(memory={"extract": "inline", "shared": True})
    scope = memory_scope(shared, key, "U_ADA")
    assert scope is not None
    assert scope.agent_id == ""


def test_answering_agent_adds_the_field_and_take_facts_removes_it() -> None:
    on = agent(**MEMORY_ON)
    answering = answering_agent(on)
    assert answering.response_shape is not None
    assert MEMORY_FIELD in answering.response_shape["properties"]
    assert on.response_shape is not None
    assert MEMORY_FIELD not in on.response_shape["properties"], "the agent is untouched"
    data = {"answer": "hi", "recipes": [], "ingredients": [], "summary": "", MEMORY_FIELD: []}
    facts = [" Likes  basil ", "likes basil", "", 3, *(f"fact {n}" for n in range(9))]
    own, kept = take_facts(on, {**data, MEMORY_FIELD: facts})
    assert own == {k: v for k, v in data.items() if k != MEMORY_FIELD}
    assert kept[0] == "Likes basil"
    assert len(kept) == MAX_FACTS_PER_REPLY
    assert take_facts(on, None) == (None, [])
    plain_on = answering_agent(agents_file(plain(**MEMORY_ON)).default)
    assert plain_on.reply_field == PLAIN_REPLY_FIELD
    plain_own, plain_facts = take_facts(
        agents_file(plain(**MEMORY_ON)).default, {"answer": "x", MEMORY_FIELD: ["a fact"]}
    )
    assert (plain_own, plain_facts) == (None, ["a fact"])


def test_an_agent_cannot_keep_memory_beside_a_field_of_that_name() -> None:
    with pytest.raises(ConfigError, match="'remember' is the field memory adds"):
        agent(
            memory={"extract": "inline"}, response_shape={"answer": "String", "remember": "String"}
        )


async def test_api_turns_keep_no_people_memory(
    chef_engine: Engine, fake_openai: FakeOpenAI
) -> None:
    api = PlatformKey(platform="api", channel="c" * 32)
    key_author = f"{API_KEY_AUTHOR}{'k' * 32}"
    for text in ("I am allergic to peanuts.", "Ideas?"):
        incoming = IncomingMessage(key=api, text=text, author_id=key_author, author_name="Ada")
        await chef_engine.reply(incoming).result()
        assert memory_message(fake_openai.chat_requests()[-1]) == ""
    assert await chef_engine.store.list_memories(MemoryQuery()) == []


async def test_background_extraction_learns_every_few_turns_without_the_field(
    make_engine: EngineFactory, fake_openai: FakeOpenAI
) -> None:
    """For models that handle the extra field badly: replies stay the agent's own shape, and
    one call every four turns of a person lists what they revealed."""
    engine = make_engine(agents_file(chef(memory={"extract": "background"})))
    key = thread(1)
    for text in ("Hello.", "I am allergic to peanuts.", "Any soup ideas?"):
        await engine.reply(said(text, key)).result()
    request = fake_openai.chat_requests()[-1]
    assert request.response_format is not None
    assert MEMORY_FIELD not in request.response_format["json_schema"]["schema"]["properties"]
    assert await engine.store.list_memories(MemoryQuery()) == [], "not before the fourth turn"
    await engine.reply(said("Thanks!", key)).result()

    async def learned() -> bool:
        return bool(await engine.store.list_memories(MemoryQuery(person="U_ADA")))

    await eventually(learned)
    (kept,) = await engine.store.list_memories(MemoryQuery(person="U_ADA"))
    assert kept.text == "I am allergic to peanuts."
    extractions = [r for r in fake_openai.chat_requests() if EXTRACT_MARKER in r.system_text]
    assert len(extractions) == 1, "one call for four turns"
    block = await ask(engine, fake_openai, said("Dinner?", thread(2)))
    assert "I am allergic to peanuts." in block


async def test_a_forgotten_fact_is_gone_from_the_next_thread(
    chef_engine: Engine, fake_openai: FakeOpenAI
) -> None:
    """What ``/agent memory forget`` does (bot.commands.memories) reaches the prompts: the
    next new thread no longer knows the fact."""
    await ask(chef_engine, fake_openai, said("I am allergic to peanuts.", thread(1)))
    assert "peanuts" in await ask(chef_engine, fake_openai, said("Ideas?", thread(2)))
    agent = chef_engine.agents.default
    forgotten = await PersonMemories(chef_engine.store).run(
        agent, key=thread(3), person="U_ADA", argument="forget 1", prefix="/agent "
    )
    assert isinstance(forgotten, Said)
    assert forgotten.text == "Forgotten: “I am allergic to peanuts.”."
    assert await ask(chef_engine, fake_openai, said("Ideas?", thread(4))) == ""
