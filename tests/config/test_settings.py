from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.errors import ConfigError
from config.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
SECRET = "xoxb-1234-very-secret-token"
MONGO_PASSWORD = "hunter2-s3cr3t"


def test_defaults(clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings(env_file=None)
    assert settings.bot_model == "gpt-4o-mini"
    assert settings.port == 3000
    assert settings.slack_mode == "socket"
    assert settings.agents_file == Path("agents.yaml")
    assert settings.store_path == Path("data/parley.sqlite3")
    assert settings.mongodb_uri is None
    assert not settings.slack_enabled
    assert not settings.discord_enabled
    assert not settings.model_configured
    assert settings.journal_lease_seconds == 30.0
    assert settings.host == "127.0.0.1", "make run serves this machine only"
    assert settings.discord_command_sync == "auto"
    assert settings.token_counting == "estimate", "no tokenizer table unless asked for"


def test_reads_environment_and_env_file(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "OPENAI_BASE_URL=http://127.0.0.1:11434/v1\nBOT_MODEL=llama3.1\nPORT=8080\n"
        "DISCORD_BOT_TOKEN=discord-token\n",
        encoding="utf-8",
    )
    clean_env.setenv("PORT", "9090")
    clean_env.setenv("LOG_LEVEL", "debug")
    settings = load_settings(env_file=env_file)
    assert settings.openai_base_url == "http://127.0.0.1:11434/v1"
    assert settings.bot_model == "llama3.1"
    assert settings.port == 9090, "the environment wins over .env"
    assert settings.log_level == "DEBUG"
    assert settings.model_configured
    assert settings.discord_enabled


def test_blank_values_mean_unset(clean_env: pytest.MonkeyPatch) -> None:
    for name in ("SLACK_BOT_TOKEN", "MONGODB_URI", "OPENAI_BASE_URL", "DISCORD_API_URL"):
        clean_env.setenv(name, "  ")
    settings = load_settings(env_file=None)
    assert settings.slack_bot_token is None
    assert settings.mongodb_uri is None
    assert settings.openai_base_url is None
    assert settings.discord_api_url is None


def test_secrets_stay_out_of_repr_and_errors(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("SLACK_BOT_TOKEN", SECRET)
    clean_env.setenv("SLACK_APP_TOKEN", "xapp-also-secret")
    clean_env.setenv("MONGODB_URI", f"mongodb://parley:{MONGO_PASSWORD}@db:27017")
    settings = load_settings(env_file=None)
    for text in (repr(settings), str(settings), str(settings.model_dump())):
        assert SECRET not in text
        assert MONGO_PASSWORD not in text
    assert SECRET in settings.secrets()

    clean_env.setenv("MONGODB_URI", f"postgres://parley:{MONGO_PASSWORD}@db")
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=None)
    assert "MONGODB_URI" in str(caught.value)
    assert "mongodb://" in str(caught.value)
    assert MONGO_PASSWORD not in str(caught.value)


def test_credentials_in_server_addresses_stay_out_of_repr(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OPENAI_BASE_URL", f"http://parley:{MONGO_PASSWORD}@llm:8000/v1")
    clean_env.setenv("SLACK_API_URL", f"https://proxy/api/?token={SECRET}")
    clean_env.setenv("DISCORD_API_URL", "http://discord-proxy/api/v10?key=d1sc0rd-pw")
    settings = load_settings(env_file=None)
    for text in (repr(settings), str(settings)):
        assert MONGO_PASSWORD not in text
        assert SECRET not in text
        assert "d1sc0rd-pw" not in text
        assert "http://parley:***@llm:8000/v1" in text
    assert {MONGO_PASSWORD, SECRET, "d1sc0rd-pw"} <= set(settings.secrets()), "logs redact them"
    assert settings.openai_base_url == f"http://parley:{MONGO_PASSWORD}@llm:8000/v1", "still used"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"PORT": "0"}, "PORT"),
        ({"PORT": "http"}, "PORT"),
        ({"SLACK_MODE": "webhook"}, "SLACK_MODE"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"OPENAI_BASE_URL": "localhost:11434"}, "OPENAI_BASE_URL: must start with http"),
        ({"SLACK_BOT_TOKEN": SECRET}, "SLACK_APP_TOKEN: Socket Mode needs"),
        ({"SLACK_BOT_TOKEN": SECRET, "SLACK_MODE": "http"}, "SLACK_SIGNING_SECRET"),
        ({"MONGODB_DB": "bad name!"}, "MONGODB_DB"),
        ({"JOURNAL_LEASE_SECONDS": "1"}, "JOURNAL_LEASE_SECONDS"),
    ],
)
def test_invalid_settings_name_the_variable(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=None)
    message = str(caught.value)
    assert message.startswith("settings: ")
    assert expected in message
    assert SECRET not in message


def test_settings_are_frozen(clean_env: pytest.MonkeyPatch) -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="frozen"):
        settings.port = 1  # type: ignore[misc]


PROVIDER_KEY = "sk-local-provider-secret"


