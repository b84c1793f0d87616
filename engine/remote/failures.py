"""What an ``openai`` SDK exception means for the user: the typed error to show, and whether (and after how long) to
try again.

Retried: 5xx, 408, timeouts, an unreachable server, and 429 (after its ``Retry-After``, when that is not longer
than the connection's ``max_backoff_s``). Never retried: 4xx (the same request gets the same answer), TLS failures,
and anything that is not an OpenAI-compatible API.
"""

from __future__ import annotations

import email.utils
import json
import ssl
import time
from dataclasses import dataclass
from typing import Any

import openai

from gpt_oss_desktop.engine.remote.connection import RemoteConnection
from gpt_oss_desktop.engine.remote.errors import (
    AuthRejected,
    NotAnOpenAIApi,
    RateLimited,
    RemoteError,
    ServerUnavailable,
    TLSFailure,
    UnknownRemoteModel,
    redact,
)

_DETAIL_CHARS = 200
# Words providers use for an unknown model on a 400 (OpenRouter: "... is not a valid model ID") or a 404.
_MODEL_NOT_FOUND_CODES = frozenset({"model_not_found", "model_not_available"})


@dataclass(frozen=True, slots=True)
class Failure:
    """A classified exception: the error to raise once no retry is left, and the wait before a retry (None: do
    not retry). ``retry_after`` is the server's own ``Retry-After``, if it sent one."""

    error: RemoteError
    retry_in: float | None
    retry_after: float | None = None


def backoff(connection: RemoteConnection, attempt: int) -> float:
    """The wait before try ``attempt + 1`` (attempt 1 = the first try failed): backoff_s, 2x, 4x, ... capped."""
    return float(min(connection.max_backoff_s, connection.backoff_s * 2 ** (attempt - 1)))


def retry_after_seconds(headers: Any) -> float | None:
    """A 429's ``retry-after-ms`` or ``Retry-After`` (seconds, or an HTTP date) in seconds, or None."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def one_line(text: str, secret: str | None, limit: int = _DETAIL_CHARS) -> str:
    text = " ".join(redact(text, secret).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def status_detail(exc: openai.APIStatusError, secret: str | None) -> str:
    """The server's own error message (OpenAI's ``{"error": {"message"}}`` or similar), on one line."""
    body = exc.body
    message: Any = None
    if isinstance(body, dict):
        message = body.get("message") or body.get("detail") or body.get("error")
        if isinstance(message, dict):
            message = message.get("message")
    elif isinstance(body, str):
        message = body
    if not isinstance(message, str) or not message:
        message = exc.response.reason_phrase or ""
    return one_line(message, secret)


def _error_code(exc: openai.APIStatusError) -> str | None:
    body = exc.body
    if isinstance(body, dict):
        code = body.get("code")
        return code if isinstance(code, str) else None
    return None


def is_html(exc: openai.APIStatusError) -> bool:
    content_type = exc.response.headers.get("content-type", "")
    body = exc.body if isinstance(exc.body, str) else ""
    return "html" in content_type or body.lstrip().lower().startswith(("<!doctype", "<html"))


def _tls_cause(exc: BaseException) -> str | None:
    """The TLS problem behind a connection error, if that is what it was."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLError):
            return str(current.reason or current)
        text = str(current)
        if "CERTIFICATE_VERIFY_FAILED" in text or "SSL" in text or "TLS" in text:
            return text
        current = current.__cause__ or current.__context__
    return None


def _root_cause(exc: BaseException) -> str:
    current: BaseException = exc
    while current.__cause__ is not None and current.__cause__ is not current:
        current = current.__cause__
    text = str(current) or type(current).__name__
    return text


def classify(exc: BaseException, connection: RemoteConnection, attempt: int) -> Failure:
    """The typed error behind ``exc`` (an SDK error, or a JSON error from a body that was not JSON)."""
    url = connection.base_url
    key = connection.api_key
    if isinstance(exc, openai.APITimeoutError):
        error: RemoteError = ServerUnavailable(
            f"{url} did not answer within {connection.timeout_s:.0f} s; the server may be overloaded, "
            "try again later or raise the timeout"
        )
        return Failure(error, backoff(connection, attempt))
    if isinstance(exc, openai.APIConnectionError):
        tls = _tls_cause(exc)
        if tls is not None:
            return Failure(TLSFailure(url, one_line(tls, key)), None)
        cause = one_line(_root_cause(exc), key)
        error = ServerUnavailable(f"cannot reach {url} ({cause}); check that the server is running and the URL")
        return Failure(error, backoff(connection, attempt))
    if isinstance(exc, openai.APIStatusError):
        return _classify_status(exc, connection, attempt)
    if isinstance(exc, openai.APIResponseValidationError | json.JSONDecodeError | UnicodeDecodeError):
        return Failure(NotAnOpenAIApi(url, "a body that is not the JSON an OpenAI API sends"), None)
    if isinstance(exc, openai.APIError):  # an error object in the event stream
        return Failure(RemoteError(f"the server reported an error: {one_line(exc.message, key)}"), None)
    return Failure(RemoteError(f"unexpected answer from {url}: {one_line(str(exc), key)}"), None)


def _classify_status(exc: openai.APIStatusError, connection: RemoteConnection, attempt: int) -> Failure:
    url = connection.base_url
    status = exc.status_code
    detail = status_detail(exc, connection.api_key)
    if status >= 500 or status == 408:
        # A proxy's HTML 502/503 page is still an unavailable server, so this comes before the HTML check.
        error: RemoteError = ServerUnavailable(
            f"{url} answered HTTP {status} ({detail}); the server has a problem, try again later", status=status
        )
        return Failure(error, backoff(connection, attempt))
    if is_html(exc):
        return Failure(NotAnOpenAIApi(url, f"HTTP {status} with an HTML page", status=status), None)
    if status in (401, 403):
        return Failure(AuthRejected(url, status, detail), None)
    if status == 429:
        retry_after = retry_after_seconds(exc.response.headers)
        wait = retry_after if retry_after is not None else backoff(connection, attempt)
        error = RateLimited(retry_after, detail)
        # A wait longer than the cap is the user's to see (a countdown), not ours to sit through.
        return Failure(error, wait if wait <= connection.max_backoff_s else None, retry_after)
    if status == 404 or _error_code(exc) in _MODEL_NOT_FOUND_CODES:
        # Filled in by the caller, which can list the models (a 404 may also be a wrong URL: it checks).
        return Failure(UnknownRemoteModel(connection.model, [], status=status), None)
    return Failure(RemoteError(f"the server refused the request: HTTP {status}: {detail}", status=status), None)
