"""Parameters a model refuses: read from its 400s, remembered for a bounded number of models."""

from __future__ import annotations

import httpx
import openai
import pytest

from bot.model_params import RefusedParameters, refused_parameter


def bad_request(message: str, *, param: str | None, code: str | None) -> openai.BadRequestError:
    request = httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")
    body = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return openai.BadRequestError(message, response=httpx.Response(400, request=request), body=body)


MAX_TOKENS = bad_request(
    "Unsupported parameter: 'max_tokens' is not supported with this model. "
    "Use 'max_completion_tokens' instead.",
    param="max_tokens",
    code="unsupported_parameter",
)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (MAX_TOKENS, "max_tokens"),
        (
            bad_request("Use 'max_completion_tokens', not 'max_tokens'", param=None, code=None),
            "max_tokens",
        ),
        (bad_request("no", param="temperature", code="unsupported_value"), "temperature"),
        (bad_request("too large", param="max_tokens", code="invalid_value"), None),
        (bad_request("bad schema", param="response_format", code=None), None),
    ],
)
def test_the_refused_parameter_is_read_from_the_error(
    error: openai.BadRequestError, expected: str | None
) -> None:
    assert refused_parameter(error) == expected


def test_a_refused_parameter_is_renamed_or_left_out_for_that_model() -> None:
    refused = RefusedParameters()
    params = {"model": "o3", "max_tokens": 10, "temperature": 0.0}

    assert refused.learn("o3", MAX_TOKENS, params) == "max_tokens"
    assert refused.adjusted("o3", params) == {
        "model": "o3",
        "max_completion_tokens": 10,
        "temperature": 0.0,
    }
    assert refused.adjusted("gpt-4o", params) is params
    assert refused.learn("o3", MAX_TOKENS, params) is None  # known already: no second retry


def test_a_parameter_that_was_not_sent_is_not_learned() -> None:
    refused = RefusedParameters()
    assert refused.learn("o3", MAX_TOKENS, {"model": "o3"}) is None
    assert refused.refused("o3") == frozenset()


def test_the_models_remembered_are_bounded() -> None:
    refused = RefusedParameters(capacity=2)
    for model in ("o1", "o3", "gpt-5"):
        refused.learn(model, MAX_TOKENS, {"max_tokens": 1})

    assert refused.refused("o1") == frozenset()
    assert refused.refused("o3") == {"max_tokens"}
    assert refused.refused("gpt-5") == {"max_tokens"}
