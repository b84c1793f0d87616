"""A Qt-free client for any OpenAI-compatible server (vLLM, SGLang, Ollama, llama.cpp, hosted gpt-oss APIs, and this
app's own ``serve``) that yields the same :class:`~engine.events.Delta` / :class:`~engine.events.Done` events as the
local engine, so the chat session, compare view, history and stats need no special case."""

from gpt_oss_desktop.engine.remote.client import RemoteClient, RetryNotice
from gpt_oss_desktop.engine.remote.connection import ReasoningStyle, RemoteConnection
from gpt_oss_desktop.engine.remote.errors import (
    AuthRejected,
    ConnectionLost,
    NotAnOpenAIApi,
    RateLimited,
    RemoteError,
    ServerUnavailable,
    TLSFailure,
    UnknownRemoteModel,
)
from gpt_oss_desktop.engine.remote.report import CheckStatus, CheckStep, ConnectionReport

__all__ = [
    "AuthRejected",
    "CheckStatus",
    "CheckStep",
    "ConnectionLost",
    "ConnectionReport",
    "NotAnOpenAIApi",
    "RateLimited",
    "ReasoningStyle",
    "RemoteClient",
    "RemoteConnection",
    "RemoteError",
    "RetryNotice",
    "ServerUnavailable",
    "TLSFailure",
    "UnknownRemoteModel",
]
