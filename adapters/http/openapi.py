"""The published OpenAPI document says every answer an operation can give.

FastAPI documents what each route declares; what the app answers for every route alike is
added here, in one place, so a client generated from the document can trust it:

* every error is the JSON :class:`~adapters.http.errors.ErrorBody`, whatever the route's
  own media type (the plain-text ``/chat`` routes included);
* an operation that takes a key can answer 401 (no key, or an unknown one), 403 (the key's
  scope or limits), 429 (the key's rate, or failed authentications) and 503 (the store is
  down, or the engine is full);
* an operation with parameters or a body can answer 422 (they are invalid);
* an operation with a body can answer 413 (larger than its limit) and, for a JSON body,
  400 (it is not JSON); the plain-text ``/chat`` declares its own 400 (not UTF-8).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from adapters.http.errors import ErrorBody

ERROR_SCHEMA = "ErrorBody"
_ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
"""FastAPI's own 422 body, which this app never sends (see adapters.http.errors)."""
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_JSON = "application/json"

DESCRIPTIONS = {
    400: "The body cannot be decoded (not JSON, or not UTF-8 text)",
    401: "No API key, or an unknown or revoked one",
    403: "The key's scope or limits do not allow this",
    404: "Not found",
    409: "Conflict with the current state",
    413: "The body is larger than this operation's limit",
    415: "The body's content type is not accepted here",
    422: "Invalid parameters or body",
    429: "Too many requests (Retry-After says when to try again)",
    503: "Unavailable for now: the store is down, or the engine is busy (Retry-After)",
}


def route_errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """A route's own error answers, for its ``responses=``: those only some routes give
    (404, 409, 415...). The answers every route gives alike are added by :func:`complete`."""
    return {
        status: {"model": ErrorBody, "description": DESCRIPTIONS.get(status, "Error")}
        for status in statuses
    }


def install_openapi(app: FastAPI) -> None:
    """Serve FastAPI's document for ``app`` completed by :func:`complete`."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        return complete(generate())

    app.openapi = openapi  # type: ignore[method-assign]


def complete(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with every operation's shared answers added (in place; idempotent)."""
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    if ERROR_SCHEMA not in schemas:
        error = ErrorBody.model_json_schema(ref_template=_REF_TEMPLATE)
        schemas.update(error.pop("$defs", {}))
        schemas[ERROR_SCHEMA] = error
    for item in spec.get("paths", {}).values():
        for method in _METHODS:
            operation = item.get(method)
            if operation is not None:
                _complete_operation(operation)
    if not _refers_to_any(spec.get("paths", {}), _FASTAPI_VALIDATION):
        for name in _FASTAPI_VALIDATION:
            schemas.pop(name, None)
    return spec


_REF_TEMPLATE = "#/components/schemas/{model}"


def _complete_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    statuses: set[int] = set()
    if operation.get("security"):
        statuses |= {401, 403, 429, 503}
    body = operation.get("requestBody")
    if operation.get("parameters") or body:
        statuses.add(422)
    if body:
        statuses.add(413)
        if _JSON in body.get("content", {}):
            statuses.add(400)
    for added in statuses:
        responses.setdefault(str(added), {})
    for status, response in responses.items():
        if status.isdigit() and int(status) >= 400 and not _own_body(response):
            response["description"] = _description(int(status), response)
            response["content"] = {_JSON: {"schema": dict(_ERROR_REF)}}


def _own_body(response: dict[str, Any]) -> bool:
    """Whether a route documented a JSON body of its own for this error (``/readyz``'s 503
    is its report), rather than the error envelope."""
    schema = response.get("content", {}).get(_JSON, {}).get("schema")
    if not schema:
        return False
    return not _refers_to_any(schema, (ERROR_SCHEMA, *_FASTAPI_VALIDATION))


def _description(status: int, response: dict[str, Any]) -> str:
    given = response.get("description")
    if isinstance(given, str) and given and given not in _GENERIC:
        return given
    return DESCRIPTIONS.get(status, "Error")


_GENERIC = {"Additional Response", "Validation Error", "Successful Response"}
"""FastAPI's placeholder descriptions, replaced by what the status means here."""


def _refers_to_any(value: Any, names: tuple[str, ...]) -> bool:
    if isinstance(value, dict):
        ref = value.get("$ref")
        if isinstance(ref, str) and ref.rsplit("/", 1)[-1] in names:
            return True
        return any(_refers_to_any(item, names) for item in value.values())
    if isinstance(value, list):
        return any(_refers_to_any(item, names) for item in value)
    return False
