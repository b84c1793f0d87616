"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}`` with the matching HTTP status.

Handlers raise :class:`APIError` (or one of the helpers below); the app turns it into a JSON response. The ``type``
values are the ones OpenAI's API uses, so clients that branch on them (the ``openai`` SDK maps statuses to
exception classes) behave as they do against OpenAI.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class APIError(Exception):
    """An error answered to the client (never a crash of the server)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def invalid_param(param: str, message: str, code: str | None = "invalid_value") -> APIError:
    """400 for a request field with a wrong type or value."""
    return APIError(400, message, param=param, code=code)


def missing_param(param: str) -> APIError:
    return APIError(400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def unknown_model(model: str, served: str) -> APIError:
    return APIError(
        404,
        f"The model '{model}' does not exist. This server serves '{served}' (GET /v1/models).",
        param="model",
        code="model_not_found",
    )


def context_exceeded(prompt_tokens: int, context_length: int, param: str = "messages") -> APIError:
    return APIError(
        400,
        f"This model's maximum context length is {context_length} tokens, but the request's prompt has "
        f"{prompt_tokens} tokens. Shorten the conversation.",
        param=param,
        code="context_length_exceeded",
    )


def unauthorized() -> APIError:
    return APIError(
        401,
        "Incorrect or missing API key. Send 'Authorization: Bearer <key>' with the key the server was started with.",
        type="authentication_error",
        code="invalid_api_key",
    )


def too_many_requests(retry_after: float) -> APIError:
    seconds = max(1, round(retry_after))
    return APIError(
        429,
        f"The server is busy: every generation slot is taken and the queue is full. Retry in {seconds} s.",
        type="rate_limit_error",
        code="queue_full",
        headers={"Retry-After": str(seconds)},
    )


def body_too_large(limit: int) -> APIError:
    return APIError(413, f"The request body is larger than the server's limit of {limit} bytes.", code="body_too_large")


def server_error(message: str) -> APIError:
    return APIError(500, message, type="server_error", code="internal_error")
