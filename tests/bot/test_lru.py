"""The bounded mapping behind caches and per-key tables."""

from __future__ import annotations

import pytest

from bot.lru import BoundedLRU


def test_bounded_lru_forgets_the_least_recently_used() -> None:
    cache: BoundedLRU[str, int] = BoundedLRU(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert "b" not in cache
    assert len(cache) == 2
    assert cache.get("a") == 1
    with pytest.raises(ValueError, match="capacity"):
        BoundedLRU(0)


def test_pop_and_iteration_see_a_snapshot() -> None:
    cache: BoundedLRU[str, int] = BoundedLRU(3)
    for index, key in enumerate("abc"):
        cache.put(key, index)
    assert cache.get("a") == 0
    for key in cache:
        cache.pop(key)
    assert len(cache) == 0
    assert cache.pop("a") is None
    cache.put("d", 4)
    assert list(cache.values()) == [4]
