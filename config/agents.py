"""The agents file: who each agent is, how it answers, its goal and where it lives.

A bad file is refused with one readable line per problem that names the file, the agent and
the field, e.g. ``agents.yaml: agent 'chef': response_shape: ...``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.errors import ConfigError
from config.schemas import schema_problems

AGENT_ID = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_DURATION = re.compile(r"(\d+)\s*([dhms])")
_DURATION_UNITS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
_SLACK_CHANNEL = r"^(T[A-Z0-9]+:)?[CGD][A-Z0-9]+$"
_DISCORD_CHANNEL = r"^[0-9]{5,25}$"
_POST_TO = re.compile(r"^(thread|slack:(T[A-Z0-9]+:)?[CGD][A-Z0-9]+|discord:[0-9]{5,25})$")
_MAX_ERRORS = 5
PROVIDERS_CONTEXT = "providers"
"""Validation context key: the model provider names agents may use."""

DEFAULT_APOLOGY = "Sorry, I couldn't answer just now. Please try again in a moment."
DEFAULT_BUDGET_MESSAGE = (
    "I have used up today's budget and cannot answer now. Please try again tomorrow."
)
DEFAULT_CLOSING = (
    "We have reached the end of this conversation. Thank you! "
    "Send a new message any time to start a fresh one."
)


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def parse_duration(value: object) -> timedelta:
    """``90`` (seconds), ``"45s"``, ``"30m"``, ``"1h"``, ``"1h30m"`` or ``"2d"``."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as 30m, 1h or 1d")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError(f"{value!r} is not a duration such as 30m, 1h or 1d")
        seconds = float(sum(int(number) * _DURATION_UNITS[unit] for number, unit in parts))
    else:
        raise ValueError("must be a duration such as 30m, 1h or 1d")
    if seconds < 60:
        raise ValueError("must be at least one minute")
    return timedelta(seconds=seconds)


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAY_NUMBERS = {name: number for number, name in enumerate(_DAY_NAMES)}
_MONTH_NUMBERS = {name: number for number, name in enumerate(_MONTH_NAMES, start=1)}
_CRON_ITEM = re.compile(
    r"(?P<first>\*|[0-9]+|[a-z]+)(?:-(?P<last>[0-9]+|[a-z]+))?(?:/(?P<step>[0-9]+))?"
)


class CrontabFields(NamedTuple):
    """A checked five-field crontab expression; ``day_of_week`` holds day names (``mon,tue``)
    or ``*``, because schedulers disagree on which day number 0 is."""

    minute: str
    hour: str
    day: str
    month: str
    day_of_week: str


def _cron_item(item: str, field: str, low: int, high: int, names: Mapping[str, int]) -> range:
    """The values one item of a crontab field (``*``, ``5``, ``1-5``, ``*/15``, ``mon-fri``)
    stands for, checked against the field's range; names are read through ``names``."""
    match = _CRON_ITEM.fullmatch(item.lower())
    if match is None:
        raise ValueError(f"{field} {item!r} is not a number, a range or */step")
    first_text, last_text, step_text = match.group("first", "last", "step")

    def value(text: str, *, ends_range: bool = False) -> int:
        if text.isdigit():
            return int(text)
        if text not in names:
            kind = f"a {field} number or name" if names else "a number"
            raise ValueError(f"{field} {item!r}: {text!r} is not {kind}")
        # Sunday ends a range as 7 (``sat-sun``), as cron allows.
        return 7 if ends_range and text == "sun" else names[text]

    if first_text == "*":
        if last_text is not None:
            raise ValueError(f"{field} {item!r} is not a number, a range or */step")
        first, last = low, high
    else:
        first = value(first_text)
        if last_text is not None:
            last = value(last_text, ends_range=True)
        else:
            last = high if step_text is not None else first
    if not (low <= first <= high and low <= last <= high):
        raise ValueError(f"{field} {item!r} is out of range {low}-{high}")
    if first > last:
        raise ValueError(f"{field} {item!r} is a range that ends before it starts")
    step = int(step_text) if step_text is not None else 1
    if step < 1:
        raise ValueError(f"{field} {item!r}: the step must be at least 1")
    return range(first, last + 1, step)


