from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import tiktoken

from bot.tokens import TokenCounter, encoding_name_for, estimate_tokens, seed_encoding


@pytest.fixture
def empty_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A tiktoken cache with nothing in it: only the shipped files can help."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_counts_exactly_offline_from_an_empty_cache(empty_cache: Path) -> None:
    counter = TokenCounter()
    assert counter.count("Hello, world!", "gpt-4o-mini") == 4
    assert counter.exact("gpt-4o-mini")
    assert counter.count("Hello, world!", "gpt-4") == 4
    assert counter.count("", "gpt-4o") == 0
    assert len(list(empty_cache.iterdir())) == 2, "o200k_base and cl100k_base were seeded"


def test_special_token_text_is_counted_not_refused(empty_cache: Path) -> None:
    assert TokenCounter().count("<|endoftext|>", "gpt-4o") > 1


def test_model_names_map_to_encodings() -> None:
    assert encoding_name_for("gpt-4o-mini") == "o200k_base"
    assert encoding_name_for("gpt-4") == "cl100k_base"
    assert encoding_name_for("llama3.1:8b") == "o200k_base"


def test_seeded_file_is_what_tiktoken_verifies(empty_cache: Path) -> None:
    assert seed_encoding("o200k_base")
    assert seed_encoding("o200k_base"), "seeding twice is harmless"
    assert not seed_encoding("r50k_base"), "only shipped encodings can be seeded"
    encoding = tiktoken.get_encoding("o200k_base")
    assert encoding.decode(encoding.encode("paella valenciana")) == "paella valenciana"


def test_falls_back_to_an_estimate_when_no_encoding_can_be_had(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")

    def unavailable(name: str) -> tiktoken.Encoding:
        raise ConnectionError(f"cannot download {name}")

    monkeypatch.setattr(tiktoken, "get_encoding", unavailable)
    counter = TokenCounter()
    assert counter.count("x" * 40, "gpt-4o") == estimate_tokens("x" * 40) == 10
    assert not counter.exact("gpt-4o")
    assert "estimating" in caplog.text


def test_repeated_texts_are_counted_once(
    empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = TokenCounter(cache_size=2)
    counter.warm("gpt-4o")
    calls: list[str] = []
    real = counter._encoder

    def spying(name: str) -> Callable[[str], int]:
        calls.append(name)
        return real(name)

    monkeypatch.setattr(counter, "_encoder", spying)
    system_prompt = "You are a Mediterranean chef. " * 20
    assert counter.count(system_prompt, "gpt-4o") == counter.count(system_prompt, "gpt-4o")
    assert len(calls) == 1, "the second count came from the cache"
    counter.count("a", "gpt-4o")
    counter.count("b", "gpt-4o")
    counter.count(system_prompt, "gpt-4o")
    assert len(calls) == 4, "the cache is bounded: the oldest entry was evicted"
    huge = "x " * 10_000
    counter.count(huge, "gpt-4o")
    counter.count(huge, "gpt-4o")
    assert len(calls) == 6, "texts over 16 KB are not kept"
