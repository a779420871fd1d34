"""Agents created through the API name only configured model providers."""

from __future__ import annotations

import pytest

from bot.catalog import AgentCatalog
from bot.errors import ConfigError
from memory.base import ConversationStore
from tests.support.agents import agents_file, chef, plain


async def test_an_agent_created_or_replaced_names_a_configured_provider(
    sqlite_store: ConversationStore,
) -> None:
    catalog = AgentCatalog(agents_file(chef()), sqlite_store, providers=("default", "local"))

    created = await catalog.create(plain(provider="local"))
    assert created.provider == "local"
    with pytest.raises(ConfigError, match="provider: 'lcoal' is not a configured model provider"):
        await catalog.replace("plain", plain(provider="lcoal"))
    with pytest.raises(ConfigError, match="'gone' is not a configured model provider"):
        await catalog.create(plain(id="other", provider="gone"))
    assert await sqlite_store.get_agent(agent_id="other") is None
    stored = await sqlite_store.get_agent(agent_id="plain")
    assert stored is not None
    assert stored.definition["provider"] == "local"
