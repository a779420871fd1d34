"""What the console's routes share: the services, the session codec and the Markdown
renderer, on ``app.state``."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from adapters.http.console.markdown import MarkdownRenderer
from adapters.http.console.session import SessionCodec
from adapters.http.services import Services


@dataclass(frozen=True)
class Console:
    services: Services
    codec: SessionCodec
    markdown: MarkdownRenderer

    @classmethod
    def build(cls, services: Services) -> Console:
        settings = services.settings
        secret = settings.console_secret
        return cls(
            services=services,
            codec=SessionCodec(
                secret.get_secret_value() if secret is not None else None,
                always_secure=settings.console_secure_cookie,
            ),
            markdown=MarkdownRenderer(),
        )

    @property
    def session_hours(self) -> float:
        return self.services.settings.console_session_hours


def console_of(request: Request) -> Console:
    found: Console = request.app.state.console
    return found
