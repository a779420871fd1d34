"""Model prices: a small YAML file (``PRICES_FILE``) of what a million tokens cost per model.

```yaml
currency: USD
models:
  gpt-4o-mini: {input: 0.15, cached_input: 0.075, output: 0.60}
```

A model that is not listed has no price: its cost is unknown, never zero. ``cached_input``
defaults to ``input`` (a server that gives no discount for its prompt cache).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import ConfigError

_MILLION = 1_000_000
_MAX_ERRORS = 3
MAX_PRICE = 1_000_000.0
"""Per million tokens: anything above is a typo."""


class ModelPrice(BaseModel):
    """What a million tokens of each kind cost."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(ge=0, le=MAX_PRICE)
    cached_input: float | None = Field(default=None, ge=0, le=MAX_PRICE)
    output: float = Field(ge=0, le=MAX_PRICE)

    def cost(self, *, input_tokens: int, cached_input_tokens: int, output_tokens: int) -> float:
        """``cached_input_tokens`` are part of ``input_tokens``, priced at ``cached_input``."""
        cached = min(cached_input_tokens, input_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        return (
            (input_tokens - cached) * self.input
            + cached * cached_price
            + output_tokens * self.output
        ) / _MILLION


class Prices(BaseModel):
    """The price table."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    currency: str = Field(default="USD", min_length=1, max_length=8)
    models: Mapping[str, ModelPrice] = Field(default_factory=dict)

    def of(self, model: str) -> ModelPrice | None:
        return self.models.get(model)


NO_PRICES = Prices()


def load_prices(path: Path | None) -> Prices:
    """The prices in ``path`` (none without a path); any problem is one ConfigError."""
    if path is None:
        return NO_PRICES
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{name}: file not found (set PRICES_FILE or create it)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read: {exc.__class__.__name__}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"{name}: not valid YAML") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{name}: expected a mapping with a 'models' mapping at the top")
    try:
        return Prices.model_validate(raw)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)[:_MAX_ERRORS]
        ]
        raise ConfigError(f"{name}: {'; '.join(problems)}") from None
