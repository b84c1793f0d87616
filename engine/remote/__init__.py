"""A Qt-free client for any OpenAI-compatible server (vLLM, SGLang, Ollama, llama.cpp, hosted gpt-oss APIs, and this
app's own ``serve``) that yields the same :class:`~engine.events.Delta` / :class:`~engine.events.Done` events as the
local engine, so the chat session, compare view, history and stats need no special case.

The names below are imported on first use (PEP 562), so ``engine.remote.connection`` stays cheap to import for the
CLI's parser and the app's settings, without loading the ``openai`` SDK (~0.6 s).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
        ToolsRejected,
        UnknownRemoteModel,
        is_connection_lost,
    )
    from gpt_oss_desktop.engine.remote.report import CheckStatus, CheckStep, ConnectionReport

_WHERE = {
    "RemoteClient": "client",
    "RetryNotice": "client",
    "ReasoningStyle": "connection",
    "RemoteConnection": "connection",
    "AuthRejected": "errors",
    "ConnectionLost": "errors",
    "NotAnOpenAIApi": "errors",
    "RateLimited": "errors",
    "RemoteError": "errors",
    "ServerUnavailable": "errors",
    "TLSFailure": "errors",
    "ToolsRejected": "errors",
    "UnknownRemoteModel": "errors",
    "is_connection_lost": "errors",
    "CheckStatus": "report",
    "CheckStep": "report",
    "ConnectionReport": "report",
}

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
    "ToolsRejected",
    "UnknownRemoteModel",
    "is_connection_lost",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
