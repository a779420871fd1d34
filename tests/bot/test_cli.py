"""``python -m bot`` as a user runs it: a plain process with only environment variables set."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from memory.base import NewMessage, PlatformKey
from memory.sqlite import SqliteStore
from tests.support.agents import plain
from tests.support.process import bot_environment

REPO = Path(__file__).resolve().parents[2]
OPENAI_KEY = "sk-test-secret-openai-key"
DISCORD_TOKEN = "discord-secret-token-value"
MONGO_PASSWORD = "mongo-secret-password"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copy(REPO / "agents.yaml", tmp_path / "agents.yaml")
    return tmp_path


def bot(workdir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = bot_environment(workdir, **env)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_describes_a_good_configuration(workdir: Path) -> None:
    result = bot(workdir, "check", OPENAI_API_KEY=OPENAI_KEY, DISCORD_BOT_TOKEN=DISCORD_TOKEN)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Parley configuration is valid." in out
    assert "2 agents, default: chef" in out
    assert "chef (Mediterranean Chef): model gpt-4o-mini" in out
    assert "replies as JSON {answer, recipes, ingredients, summary}, shows 'answer'" in out
    assert "goal check every 1:00:00 UTC -> thread" in out
    assert "tutor (Maths Tutor)" in out
    assert "Model        gpt-4o-mini via OpenAI (api.openai.com) (key set)" in out
    assert "Store        SQLite (data/parley.sqlite3)" in out
    assert "Retrieval    memory and knowledge by keyword only (set EMBEDDING_MODEL" in out
    assert "Prices       none (set PRICES_FILE): costs are shown as unknown" in out
    assert "Slack        off" in out
    assert "Discord      on; /agent commands registered when they change" in out
    assert OPENAI_KEY not in out + result.stderr
    assert DISCORD_TOKEN not in out + result.stderr


def test_check_reads_the_price_file(workdir: Path) -> None:
    shutil.copy(REPO / "prices.yaml", workdir / "prices.yaml")
    result = bot(workdir, "check", PRICES_FILE="prices.yaml", BOT_MODEL="house-llm")
    assert result.returncode == 0, result.stderr
    assert (
        "Prices       prices.yaml (5 models, USD); no price for house-llm (cost unknown)"
        in result.stdout
    )
    (workdir / "prices.yaml").write_text("models: [gpt-4o-mini]\n", encoding="utf-8")
    result = bot(workdir, "check", PRICES_FILE="prices.yaml")
    assert result.returncode == 2
    assert result.stderr.startswith("parley: prices.yaml: models: ")


def test_check_names_mongodb_without_its_password(workdir: Path) -> None:
    uri = f"mongodb://parley:{MONGO_PASSWORD}@db.example:27017/?authSource=admin"
    result = bot(workdir, "check", MONGODB_URI=uri, MONGODB_DB="prod")
    assert result.returncode == 0, result.stderr
    assert "Store        MongoDB" in result.stdout
    assert "db.example:27017" in result.stdout
    assert "prod" in result.stdout
    assert "Model        gpt-4o-mini: NOT configured" in result.stdout
    assert MONGO_PASSWORD not in result.stdout + result.stderr


def test_check_names_servers_without_their_credentials(workdir: Path) -> None:
    result = bot(
        workdir,
        "check",
        OPENAI_BASE_URL=f"http://parley:{MONGO_PASSWORD}@llm.internal:8000/v1",
        SLACK_BOT_TOKEN="xoxb-1",
        SLACK_APP_TOKEN="xapp-1",
        SLACK_API_URL=f"https://slack-proxy.internal/api/?token={OPENAI_KEY}",
        DISCORD_BOT_TOKEN=DISCORD_TOKEN,
        DISCORD_API_URL="http://discord-proxy.internal/api/v10?key=discord-proxy-pw",
    )
    assert result.returncode == 0, result.stderr
    shown = result.stdout + result.stderr
    assert "via http://parley:***@llm.internal:8000/v1" in shown
    assert "API https://slack-proxy.internal/api/?token=***" in shown
    assert "API http://discord-proxy.internal/api/v10?key=***" in shown
    for secret in (MONGO_PASSWORD, OPENAI_KEY, "discord-proxy-pw"):
        assert secret not in shown


def test_a_start_error_names_slack_without_its_credentials(workdir: Path) -> None:
    """Slack cannot be reached: the one-line error names the address, not the password."""
    closed = f"http://127.0.0.1:9/api/?token={MONGO_PASSWORD}"
    result = bot(
        workdir, "run", SLACK_BOT_TOKEN="xoxb-1", SLACK_APP_TOKEN="xapp-1", SLACK_API_URL=closed
    )
    assert result.returncode != 0
    assert "cannot reach Slack at http://127.0.0.1:9/api/?token=***" in result.stderr
    assert MONGO_PASSWORD not in result.stdout + result.stderr


@pytest.mark.parametrize("name", ["SLACK_API_URL", "DISCORD_API_URL"])
def test_a_platform_address_with_a_password_is_refused_without_echoing_it(
    workdir: Path, name: str
) -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1", "DISCORD_BOT_TOKEN": "d"}
    result = bot(workdir, "check", **env, **{name: f"http://u:{MONGO_PASSWORD}@proxy/api/"})
    assert result.returncode == 2
    assert result.stderr.startswith(f"parley: settings: {name}: must not hold a user name")
    assert MONGO_PASSWORD not in result.stdout + result.stderr


def test_check_refuses_a_broken_agents_file(workdir: Path) -> None:
    text = (workdir / "agents.yaml").read_text(encoding="utf-8")
    broken = text.replace('      answer: "String, your reply to the person, in Markdown"\n', "", 1)
    assert broken != text
    (workdir / "agents.yaml").write_text(broken, encoding="utf-8")
    result = bot(workdir, "check")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(
        "parley: agents.yaml: agent 'chef': reply_field: 'answer' is not a field of response_shape"
    )
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_check_refuses_a_typo_in_a_response_shape_with_a_hint(workdir: Path) -> None:
    text = (workdir / "agents.yaml").read_text(encoding="utf-8")
    typo = text.replace(
        '      answer: "String, your reply to the person, in Markdown"\n',
        '      answer: {tpye: string, description: "your reply"}\n',
        1,
    )
    assert typo != text
    (workdir / "agents.yaml").write_text(typo, encoding="utf-8")

    result = bot(workdir, "check")

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "parley: agents.yaml: agent 'chef': response_shape: unknown JSON Schema keyword 'tpye' "
        "at properties.answer (did you mean 'type'?)"
    )


def test_check_shows_model_providers_and_refuses_an_unknown_one(workdir: Path) -> None:
    text = (workdir / "agents.yaml").read_text(encoding="utf-8")
    local = text.replace("  - id: tutor\n", "  - id: tutor\n    provider: local\n", 1)
    assert local != text
    (workdir / "agents.yaml").write_text(local, encoding="utf-8")
    env = {
        "OPENAI_API_KEY": OPENAI_KEY,
        "MODEL_PROVIDERS__LOCAL__BASE_URL": f"http://ollama:{MONGO_PASSWORD}@gpu:11434/v1",
        "MODEL_PROVIDERS__LOCAL__MODEL": "llama3.1",
        "MODEL_PROVIDERS__LOCAL__API_KEY": "sk-local-provider-secret",
        "MODEL_PROVIDERS__LOCAL__CONCURRENCY": "2",
    }

    result = bot(workdir, "check", **env)

    assert result.returncode == 0, result.stderr
    assert "tutor (Maths Tutor): model llama3.1; provider local;" in result.stdout
    assert (
        "  - provider local: llama3.1 via http://ollama:***@gpu:11434/v1 (key set), 2 calls at once"
    ) in result.stdout
    for secret in (OPENAI_KEY, MONGO_PASSWORD, "sk-local-provider-secret"):
        assert secret not in result.stdout + result.stderr

    del env["MODEL_PROVIDERS__LOCAL__BASE_URL"], env["MODEL_PROVIDERS__LOCAL__API_KEY"]
    del env["MODEL_PROVIDERS__LOCAL__MODEL"], env["MODEL_PROVIDERS__LOCAL__CONCURRENCY"]
    refused = bot(workdir, "check", **env)

    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "parley: agents.yaml: agent 'tutor': provider: 'local' is not a configured model "
        "provider (configured: default); set MODEL_PROVIDERS__LOCAL__BASE_URL or __API_KEY"
    )


def test_check_refuses_bad_settings_without_echoing_secrets(workdir: Path) -> None:
    result = bot(workdir, "check", PORT="eighty", SLACK_BOT_TOKEN="xoxb-secret-slack")
    assert result.returncode == 2
    assert "settings: " in result.stderr
    assert "PORT" in result.stderr
    assert "xoxb-secret-slack" not in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_agents_file(workdir: Path) -> None:
    result = bot(workdir, "check", AGENTS_FILE="elsewhere.yaml")
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "parley: elsewhere.yaml: file not found (set AGENTS_FILE or create it)"
    )


def test_run_without_platforms_or_api_explains_what_to_set(workdir: Path) -> None:
    result = bot(workdir, "run", API_ENABLED="false")
    assert result.returncode == 0, result.stderr
    assert "SLACK_BOT_TOKEN" in result.stdout
    assert "DISCORD_BOT_TOKEN" in result.stdout
    assert "python -m bot chat" in result.stdout
    assert "Traceback" not in result.stderr
    assert (workdir / "data" / "parley.sqlite3").exists(), "the embedded store was opened"


async def test_export_prints_a_stored_conversation(workdir: Path) -> None:
    store = SqliteStore(path=workdir / "data" / "parley.sqlite3")
    await store.open()
    conversation, _ = await store.get_or_create_conversation(
        key=PlatformKey(platform="console", channel="dinner"), agent_id="chef", title="Dinner"
    )
    await store.append_message(
        conversation_id=conversation.id,
        message=NewMessage(role="user", text="I love aubergines", author_name="Ada"),
    )
    await store.close()

    markdown = bot(workdir, "export", conversation.id)
    assert markdown.returncode == 0, markdown.stderr
    assert markdown.stdout.startswith("# Dinner")
    assert "**Ada**" in markdown.stdout
    assert "I love aubergines" in markdown.stdout

    as_json = bot(workdir, "export", conversation.id, "--format", "json")
    assert as_json.returncode == 0
    assert '"text": "I love aubergines"' in as_json.stdout

    unknown = bot(workdir, "export", "0" * 32)
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == f"parley: no conversation {'0' * 32!r}"


def test_version_prints_the_release(workdir: Path) -> None:
    result = bot(workdir, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"parley {metadata.version('parley')}"


async def test_agents_lists_the_file_and_the_stored_ones(workdir: Path) -> None:
    store = SqliteStore(path=workdir / "data" / "parley.sqlite3")
    await store.open()
    await store.create_agent(agent_id="pirate", definition=plain(id="pirate", name="Pirate"))
    await store.close()

    result = bot(workdir, "agents")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("file  default  chef (Mediterranean Chef): model gpt-4o-mini;")
    assert lines[1].startswith("file  -        tutor (Maths Tutor): ")
    assert lines[2].startswith("api   -        pirate (Pirate): ")
    assert "replies in plain text" in lines[2]


async def test_conversations_lists_the_newest_first_with_filters(workdir: Path) -> None:
    store = SqliteStore(path=workdir / "data" / "parley.sqlite3")
    await store.open()
    made = []
    for n, (platform, agent) in enumerate([("console", "chef"), ("api", "tutor"), ("api", "chef")]):
        conversation, _ = await store.get_or_create_conversation(
            key=PlatformKey(platform=platform, channel=f"c{n}"),
            agent_id=agent,
            title=f"Talk\x1b[31m {n}",
        )
        await store.append_message(
            conversation_id=conversation.id,
            message=NewMessage(role="user", text="hello", author_name="Ada"),
        )
        made.append(conversation.id)
    await store.close()

    everything = bot(workdir, "conversations")
    assert everything.returncode == 0, everything.stderr
    lines = everything.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(reversed(made))
    assert "  api/-/c2  agent=chef  1 message  open  Talk [31m 2" in lines[0]
    assert "\x1b" not in everything.stdout, "no control character reaches the terminal"

    api_chef = bot(workdir, "conversations", "--platform", "api", "--agent", "chef")
    assert [line.split()[0] for line in api_chef.stdout.splitlines()] == [made[2]]
    limited = bot(workdir, "conversations", "--limit", "1")
    assert limited.stdout.splitlines()[1].startswith("... and 2 more")
    nothing = bot(workdir, "conversations", "--agent", "nobody")
    assert nothing.stdout == "No conversations match.\n"
    bad = bot(workdir, "conversations", "--platform", "irc")
    assert bad.returncode == 2


def test_unknown_command_is_a_usage_error(workdir: Path) -> None:
    result = bot(workdir, "dance")
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_keys_are_created_and_listed_with_their_place_limits(workdir: Path) -> None:
    created = bot(
        workdir,
        "keys",
        "create",
        "--name",
        "t1-slack",
        "--scope",
        "read",
        "--platforms",
        "slack, discord,slack",
        "--workspaces",
        "T0123ABCD,dm",
    )
    assert created.returncode == 0, created.stderr
    assert "all agents, platforms slack, discord, workspaces T0123ABCD, dm." in created.stdout
    assert created.stdout.strip().splitlines()[-1].startswith("pk_")
    plain = bot(workdir, "keys", "create", "--name", "everything", "--scope", "admin")
    assert plain.returncode == 0, plain.stderr
    assert "scope admin, all agents.\n" in plain.stdout

    listed = bot(workdir, "keys", "list")
    assert listed.returncode == 0, listed.stderr
    t1, everything = listed.stdout.splitlines()
    assert "t1-slack" in t1
    assert "agents=all  platforms=slack,discord  workspaces=T0123ABCD,dm" in t1
    assert "platforms=all  workspaces=all" in everything


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--platforms", "slack,telegram", "'telegram' is not a platform; use slack, discord"),
        ("--workspaces", "T1,$gt", "'$gt' is not a workspace id"),
        ("--workspaces", "T" * 65, "at most 64 characters"),
        ("--workspaces", ",".join(f"T{n}" for n in range(101)), "at most 100"),
    ],
)
def test_keys_with_bad_place_limits_are_refused(
    workdir: Path, flag: str, value: str, says: str
) -> None:
    result = bot(workdir, "keys", "create", "--name", "bad", "--scope", "read", flag, value)
    assert result.returncode == 2
    assert f"argument {flag}: " in result.stderr
    assert says in result.stderr
    listed = bot(workdir, "keys", "list")
    assert listed.stdout.startswith("No API keys yet"), "nothing was made"
