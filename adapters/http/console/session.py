"""The console's session: a signed cookie that holds a key's id, never the key.

The cookie is ``PAYLOAD.MAC``: the payload is compact JSON (key id, scope, agents, expiry,
CSRF token, session id) in URL-safe base64, the MAC is HMAC-SHA256 over it with a key derived
from ``CONSOLE_SECRET`` (random per process when unset). It is HttpOnly, SameSite=Strict,
scoped to ``/console``, and Secure over HTTPS or always with ``CONSOLE_SECURE_COOKIE``. A
session without a key id is anonymous: it only carries the CSRF token of the sign-in form.
Any malformed cookie is no session, never an error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from starlette.requests import Request
from starlette.responses import Response

from memory.base import Scope

COOKIE = "parley_console"
COOKIE_PATH = "/console"
ANONYMOUS_SECONDS = 3600.0
"""How long the sign-in form's anonymous session lasts."""
_VERSION = 1
_SCOPES = ("read", "write", "admin")
_MAX_COOKIE = 4000


def _token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Session:
    key_id: str
    """Empty for the anonymous session of the sign-in form."""
    scope: Scope | None
    agents: tuple[str, ...]
    expires: float
    """Unix time."""
    csrf: str = field(default_factory=_token)
    sid: str = field(default_factory=_token)

    @property
    def signed_in(self) -> bool:
        return bool(self.key_id)

    @classmethod
    def anonymous(cls, *, now: float) -> Session:
        return cls(key_id="", scope=None, agents=(), expires=now + ANONYMOUS_SECONDS)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionCodec:
    """Signs sessions into cookie values and reads them back (None when forged or expired).

    Sessions signed out in this process are refused until they expire even if their cookie
    was copied (a bounded list of session ids; other processes rely on the browser dropping
    the cookie).
    """

    def __init__(
        self,
        secret: str | None,
        *,
        clock: Callable[[], float] = time.time,
        signed_out_capacity: int = 10_000,
        always_secure: bool = False,
    ) -> None:
        self.always_secure = always_secure
        """Mark cookies Secure even over plain HTTP (``CONSOLE_SECURE_COOKIE``)."""
        material = secret.encode("utf-8") if secret else secrets.token_bytes(32)
        self._key = hashlib.sha256(b"parley-console-session\x00" + material).digest()
        self._clock = clock
        self._signed_out: OrderedDict[str, float] = OrderedDict()
        self._capacity = signed_out_capacity

    def now(self) -> float:
        return self._clock()

    def new(self, *, key_id: str, scope: Scope, agents: tuple[str, ...], hours: float) -> Session:
        return Session(key_id=key_id, scope=scope, agents=agents, expires=self.now() + hours * 3600)

    def encode(self, session: Session) -> str:
        payload = {
            "v": _VERSION,
            "k": session.key_id,
            "s": session.scope,
            "a": list(session.agents),
            "e": int(session.expires),
            "c": session.csrf,
            "i": session.sid,
        }
        body = _b64(json.dumps(payload, separators=(",", ":")).encode("utf-8"))
        return f"{body}.{self._mac(body)}"

    def decode(self, value: str | None) -> Session | None:
        """The session of a cookie value; None for anything else, however malformed."""
        if not value or len(value) > _MAX_COOKIE or not value.isascii() or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            raw = json.loads(_unb64(body))
        except (ValueError, binascii.Error):
            return None
        session = _session(raw)
        if session is None or session.expires <= self.now() or session.sid in self._signed_out:
            return None
        return session

    def sign_out(self, session: Session) -> None:
        now = self.now()
        self._signed_out[session.sid] = session.expires
        while self._signed_out and (
            len(self._signed_out) > self._capacity or next(iter(self._signed_out.values())) <= now
        ):
            self._signed_out.popitem(last=False)

    def _mac(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest())


def _session(raw: Any) -> Session | None:
    if not isinstance(raw, dict) or raw.get("v") != _VERSION:
        return None
    key_id, scope, agents = raw.get("k"), raw.get("s"), raw.get("a")
    expires, csrf, sid = raw.get("e"), raw.get("c"), raw.get("i")
    if not (isinstance(key_id, str) and isinstance(csrf, str) and isinstance(sid, str)):
        return None
    if not isinstance(expires, int) or not isinstance(agents, list):
        return None
    if scope is not None and scope not in _SCOPES:
        return None
    if bool(key_id) != (scope is not None) or not all(isinstance(a, str) for a in agents):
        return None
    return Session(
        key_id=key_id,
        scope=cast("Scope | None", scope),
        agents=tuple(agents),
        expires=float(expires),
        csrf=csrf,
        sid=sid,
    )


def read_session(request: Request, codec: SessionCodec) -> Session | None:
    return codec.decode(request.cookies.get(COOKIE))


def _secure(request: Request, codec: SessionCodec) -> bool:
    """Over HTTPS (as the request came, or as a trusted proxy says it came) or when set."""
    return codec.always_secure or request.url.scheme == "https"


def set_session(
    response: Response, request: Request, codec: SessionCodec, session: Session
) -> None:
    response.set_cookie(
        COOKIE,
        codec.encode(session),
        max_age=max(1, int(session.expires - codec.now())),
        path=COOKIE_PATH,
        secure=_secure(request, codec),
        httponly=True,
        samesite="strict",
    )


def clear_session(response: Response, request: Request, codec: SessionCodec) -> None:
    response.delete_cookie(
        COOKIE,
        path=COOKIE_PATH,
        secure=_secure(request, codec),
        httponly=True,
        samesite="strict",
    )
