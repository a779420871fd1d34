"""Settings from the environment and ``.env``, under the names users of these SDKs know."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError
from config.redact import redact_url, url_secrets

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
DEFAULT_PROVIDER = "default"
"""The model provider of agents that name none: ``OPENAI_BASE_URL``, ``OPENAI_API_KEY``,
``BOT_MODEL`` and ``MODEL_CONCURRENCY``."""
PROVIDER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def _http_url(value: object) -> object:
    """A blank address is unset; any other must be http(s)."""
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
    return value


def _blank_is_unset(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


class ModelProvider(BaseModel):
    """One more OpenAI-compatible server agents may name (``provider: local``), set with
    ``MODEL_PROVIDERS__<NAME>__BASE_URL``, ``__API_KEY``, ``__MODEL`` and ``__CONCURRENCY``."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    base_url: str | None = None
    """Unset: OpenAI itself."""
    api_key: SecretStr | None = None
    model: str | None = None
    """The model of agents that name this provider and no model; default: ``BOT_MODEL``."""
    concurrency: int | None = Field(default=None, ge=1, le=1000)
    """Calls this process makes to it at once; default: ``MODEL_CONCURRENCY``."""

    @field_validator("base_url", mode="before")
    @classmethod
    def _url(cls, value: object) -> object:
        return _http_url(value)

    @field_validator("api_key", "model", mode="before")
    @classmethod
    def _blank(cls, value: object) -> object:
        return _blank_is_unset(value)

    @model_validator(mode="after")
    def _reachable(self) -> ModelProvider:
        if self.base_url is None and self.api_key is None:
            raise ValueError("set its BASE_URL (a compatible server) or its API_KEY (OpenAI)")
        return self

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "base_url" and value else value