def _crontab_field(text: str, field: str, low: int, high: int) -> str:
    """Check a minute, hour, day or month field; it is kept as written (schedulers read
    these the way cron does)."""
    for item in text.split(","):
        if field == "day" and item.lower() == "last":
            continue
        values = _cron_item(item, field, low, high, _MONTH_NUMBERS if field == "month" else {})
        if "/" in item:
            if any(character.isalpha() for character in item):
                raise ValueError(f"{field} {item!r}: month names take no step")
            if values.step > values.stop - 1 - values.start:
                raise ValueError(f"{field} {item!r}: the step is larger than its range")
    return text


def crontab_weekdays(field: str) -> str:
    """A crontab day-of-week field (0 or 7 = Sunday, or names) as day names.

    APScheduler 3 numbers days from Monday = 0, so ``1-5`` would silently mean Tuesday to
    Saturday; names are unambiguous.
    """
    if field == "*":
        return field
    days: list[str] = []
    for item in field.split(","):
        values = _cron_item(item, "day of week", 0, 7, _DAY_NUMBERS)
        days += [_DAY_NAMES[day % 7] for day in values]
    return ",".join(dict.fromkeys(days))


def crontab_fields(expression: str) -> CrontabFields:
    """Check a standard five-field crontab expression: ``*``, numbers, ranges, lists and
    steps, month and day names, and ``last`` (day of the month)."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"cron {expression!r} needs five fields: minute hour day month weekday")
    minute, hour, day, month, weekday = fields
    return CrontabFields(
        minute=_crontab_field(minute, "minute", 0, 59),
        hour=_crontab_field(hour, "hour", 0, 23),
        day=_crontab_field(day, "day", 1, 31),
        month=_crontab_field(month, "month", 1, 12),
        day_of_week=crontab_weekdays(weekday),
    )


class GoalCheckSpec(_Spec):
    """When to check the goal (``cron`` or ``every``, in ``timezone``) and where to post."""

    cron: str | None = None
    every: timedelta | None = None
    timezone: str = "UTC"
    post_to: str = "thread"

    @field_validator("every", mode="before")
    @classmethod
    def _every(cls, value: object) -> object:
        return None if value is None else parse_duration(value)

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name like Europe/Madrid)"
            ) from None
        return value

    @field_validator("post_to")
    @classmethod
    def _post_to(cls, value: str) -> str:
        if not _POST_TO.fullmatch(value):
            raise ValueError(
                f"{value!r} must be 'thread', 'slack:CHANNEL_ID' or 'discord:CHANNEL_ID'"
            )
        return value

    @model_validator(mode="after")
    def _one_schedule(self) -> GoalCheckSpec:
        if (self.cron is None) == (self.every is None):
            raise ValueError("give exactly one of 'cron' or 'every'")
        if self.cron is not None:
            try:
                crontab_fields(self.cron)
            except ValueError as exc:
                raise ValueError(
                    f"cron {self.cron!r} is not a valid crontab expression: {exc}"
                ) from None
        return self


class Bindings(_Spec):
    """Channels that use this agent: Slack ids (``C0123`` or ``TEAM:C0123``), Discord ids."""

    slack: tuple[str, ...] = ()
    discord: tuple[str, ...] = ()

    @field_validator("slack", "discord", mode="before")
    @classmethod
    def _strings(cls, value: object) -> object:
        if isinstance(value, str | int):
            value = [value]
        if isinstance(value, list):
            return [
                str(item) if isinstance(item, int) and not isinstance(item, bool) else item
                for item in value
            ]
        return value

    @field_validator("slack")
    @classmethod
    def _slack(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for channel in value:
            if not re.fullmatch(_SLACK_CHANNEL, channel):
                raise ValueError(
                    f"{channel!r} is not a Slack channel id like C0123ABCD or T01:C0123ABCD"
                )
        return value

    @field_validator("discord")
    @classmethod
    def _discord(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for channel in value:
            if not re.fullmatch(_DISCORD_CHANNEL, channel):
                raise ValueError(f"{channel!r} is not a Discord channel id (digits)")
        return value


_SIMPLE_TYPES: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (
        ("list of string", "array of string", "list of text"),
        {"type": "array", "items": {"type": "string"}},
    ),
    (("list of integer", "array of integer"), {"type": "array", "items": {"type": "integer"}}),
    (("list of number", "array of number"), {"type": "array", "items": {"type": "number"}}),
    (("list", "array"), {"type": "array", "items": {"type": "string"}}),
    (("string", "text"), {"type": "string"}),
    (("integer", "int ", "int,"), {"type": "integer"}),
    (("number", "float", "decimal"), {"type": "number"}),
    (("boolean", "bool", "true or false", "yes or no"), {"type": "boolean"}),
)


def _infer_property(description: str) -> dict[str, Any]:
    """A property schema from a hand-written description such as ``"List of strings with..."``."""
    lowered = description.strip().lower()
    for prefixes, schema in _SIMPLE_TYPES:
        if lowered.startswith(prefixes):
            return {**schema, "description": description.strip()}
    return {"type": "string", "description": description.strip()}


def normalise_response_shape(shape: object) -> dict[str, Any]:
    """Accept a JSON Schema object, or the simple ``{field: description}`` form, as a schema."""
    if not isinstance(shape, dict) or not shape:
        raise ValueError(
            "must be a mapping of field names to descriptions, or a JSON Schema object"
        )
    if "properties" in shape or shape.get("type") == "object":
        return _checked(_check_schema(shape))
    properties: dict[str, Any] = {}
    for name, spec in shape.items():
        if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name):
            raise ValueError(f"field {name!r} is not a valid name (letters, digits, underscore)")
        if isinstance(spec, str):
            properties[name] = _infer_property(spec)
        elif isinstance(spec, dict):
            properties[name] = spec
        else:
            raise ValueError(f"field {name!r}: give a description string or a JSON Schema")
    return _checked(
        {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        }
    )


def _checked(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema``, once JSON Schema itself finds nothing wrong with it."""
    problems = schema_problems(schema)
    if problems:
        raise ValueError("; ".join(problems[:3]))
    return schema


