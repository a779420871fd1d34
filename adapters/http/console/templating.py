"""The console's Jinja2 templates (autoescaped, strict about undefined names) and pages."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse

from adapters.http.console import views
from adapters.http.console.markdown import render_markdown

NOTICES = {
    "signin": "Sign in to continue.",
    "expired": "Your session has ended. Sign in again.",
    "revoked": "The key of this session is no longer active. Sign in with another key.",
    "signed-out": "You are signed out.",
    "goal-checked": "The goal check is done: see its result below.",
    "goal-check-failed": "The goal check failed: the model did not answer. See below.",
    "saved": "Saved.",
    "memory-forgotten": "The memory is deleted.",
    "document-uploaded": "The document is uploaded and indexed.",
    "document-replaced": "The document is replaced and indexed again.",
    "document-deleted": "The document is deleted.",
}

_ENV = Environment(
    loader=PackageLoader("adapters.http.console", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["markdown"] = render_markdown
_ENV.filters["when"] = views.when
_ENV.filters["iso"] = views.iso
_ENV.filters["pretty_json"] = views.pretty_json
_ENV.filters["size"] = views.size
_ENV.globals.update(
    place=views.place,
    author=views.author,
    goal_label=views.goal_label,
    platform_labels=views.PLATFORM_LABELS,
)


def render(name: str, **context: Any) -> str:
    return _ENV.get_template(name).render(**context)


def page(
    request: Request,
    name: str,
    *,
    user: Any,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A whole page; ``user`` is the signed-in :class:`ConsoleUser`, or None."""
    notice = NOTICES.get(request.query_params.get("notice", ""))
    html = render(name, request=request, user=user, notice=notice, **context)
    return HTMLResponse(html, status_code=status, headers=headers)