def test_model_providers_come_from_nested_variables_and_env_file(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "MODEL_PROVIDERS__LOCAL__BASE_URL=http://127.0.0.1:11434/v1\n"
        "MODEL_PROVIDERS__LOCAL__MODEL=llama3.1\n",
        encoding="utf-8",
    )
    clean_env.setenv("MODEL_PROVIDERS__LOCAL__CONCURRENCY", "4")
    clean_env.setenv("MODEL_PROVIDERS__Cloud__API_KEY", PROVIDER_KEY)
    settings = load_settings(env_file=env_file)

    local = settings.model_providers["local"]
    assert (local.base_url, local.model, local.concurrency) == (
        "http://127.0.0.1:11434/v1",
        "llama3.1",
        4,
    )
    assert settings.provider_names == ("default", "cloud", "local")  # names are lowercase
    assert settings.provider_models == {"local": "llama3.1"}
    assert PROVIDER_KEY in settings.secrets()


def test_a_provider_keeps_its_secrets_out_of_reprs(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("MODEL_PROVIDERS__LOCAL__BASE_URL", f"http://u:{MONGO_PASSWORD}@llm/v1")
    clean_env.setenv("MODEL_PROVIDERS__LOCAL__API_KEY", PROVIDER_KEY)
    settings = load_settings(env_file=None)

    for text in (repr(settings), str(settings), repr(settings.model_providers)):
        assert PROVIDER_KEY not in text
        assert MONGO_PASSWORD not in text
    assert MONGO_PASSWORD in settings.secrets(), "the address's password is scrubbed from logs"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "MODEL_PROVIDERS__LOCAL__BASE_URL",
            f"ftp://{PROVIDER_KEY}",
            "MODEL_PROVIDERS__LOCAL__BASE_URL: must start with http:// or https://",
        ),
        (
            "MODEL_PROVIDERS__LOCAL__BASEURL",
            "http://x",
            "MODEL_PROVIDERS__LOCAL__BASEURL: Extra inputs are not permitted",
        ),
        (
            "MODEL_PROVIDERS__LOCAL__MODEL",
            "llama3.1",
            "MODEL_PROVIDERS__LOCAL: set its BASE_URL (a compatible server) or its API_KEY",
        ),
        (
            "MODEL_PROVIDERS__DEFAULT__BASE_URL",
            "http://x",
            "MODEL_PROVIDERS: 'default' is the provider set by OPENAI_BASE_URL",
        ),
        (
            "MODEL_PROVIDERS__A.B__BASE_URL",
            "http://x",
            "MODEL_PROVIDERS: 'a.b' is not a provider name",
        ),
    ],
)
def test_a_bad_provider_is_refused_with_its_variable(
    clean_env: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=None)
    assert str(caught.value).startswith(f"settings: {message}")
    assert PROVIDER_KEY not in str(caught.value)


def test_the_deployments_listen_on_every_interface() -> None:
    """Containers and PaaS routers reach the process from outside it: the Dockerfile,
    docker-compose.yml (whose .env may say HOST=127.0.0.1 for make run) and the Procfile set
    HOST=0.0.0.0 themselves."""
    assert re.search(r"^\s*HOST=0\.0\.0\.0\b", (REPO / "Dockerfile").read_text(), re.MULTILINE)
    assert re.search(r"^\s+HOST: 0\.0\.0\.0\b", (REPO / "docker-compose.yml").read_text(), re.M)
    assert (REPO / "Procfile").read_text().startswith("web: HOST=0.0.0.0 python -m bot run")


def test_env_example_lists_every_setting() -> None:
    """Every field of Settings appears in .env.example (set, or commented out), so the file
    people copy stays the whole list."""
    listed = {
        match.group(1)
        for line in (REPO / ".env.example").read_text(encoding="utf-8").splitlines()
        if (match := re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=", line))
    }
    fields = {name.upper() for name in Settings.model_fields}
    # A nested setting (MODEL_PROVIDERS) is listed by its variables (MODEL_PROVIDERS__...).
    missing = {
        field
        for field in fields
        if field not in listed and not any(name.startswith(f"{field}__") for name in listed)
    }
    assert missing == set(), "missing from .env.example"


@pytest.mark.parametrize(
    ("variable", "chosen", "refused"),
    [("DISCORD_COMMAND_SYNC", "never", "sometimes"), ("TOKEN_COUNTING", "exact", "precise")],
)
def test_a_setting_of_named_choices_takes_only_those(
    clean_env: pytest.MonkeyPatch, variable: str, chosen: str, refused: str
) -> None:
    clean_env.setenv(variable, chosen)
    assert getattr(load_settings(env_file=None), variable.lower()) == chosen
    clean_env.setenv(variable, refused)
    with pytest.raises(ConfigError, match=variable):
        load_settings(env_file=None)


def test_telemetry_settings_keep_their_secrets(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("METRICS_TOKEN", SECRET)
    clean_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"https://otel:{MONGO_PASSWORD}@collector:4318")
    settings = load_settings(env_file=None)
    for text in (repr(settings), str(settings)):
        assert SECRET not in text
        assert MONGO_PASSWORD not in text
        assert "https://otel:***@collector:4318" in text
    assert {SECRET, MONGO_PASSWORD} <= set(settings.secrets()), "logs redact them"
    assert settings.metrics_token is not None
    assert settings.metrics_token.get_secret_value() == SECRET

    clean_env.setenv("METRICS_TOKEN", " ")
    clean_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file=None)
    assert "OTEL_EXPORTER_OTLP_ENDPOINT: must start with http" in str(caught.value)

    clean_env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
    unset = load_settings(env_file=None)
    assert unset.metrics_token is None, "blank is unset"
    assert unset.otel_exporter_otlp_endpoint is None
