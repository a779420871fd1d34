"""Building blocks for the security headers of pages served to browsers.

A page's Content-Security-Policy is a base policy with a few directives changed for what the
page needs (Swagger UI's inline start-up script, say), rather than a second hand-written copy.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping

SECURITY_HEADERS = {  # the console's; /api/docs adjusts its policy
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def with_directives(policy: str, changes: Mapping[str, str]) -> str:
    """``policy`` with each directive of ``changes`` replaced, or appended when it is new."""
    directives: dict[str, str] = {}
    for part in policy.split(";"):
        name, _, value = part.strip().partition(" ")
        if name:
            directives[name.lower()] = value.strip()
    directives.update(changes)
    return "; ".join(f"{name} {value}".strip() for name, value in directives.items())


def script_hash(source: str) -> str:
    """The CSP source (``'sha256-...'``) that allows exactly this inline script."""
    digest = hashlib.sha256(source.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def inline_script_hashes(html: str) -> list[str]:
    """The hash sources of every inline ``<script>`` (one without attributes) in ``html``."""
    return [script_hash(source) for source in _INLINE_SCRIPT.findall(html)]