def _check_schema(schema: dict[str, Any]) -> dict[str, Any]:
    if schema.get("type") != "object":
        raise ValueError("a JSON Schema response shape must have type: object")
    properties = schema.get("properties")
    if not isinstance(properties, dict) or not properties:
        raise ValueError("a JSON Schema response shape needs a non-empty 'properties' mapping")
    for name, spec in properties.items():
        if not _FIELD_NAME.fullmatch(str(name)):
            raise ValueError(f"field {name!r} is not a valid name (letters, digits, underscore)")
        if not isinstance(spec, dict):
            raise ValueError(f"field {name!r}: its schema must be a mapping")
    required = schema.get("required", [])
    if not isinstance(required, list) or any(item not in properties for item in required):
        raise ValueError("'required' must list fields that are in 'properties'")
    return schema


MEMORY_FIELD = "remember"
"""The reply field in which the model lists new facts about the person (when memory is on)."""


class MemorySpec(_Spec):
    """What an agent remembers about people across conversations.

    ``extract``: ``inline`` asks the model for new facts in its reply (no extra call);
    ``background`` keeps replies plain and asks in one call every few turns of a person (for
    models that handle the extra field badly); ``off`` keeps no memories. ``shared``: all
    agents of a workspace share a person's memories instead of each keeping its own.
    """

    extract: Literal["inline", "background", "off"] = "off"
    shared: bool = False

    @property
    def on(self) -> bool:
        return self.extract != "off"


