"""A browser's file upload: one ``multipart/form-data`` form, read whole (its size is bounded
by the route's body limit) and split here, so the console needs no multipart library.

Browsers send each field as a part with a ``Content-Disposition: form-data; name="..."``
header (and ``filename="..."`` for a file), the bytes of a file exactly as they are. Quotes
and line breaks in names arrive as ``%22``, ``%0D``, ``%0A``, and nothing else is escaped
(the HTML standard's encoding).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from starlette.requests import Request

from adapters.http.errors import ApiError

MAX_PARTS = 20
_FORM_TYPE = "multipart/form-data"
_PARAM = re.compile(r';\s*([A-Za-z0-9_*-]+)\s*=\s*(?:"([^"]*)"|([^;\s]*))')
_ESCAPES = {"%22": '"', "%0D": "\r", "%0A": "\n", "%0d": "\r", "%0a": "\n"}


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content: bytes


@dataclass(frozen=True)
class UploadForm:
    fields: dict[str, str] = field(default_factory=dict)
    """The text fields (the first value of each name)."""
    files: dict[str, UploadedFile] = field(default_factory=dict)
    """The file fields, by field name (the first of each)."""


def _params(header: str) -> dict[str, str]:
    """The ``; name="value"`` parameters of a header value, names in lower case."""
    found: dict[str, str] = {}
    for match in _PARAM.finditer(header):
        quoted, bare = match.group(2), match.group(3)
        value = quoted if quoted is not None else bare or ""
        found.setdefault(match.group(1).lower(), value)
    return found


def _unescape(value: str) -> str:
    return re.sub(r"%(22|0[DdAa])", lambda m: _ESCAPES[m.group(0)], value)


def _bad(reason: str) -> ApiError:
    return ApiError(400, f"the upload is not a well-formed form: {reason}")


def parse_form(body: bytes, content_type: str) -> UploadForm:
    """The fields and files of a ``multipart/form-data`` body with this ``Content-Type``."""
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    if kind != _FORM_TYPE:
        raise ApiError(415, f"send the form as {_FORM_TYPE}")
    boundary = _params(content_type).get("boundary", "")
    if not boundary or len(boundary) > 200:
        raise _bad("no boundary")
    delimiter = b"--" + boundary.encode("latin-1", errors="replace")
    start = body.find(delimiter)
    if start < 0 or (start > 0 and body[start - 2 : start] != b"\r\n"):
        raise _bad("no part")
    form = UploadForm()
    position = start + len(delimiter)
    for _ in range(MAX_PARTS + 1):
        if body.startswith(b"--", position):
            return form
        if not body.startswith(b"\r\n", position):
            raise _bad("a boundary is not followed by a line break")
        position += 2
        end = body.find(b"\r\n" + delimiter, position)
        if end < 0:
            raise _bad("the last part is not closed")
        head, blank, content = body[position:end].partition(b"\r\n\r\n")
        if not blank:
            raise _bad("a part has no headers")
        _add(form, head, content)
        position = end + 2 + len(delimiter)
    raise _bad(f"more than {MAX_PARTS} fields")


def _add(form: UploadForm, head: bytes, content: bytes) -> None:
    disposition = ""
    for line in head.decode("utf-8", errors="replace").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-disposition":
            disposition = value.strip()
    params = _params(disposition)
    if "name" not in params:
        raise _bad("a part has no field name")
    name = _unescape(params["name"])
    if "filename" in params:
        filename = _unescape(params["filename"])
        form.files.setdefault(name, UploadedFile(filename=filename, content=content))
        return
    try:
        form.fields.setdefault(name, content.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "the form is not UTF-8") from None


async def read_upload(request: Request) -> UploadForm:
    return parse_form(await request.body(), request.headers.get("content-type", ""))