class Settings(BaseSettings):
    """Every knob Parley reads. Tokens are secrets: they never appear in reprs or errors."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
        env_nested_delimiter="__",
    )

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_timeout: float = Field(default=60.0, gt=0)
    openai_max_retries: int = Field(default=2, ge=0, le=10)
    bot_model: str = "gpt-4o-mini"
    token_counting: Literal["estimate", "exact"] = "estimate"  # noqa: S105 - a mode, not a secret
    """How prompts, documents and unreported usage are counted in tokens: ``estimate`` (no
    table in memory; within about 0.85-1.5x of o200k_base, leaning high) or ``exact``
    (tiktoken's table for the model, about 75 MiB more per process)."""
    embedding_model: str | None = None
    """An embeddings model (the OpenAI-compatible embeddings endpoint): memory and knowledge
    are then also found by vector similarity. Without it, by keyword only."""
    embedding_base_url: str | None = None
    """Where the embeddings model is served; default: ``OPENAI_BASE_URL``."""
    embedding_api_key: SecretStr | None = None
    """Its key; default: ``OPENAI_API_KEY``."""
    model_providers: dict[str, ModelProvider] = Field(default_factory=dict)
    """More model servers by name, beside the default one; an agent names one with
    ``provider``. From ``MODEL_PROVIDERS__LOCAL__BASE_URL=...`` and the like."""

    mongodb_uri: SecretStr | None = None
    mongodb_db: str = Field(default="parley", pattern=r"^[A-Za-z0-9_-]{1,63}$")
    bot_data_dir: Path = Path("data")

    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_mode: Literal["socket", "http"] = "socket"
    slack_api_url: str | None = None

    discord_bot_token: SecretStr | None = None
    discord_api_url: str | None = None
    discord_sharded: bool = False
    """Run discord.py's automatic sharding (large bots, roughly 2,500 servers and more)."""
    discord_thread_on_mention: bool = False
    """A mention outside bound channels opens a thread, where the conversation then lives."""
    discord_command_sync: Literal["auto", "always", "never"] = "auto"
    """When the ``/agent`` commands are registered with Discord: ``auto`` when their
    definition changed since the registration recorded in the store (by one process),
    ``always`` at every start, ``never`` (they are registered some other way)."""

    agents_file: Path = Path("agents.yaml")
    host: str = "127.0.0.1"
    """The HTTP server's interface: this machine only by default (``make run``); the
    Dockerfile, docker-compose.yml and the Procfile set ``0.0.0.0``, which their platforms
    need to reach it."""
    port: int = Field(default=3000, ge=1, le=65535)

    api_enabled: bool = True
    api_max_body: int = Field(default=65_536, ge=1024, le=16 * 1024 * 1024)
    """Largest request body, in bytes; bigger ones get 413."""
    api_rate: float = Field(default=5.0, gt=0)
    """Requests per second per API key, sustained (a token bucket per process)."""
    api_burst: int = Field(default=30, ge=1)
    """Requests a key may make at once before ``api_rate`` applies."""
    agents_refresh_seconds: float = Field(default=30.0, ge=1)
    """How often stored agents are re-read for the goal-check schedule."""
    prices_file: Path | None = None
    """Model prices per million tokens (:mod:`config.pricing`); without it costs are unknown."""
    usage_buffer: int = Field(default=10_000, ge=1, le=1_000_000)
    """Usage records waiting to be stored at most; past it new ones are dropped and logged."""
    console_enabled: bool = True
    """The web console at ``/console`` (needs the API)."""
    console_secret: SecretStr | None = None
    """Signs console sessions; set it (any long random string) when several processes serve
    the console, or sessions made by one are refused by the others. Random per process if unset."""
    console_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    api_cors_origins: str = ""
    """Comma-separated origins allowed to call the API from browsers; empty turns CORS off."""
    api_turns_per_key: int = Field(default=4, ge=1, le=1000)
    """Turns one API key may have running or queued at once in this process; more get 429."""
    api_turn_share: float = Field(default=0.5, gt=0, le=0.95)
    """The share of the engine's pending turns that API and console turns may take together;
    the rest is kept for Slack and Discord."""
    max_queued_per_conversation: int = Field(default=8, ge=1, le=1000)
    """Turns one conversation may have running or queued at once; more are refused."""
    slack_max_body: int = Field(default=1_048_576, ge=65_536, le=16 * 1024 * 1024)
    """Largest body ``/slack/events`` accepts (a 40,000-character message with blocks that
    repeat it is well over 64 KB); the API keeps ``api_max_body``."""
    http_header_timeout: float = Field(default=5.0, gt=0, le=120)
    """Seconds a connection may take to send a request's complete headers before it is closed
    (slow-loris protection)."""
    http_max_connections: int = Field(default=1000, ge=10, le=100_000)
    """Open HTTP connections this process keeps at once; beyond it new ones are refused."""
    trusted_proxies: str = "127.0.0.1"
    """Comma-separated addresses (or ``*``) of reverse proxies whose ``X-Forwarded-For`` and
    ``X-Forwarded-Proto`` are believed: the client address for sign-in limits and logs, and
    ``https`` for the console's Secure cookie."""
    auth_failure_rate: float = Field(default=0.2, gt=0)
    """Failed authentications per second one client address may make, sustained."""
    auth_failure_burst: int = Field(default=10, ge=1)
    """Failed authentications one client address may make at once before it gets 429."""
    console_secure_cookie: bool = False
    """Always mark the console's cookie Secure (behind a TLS proxy that is not trusted)."""
    shutdown_grace: float = Field(default=8.0, ge=0, le=300)
    """Seconds replies in progress get to finish after SIGTERM (inside Docker's 10 s); what is
    left stays in the journal for the next process."""
    journal_lease_seconds: float = Field(default=30.0, ge=3, le=3600)
    """How long a conversation whose replies a process was writing stays with it after the
    process stopped renewing the lease (it crashed or hangs): then another process, or the
    restarted one, takes the conversation over. Shorter answers sooner after a crash; it must
    stay well above the longest stall of a live process (its event loop, the store)."""
    model_concurrency: int = Field(default=16, ge=1, le=1000)
    """Model calls this process makes at once (replies, summaries, goal checks); more wait."""
    log_level: LogLevel = "INFO"
    log_format: Literal["text", "json"] = "text"
    """``json`` also turns on HTTP access logs (one line per request)."""
    metrics_token: SecretStr | None = None
    """Bearer token ``GET /metrics`` asks for; without one the route is open."""
    otel_exporter_otlp_endpoint: str | None = None
    """OpenTelemetry's standard variable: the collector's OTLP/HTTP base address
    (``http://localhost:4318``); spans are exported there only when it is set."""

    @field_validator(
        "openai_api_key",
        "mongodb_uri",
        "slack_bot_token",
        "slack_app_token",
        "slack_signing_secret",
        "discord_bot_token",
        "console_secret",
        "metrics_token",
        mode="before",
    )
    @classmethod
    def _blank_secret_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator(
        "openai_base_url",
        "slack_api_url",
        "discord_api_url",
        "otel_exporter_otlp_endpoint",
        mode="before",
    )
    @classmethod
    def _url(cls, value: object) -> object:
        return _http_url(value)

    @field_validator("model_providers")
    @classmethod
    def _provider_names(cls, value: dict[str, ModelProvider]) -> dict[str, ModelProvider]:
        for name in value:
            if name == DEFAULT_PROVIDER:
                raise ValueError(
                    f"{name!r} is the provider set by OPENAI_BASE_URL, OPENAI_API_KEY and BOT_MODEL"
                )
            if not PROVIDER_NAME.fullmatch(name):
                raise ValueError(
                    f"{name!r} is not a provider name (lowercase letters, digits, - and _)"
                )
        return value

    @field_validator("slack_api_url", "discord_api_url")
    @classmethod
    def _no_user_info(cls, value: str | None) -> str | None:
        if value is not None and "@" in value.partition("://")[2].partition("/")[0]:
            raise ValueError(
                "must not hold a user name or password: the platform's client sends the bot "
                "token in the Authorization header, which such an address would replace"
            )
        return value

    @field_validator("mongodb_uri")
    @classmethod
    def _mongodb_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(
            ("mongodb://", "mongodb+srv://")
        ):
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _slack_mode_needs(self) -> Settings:
        if self.slack_bot_token is None:
            return self
        if self.slack_mode == "socket" and self.slack_app_token is None:
            raise ValueError(
                "SLACK_APP_TOKEN: Socket Mode needs an app-level token (xapp-...), "
                "or set SLACK_MODE=http"
            )
        if self.slack_mode == "http" and self.slack_signing_secret is None:
            raise ValueError("SLACK_SIGNING_SECRET: HTTP mode needs the app's signing secret")
        return self

    @property
    def cors_origins(self) -> list[str]:
        return [origin.strip() for origin in self.api_cors_origins.split(",") if origin.strip()]

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [ip.strip() for ip in self.trusted_proxies.split(",") if ip.strip()]

    @property
    def store_path(self) -> Path:
        """The embedded SQLite file, used when no MongoDB is configured."""
        return self.bot_data_dir / "parley.sqlite3"

    @property
    def model_configured(self) -> bool:
        """A model can be called: a key for OpenAI, or a base URL for a compatible server."""
        return self.openai_api_key is not None or self.openai_base_url is not None

    @property
    def provider_models(self) -> dict[str, str]:
        """The model of each provider that names one, for agents that name none."""
        return {
            name: provider.model
            for name, provider in self.model_providers.items()
            if provider.model is not None
        }

    @property
    def provider_names(self) -> tuple[str, ...]:
        """The model providers agents may name: the default one, then the others by name."""
        return (DEFAULT_PROVIDER, *sorted(self.model_providers))

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None

    @property
    def discord_enabled(self) -> bool:
        return self.discord_bot_token is not None

    def secrets(self) -> list[str]:
        """The secret values that are set, for redacting logs."""
        fields = (
            self.openai_api_key,
            self.embedding_api_key,
            self.mongodb_uri,
            self.slack_bot_token,
            self.slack_app_token,
            self.slack_signing_secret,
            self.discord_bot_token,
            self.console_secret,
            self.metrics_token,
        )
        keys = [provider.api_key for provider in self.model_providers.values()]
        values = [field.get_secret_value() for field in (*fields, *keys) if field is not None]
        for url in self.urls.values():
            values.extend(url_secrets(url))
        if self.mongodb_uri is not None:
            values.extend(url_secrets(self.mongodb_uri.get_secret_value()))
        return values

    @property
    def urls(self) -> dict[str, str | None]:
        """The servers' base addresses by setting name, as set (they may hold credentials:
        show them through :func:`config.redact.redact_url`)."""
        return {
            "openai_base_url": self.openai_base_url,
            "embedding_base_url": self.embedding_base_url,
            "slack_api_url": self.slack_api_url,
            "discord_api_url": self.discord_api_url,
            "otel_exporter_otlp_endpoint": self.otel_exporter_otlp_endpoint,
            **{
                f"model_providers__{name}__base_url": provider.base_url
                for name, provider in self.model_providers.items()
            },
        }

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Reprs show the base URLs without their credentials (tokens are SecretStr already)."""
        for name, value in super().__repr_args__():
            if name in self.urls and isinstance(value, str):
                yield name, redact_url(value)
            else:
                yield name, value


def load_settings(env_file: Path | None = Path(".env")) -> Settings:
    """Read settings, turning validation errors into one short ConfigError without values."""
    try:
        return Settings(_env_file=env_file)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_input=False, include_url=False):
            name = "__".join(str(part) for part in error["loc"]).upper()
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(f"{name}: {message}" if name else message)
        raise ConfigError("settings: " + "; ".join(problems)) from None