class Agent(_Spec):
    """One agent: its persona, rules, reply shape, goal and channels."""

    id: str = Field(pattern=AGENT_ID)
    name: str = Field(min_length=1, max_length=80)
    model: str | None = None
    provider: str | None = None
    """The model provider (server and key) this agent's calls go to; None: the default one.
    Checked against the configured providers when the validation context names them."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_output_tokens: int | None = Field(default=None, gt=0, le=200_000)
    context: str = Field(min_length=1)
    first_message: str = Field(min_length=1)
    instructions: str = ""
    response_shape: dict[str, JsonValue] | None = None
    reply_field: str = "answer"
    goal: str | None = None
    goal_check: GoalCheckSpec | None = None
    max_turns: int | None = Field(default=None, gt=0)
    context_tokens: int = Field(default=3000, ge=200, le=1_000_000)
    apology: str = Field(default=DEFAULT_APOLOGY, min_length=1)
    """What the user sees when the model fails after its retries."""
    closing_message: str = Field(default=DEFAULT_CLOSING, min_length=1)
    """The polite last line once ``max_turns`` is passed."""
    daily_token_budget: int | None = Field(default=None, gt=0, le=10_000_000_000)
    """Tokens (input and output, every purpose) the agent may use per UTC day; past it the
    agent answers with ``budget_message`` and calls no model."""
    budget_message: str = Field(default=DEFAULT_BUDGET_MESSAGE, min_length=1, max_length=500)
    """The short line people see once the day's budget is spent."""
    bindings: Bindings = Field(default_factory=Bindings)
    memory: MemorySpec = Field(default_factory=MemorySpec)
    memory_tokens: int = Field(default=300, ge=0, le=100_000)
    """Prompt tokens for what the agent remembers about the speaker."""
    knowledge: tuple[str, ...] = ()
    """Documents (files or folders, relative to the agents file) the agent knows."""
    knowledge_tokens: int = Field(default=800, ge=0, le=1_000_000)
    """Prompt tokens for passages of the agent's documents."""

    @field_validator("provider")
    @classmethod
    def _provider(cls, value: str | None, info: ValidationInfo) -> str | None:
        providers = (info.context or {}).get(PROVIDERS_CONTEXT)
        if value is None or providers is None or value in providers:
            return value
        configured = ", ".join(providers)
        raise ValueError(
            f"{value!r} is not a configured model provider (configured: {configured}); "
            f"set MODEL_PROVIDERS__{value.upper()}__BASE_URL or __API_KEY"
        )

    @field_validator("knowledge", mode="before")
    @classmethod
    def _paths(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("response_shape", mode="before")
    @classmethod
    def _shape(cls, value: object) -> object:
        return None if value is None else normalise_response_shape(value)

    @model_validator(mode="after")
    def _coherent(self) -> Agent:
        if self.response_shape is not None:
            properties = self.response_shape["properties"]
            assert isinstance(properties, dict)  # noqa: S101 - guaranteed by normalise_response_shape
            if self.reply_field not in properties:
                fields = ", ".join(properties)
                raise ValueError(
                    f"reply_field: {self.reply_field!r} is not a field of response_shape "
                    f"(fields: {fields})"
                )
            reply_schema = properties[self.reply_field]
            if isinstance(reply_schema, dict) and reply_schema.get("type", "string") != "string":
                raise ValueError(f"reply_field: field {self.reply_field!r} must be a string")
        if self.memory.extract == "inline" and self.response_shape is not None:
            properties = self.response_shape["properties"]
            if isinstance(properties, dict) and MEMORY_FIELD in properties:
                raise ValueError(
                    f"response_shape: {MEMORY_FIELD!r} is the field memory adds to replies;"
                    " rename that field or turn memory off"
                )
        if self.goal_check is not None and not (self.goal and self.goal.strip()):
            raise ValueError("goal: an agent with goal_check needs a goal")
        return self

    def effective_model(
        self, default: str, provider_models: Mapping[str, str] | None = None
    ) -> str:
        """The model this agent's calls ask for: its own, else its provider's, else
        ``default`` (``BOT_MODEL``)."""
        if self.model:
            return self.model
        if self.provider is not None and provider_models and self.provider in provider_models:
            return provider_models[self.provider]
        return default


class AgentsFile(_Spec):
    """The whole file: the agents and which one answers where nothing else is bound."""

    default_agent: str | None = None
    agents: tuple[Agent, ...]

    @model_validator(mode="after")
    def _consistent(self) -> AgentsFile:
        if not self.agents:
            raise ValueError("agents: the file needs at least one agent")
        seen: set[str] = set()
        for agent in self.agents:
            if agent.id in seen:
                raise ValueError(f"agent {agent.id!r}: id: used by more than one agent")
            seen.add(agent.id)
        if self.default_agent is not None and self.default_agent not in seen:
            raise ValueError(f"default_agent: {self.default_agent!r} is not the id of an agent")
        bound: dict[tuple[str, str], str] = {}
        for agent in self.agents:
            channels = [("slack", c) for c in agent.bindings.slack]
            channels += [("discord", c) for c in agent.bindings.discord]
            for channel in channels:
                if channel in bound:
                    raise ValueError(
                        f"agent {agent.id!r}: bindings: {channel[0]} channel {channel[1]} "
                        f"is already bound to agent {bound[channel]!r}"
                    )
                bound[channel] = agent.id
        return self

    @property
    def default(self) -> Agent:
        if self.default_agent is None:
            return self.agents[0]
        return self.get(self.default_agent)

    def get(self, agent_id: str) -> Agent:
        for agent in self.agents:
            if agent.id == agent_id:
                return agent
        raise KeyError(agent_id)

    def find(self, agent_id: str) -> Agent | None:
        try:
            return self.get(agent_id)
        except KeyError:
            return None

    def for_channel(
        self, platform: Literal["slack", "discord"], channel: str, workspace: str = ""
    ) -> Agent:
        """The agent bound to a channel, else the default agent."""
        wanted = {channel, f"{workspace}:{channel}"} if workspace else {channel}
        for agent in self.agents:
            bound = agent.bindings.slack if platform == "slack" else agent.bindings.discord
            if wanted.intersection(bound):
                return agent
        return self.default


def load_agents(path: Path, *, providers: Collection[str] | None = None) -> AgentsFile:
    """Read and validate the agents file; any problem becomes one ConfigError naming it.
    ``providers``: the model providers agents may name (unchecked without)."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{name}: file not found (set AGENTS_FILE or create it)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read: {exc.__class__.__name__}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"{name}: {where}{problem}") from None
    return parse_agents(raw, source=name, providers=providers)


def parse_agents(
    raw: object, *, source: str, providers: Collection[str] | None = None
) -> AgentsFile:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with an 'agents' list at the top")
    try:
        return AgentsFile.model_validate(raw, context=_context(providers))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, raw, source)) from None


def parse_agent(raw: object, *, source: str, providers: Collection[str] | None = None) -> Agent:
    """Validate one agent exactly as an entry of the agents file (the API's stored agents).

    Errors name the source, the agent and the field: ``api: agent 'chef': reply_field: ...``.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: an agent is a mapping of fields")
    try:
        return Agent.model_validate(raw, context=_context(providers))
    except ValidationError as exc:
        raise ConfigError(_describe(exc, {"agents": [raw]}, source, prefix=("agents", 0))) from None


def _context(providers: Collection[str] | None) -> dict[str, Any] | None:
    return None if providers is None else {PROVIDERS_CONTEXT: tuple(providers)}


def _describe(
    exc: ValidationError,
    raw: dict[str, Any],
    source: str,
    *,
    prefix: tuple[str | int, ...] = (),
) -> str:
    agents = raw.get("agents")
    lines = []
    for error in exc.errors(include_input=False, include_url=False)[:_MAX_ERRORS]:
        loc = [*prefix, *error["loc"]]
        message = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        where = source
        if len(loc) >= 2 and loc[0] == "agents" and isinstance(loc[1], int):
            index = loc[1]
            entry = agents[index] if isinstance(agents, list) and index < len(agents) else None
            agent_id = entry.get("id") if isinstance(entry, dict) else None
            where += f": agent {agent_id!r}" if agent_id else f": agents[{index}]"
            loc = loc[2:]
        field = ".".join(str(part) for part in loc if not str(part).startswith("function-"))
        lines.append(f"{where}: {field}: {message}" if field else f"{where}: {message}")
    hidden = exc.error_count() - _MAX_ERRORS
    if hidden > 0:
        lines.append(f"{source}: ... and {hidden} more")
    return "\n".join(lines)
