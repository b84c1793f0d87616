"""Typed errors of the remote client: each is an :class:`~engine.errors.EngineError` whose message says what went
wrong and what to do about it, in one line a chat or a dialog can show as it is.

No message ever contains the API key: they are built from status codes, URLs, model names and the server's own
error text (which :func:`redact` scrubs of the key anyway, in case a server echoes it).
"""

from __future__ import annotations

from typing import Final

from gpt_oss_desktop.engine.errors import EngineError
from gpt_oss_desktop.engine.events import Done, FinishReason

# Done.error of a stream the server cut off mid-answer starts with this (see :func:`is_connection_lost`).
CONNECTION_LOST_PREFIX: Final = "connection lost"


class RemoteError(EngineError):
    """Base class of every remote-server error (also used as is for an answer the server refused with a 4xx that
    has no class of its own, e.g. 400; ``status`` is then the HTTP status)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthRejected(RemoteError):
    """401 / 403: the server refused the API key (or wants one and got none)."""

    def __init__(self, url: str, status: int, detail: str = "") -> None:
        what = "rejected the API key" if status == 401 else "refused access with this API key"
        more = f" ({detail})" if detail else ""
        super().__init__(f"{url} {what}{more}; enter the key again (or check its permissions)", status=status)


class UnknownRemoteModel(RemoteError):
    """404 (or a provider's "model not found"): the server does not serve this model.

    Attributes:
        model: the model asked for.
        available: what ``GET /v1/models`` lists (empty when that failed too).
    """

    def __init__(self, model: str, available: list[str], *, status: int | None = 404) -> None:
        self.model = model
        self.available = list(available)
        if available:
            shown = ", ".join(available[:8]) + (f" and {len(available) - 8} more" if len(available) > 8 else "")
            advice = f"choose one it lists: {shown}"
        else:
            advice = "check the model name (the server listed no models)"
        super().__init__(f"the server has no model {model!r}; {advice}", status=status)


class RateLimited(RemoteError):
    """429 after every retry: the server is throttling this key.

    Attributes:
        retry_after: seconds the server asked to wait (its ``Retry-After``), or None when it did not say.
    """

    def __init__(self, retry_after: float | None, detail: str = "") -> None:
        self.retry_after = retry_after
        wait = f"try again in {retry_after:.0f} s" if retry_after is not None else "wait a little and try again"
        more = f" ({detail})" if detail else ""
        super().__init__(f"the server is rate-limiting requests{more}; {wait}", status=429)


class ServerUnavailable(RemoteError):
    """5xx answers, timeouts or an unreachable server, still so after every retry."""


class ConnectionLost(RemoteError):
    """The connection dropped in the middle of an answer.

    Attributes:
        partial_text: the answer text that arrived before the drop.
        partial_reasoning: the reasoning that arrived before the drop.
    """

    def __init__(self, detail: str, partial_text: str = "", partial_reasoning: str = "") -> None:
        self.partial_text = partial_text
        self.partial_reasoning = partial_reasoning
        super().__init__(
            f"{CONNECTION_LOST_PREFIX} mid-answer ({detail}); the partial answer is kept, retry to redo it"
        )


class NotAnOpenAIApi(RemoteError):
    """The URL answers, but not as an OpenAI-compatible API (an HTML page, or a body that is not JSON)."""

    def __init__(self, url: str, what: str, *, status: int | None = None) -> None:
        super().__init__(
            f"{url} answered {what}: this is not an OpenAI-compatible API; check the URL (it usually ends in /v1)",
            status=status,
        )


class TLSFailure(RemoteError):
    """The HTTPS handshake failed (an untrusted or expired certificate, or plain HTTP on an HTTPS URL)."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(
            f"secure connection to {url} failed ({detail}); check the URL's http/https and the server's certificate"
        )


class ToolsRejected(RemoteError):
    """The server refused a request because of the tools it offered (it has no tool support, or it is not turned
    on): the same question can be asked without them."""

    def __init__(self, detail: str, *, status: int | None = None) -> None:
        super().__init__(
            f"this server does not accept tools ({detail}); Retry answers without tools on this connection "
            "(reconnect once the server takes tools, e.g. vLLM with --enable-auto-tool-choice "
            "--tool-call-parser openai)",
            status=status,
        )


def tools_refused(error: RemoteError) -> bool:
    """Whether a refusal (a 4xx other than a key or rate problem) names tools or functions: the servers that cannot
    take tools say so in the message ("auto" tool choice requires --enable-auto-tool-choice, does not support
    tools, tools param requires --jinja)."""
    if error.status is None or not 400 <= error.status < 500 or error.status in (401, 403, 404, 429):
        return False
    text = str(error).lower()
    return "tool" in text or "function" in text


def is_connection_lost(done: Done) -> bool:
    """Whether a stream's Done reports a connection that dropped mid-answer (the partial answer is in the Deltas
    before it and in ``done.messages``)."""
    return done.finish_reason is FinishReason.ERROR and (done.error or "").startswith(CONNECTION_LOST_PREFIX)


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` replaced (a server may echo the key in an error message)."""
    if not secret:
        return text
    return text.replace(secret, "[API key]")
