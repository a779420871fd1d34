"""The console's parts on their own: sessions, CSRF, Markdown, the chart, the views."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from adapters.http.console import errors as console_errors
from adapters.http.console.chart import DayCount, daily_counts, goal_chart_svg
from adapters.http.console.csrf import CsrfRefused, check_token
from adapters.http.console.errors import safe_next
from adapters.http.console.markdown import render_markdown
from adapters.http.console.session import Session, SessionCodec
from adapters.http.console.views import author, duration, shape_fields
from adapters.http.errors import parley_response
from bot.admission import ApiShareFull, ConversationBusy, KeyBusy
from bot.errors import NotFound, ParleyError, StoreError, StoreUnavailable
from bot.llm import ModelError
from memory.base import GoalCheck, Message
from tests.support.agents import agent


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_round_trips_and_holds_no_key() -> None:
    codec = SessionCodec("secret")
    session = codec.new(key_id="a" * 32, scope="write", agents=("chef",), hours=1)
    value = codec.encode(session)
    decoded = codec.decode(value)
    assert decoded is not None
    assert (decoded.key_id, decoded.scope, decoded.agents) == ("a" * 32, "write", ("chef",))
    assert decoded.csrf == session.csrf
    assert len(session.csrf) >= 40
    payload = json.loads(base64.urlsafe_b64decode(value.split(".")[0] + "=="))
    assert set(payload) == {"v", "k", "s", "a", "e", "c", "i"}


def test_forged_foreign_and_expired_sessions_are_refused() -> None:
    clock = Clock()
    codec = SessionCodec("secret", clock=clock)
    value = codec.encode(codec.new(key_id="a" * 32, scope="read", agents=(), hours=1))
    body, mac = value.split(".")
    raised = json.loads(base64.urlsafe_b64decode(body + "=="))
    raised["s"] = "admin"
    forged_body = base64.urlsafe_b64encode(json.dumps(raised).encode()).decode().rstrip("=")
    assert codec.decode(f"{forged_body}.{mac}") is None
    assert SessionCodec("other secret").decode(value) is None
    assert SessionCodec(None).decode(value) is None, "random per process when unset"
    for junk in ("", "x", "a.b.c", "!!!.???", "e30." + mac, "x" * 5000):
        assert codec.decode(junk) is None
    clock.now += 3599
    assert codec.decode(value) is not None
    clock.now += 2
    assert codec.decode(value) is None


def test_signed_out_sessions_stay_refused_and_the_list_is_bounded() -> None:
    clock = Clock()
    codec = SessionCodec("secret", clock=clock, signed_out_capacity=2)
    sessions = [codec.new(key_id="a" * 32, scope="read", agents=(), hours=1) for _ in range(3)]
    values = [codec.encode(session) for session in sessions]
    codec.sign_out(sessions[0])
    assert codec.decode(values[0]) is None
    assert codec.decode(values[1]) is not None
    codec.sign_out(sessions[1])
    codec.sign_out(sessions[2])
    assert len(codec._signed_out) == 2


def test_csrf_tokens_must_match_the_session() -> None:
    session = Session.anonymous(now=0)
    check_token(session, session.csrf)
    for wrong in (None, "", session.csrf[:-1], Session.anonymous(now=0).csrf):
        with pytest.raises(CsrfRefused):
            check_token(session, wrong)
    with pytest.raises(CsrfRefused):
        check_token(None, session.csrf)


@pytest.mark.parametrize(
    "target",
    ["https://evil.example", "//evil.example", "/console//evil", "/api/v1/keys", "javascript:x"],
)
def test_sign_in_goes_back_only_to_the_console(target: str) -> None:
    assert safe_next(target) == "/console/conversations"
    assert safe_next("/console/agents?x=1") == "/console/agents?x=1"


@pytest.mark.parametrize(
    ("text", "expected", "absent"),
    [
        ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;", "<script"),
        ('<img src=x onerror="alert(1)">', "&lt;img src=x onerror=", "<img"),
        ("[x](javascript:alert(1))", "[x](javascript:alert(1))", "href"),
        ("[x](data:text/html;base64,AAAA)", "[x](data:", "href"),
        ("![i](https://tracker.example/p.png)", "!<a href", "<img"),
        ("[ok](https://example.com)", 'href="https://example.com" rel="nofollow', "javascript"),
        ("**bold** `code`", "<strong>bold</strong> <code>code</code>", "<script"),
        ('`<b onclick="x">`', "<code>&lt;b onclick=&quot;x&quot;&gt;</code>", "<b "),
    ],
)
def test_markdown_is_rendered_without_html_of_its_own(
    text: str, expected: str, absent: str
) -> None:
    html = str(render_markdown(text))
    assert expected in html
    assert absent not in html


def test_the_chart_counts_days_and_draws_bars() -> None:
    now = datetime(2025, 3, 31, 15, tzinfo=UTC)

    def check(days_ago: float, *, reached: bool, error: str | None = None) -> GoalCheck:
        return GoalCheck(
            id="c" * 32,
            conversation_id="d" * 32,
            agent_id="chef",
            checked_at=now - timedelta(days=days_ago),
            reached=reached,
            summary="",
            covered_seq=1,
            error=error,
        )

    checks = [
        check(0, reached=True),
        check(0.1, reached=False),
        check(2, reached=False),
        check(29, reached=True),
        check(30, reached=True),  # before the window
        check(1, reached=True, error="model down"),
    ]
    counts = daily_counts(checks, now=now)
    assert len(counts) == 30
    assert counts[-1] == DayCount(now.date(), reached=1, not_yet=1)
    assert counts[-3].not_yet == 1
    assert counts[0] == DayCount(datetime(2025, 3, 2).date(), reached=1)
    assert sum(count.total for count in counts) == 4
    svg = str(goal_chart_svg(counts, label="Goal checks of <Chef>"))
    assert svg.startswith('<svg class="chart" viewBox="0 0 600 170" role="img"')
    assert "Goal checks of &lt;Chef&gt;" in svg
    assert "<Chef>" not in svg
    assert svg.count('class="bar-reached"') == 2
    assert svg.count('class="bar-not-yet"') == 2
    assert ">2</text>" in svg, "the axis tops at a round number"
    empty = str(goal_chart_svg(daily_counts([], now=now), label="x"))
    assert "<rect" not in empty
    assert "0 in all" in empty


def test_views() -> None:
    fields = shape_fields(agent())
    assert [(f.name, f.type, f.required, f.shown) for f in fields][:2] == [
        ("answer", "string", True, True),
        ("recipes", "list of string", True, False),
    ]
    assert duration(timedelta(hours=1, minutes=30)) == "1h30m"
    moment = datetime(2025, 1, 1, tzinfo=UTC)

    def message(**fields: str) -> Message:
        return Message(
            id="a" * 32,
            conversation_id="b" * 32,
            seq=1,
            text="t",
            created_at=moment,
            **{"role": "user", **fields},  # type: ignore[arg-type]
        )

    assert author(message(author_name="Ada")) == "Ada"
    assert author(message(author_id="api-key:" + "k" * 32), you="k" * 32) == "You"
    assert author(message(author_id="api-key:" + "k" * 32)) == "API user"
    assert author(message(author_id="U0ADA")) == "U0ADA"
    assert author(message(role="assistant", author_name="Chef")) == "Chef"


@pytest.mark.parametrize(
    ("refusal", "status", "message", "retry_after"),
    [
        (KeyBusy("a key's turns"), 429, "a key's turns", "5"),
        (ConversationBusy("a thread's turns"), 429, "a thread's turns", "5"),
        (ApiShareFull("the API's share"), 503, "the API's share", "5"),
        (NotFound("gone"), 404, "gone", None),
        (
            StoreUnavailable("no route to db.internal:27017"),
            503,
            "the store cannot be reached; try again shortly",
            None,
        ),
        (StoreError("disk I/O error in /srv/parley.sqlite3"), 503, "the store failed", None),
        (CsrfRefused(), 403, "This form has expired", None),
    ],
)
def test_console_pages_map_errors_as_the_api_does(
    refusal: ParleyError, status: int, message: str, retry_after: str | None
) -> None:
    page_status, page_message, page_headers = console_errors._describe(refusal)
    api = parley_response(refusal)
    body = json.loads(bytes(api.body))["error"]
    assert (page_status, api.status_code) == (status, status)
    assert page_message == body["message"]
    assert page_message.startswith(message)
    assert page_headers.get("Retry-After") == api.headers.get("retry-after") == retry_after
    assert "db.internal" not in page_message
    assert "/srv" not in page_message


@pytest.mark.parametrize("failure", [ModelError("the model failed (HTTP 500)"), RuntimeError("x")])
def test_console_pages_leave_failures_on_our_side_to_the_app(failure: Exception) -> None:
    with pytest.raises(type(failure)):
        console_errors._describe(failure)
