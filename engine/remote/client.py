"""RemoteClient: streams answers from an OpenAI-compatible server as the local engine's Delta/Done events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from openai_harmony import HarmonyEncoding

from gpt_oss_desktop.engine.events import Delta, Done
from gpt_oss_desktop.engine.harmony import ChatMessage, ReasoningEffort
from gpt_oss_desktop.engine.remote.connection import RemoteConnection
from gpt_oss_desktop.engine.remote.report import ConnectionReport

if TYPE_CHECKING:
    from gpt_oss_desktop.engine.sampling import SamplingParams


@dataclass(frozen=True, slots=True)
class RetryNotice:
    """A failed try that will be retried: what failed and how long the client waits first (a 429's Retry-After,
    or the backoff), so a UI can show a countdown."""

    attempt: int  # 1 = the first try failed
    delay_s: float
    reason: str  # one line, e.g. "HTTP 429: rate limited" (never the key)
    retry_after: float | None = None  # what the server asked for, if it did


RetryListener = Callable[[RetryNotice], None]


class RemoteClient:
    """One connection's client. Safe to run several streams at once (the compare view's three efforts)."""

    def __init__(
        self,
        connection: RemoteConnection,
        *,
        encoding: HarmonyEncoding | None = None,
        on_retry: RetryListener | None = None,
    ) -> None:
        self.connection = connection
        self._encoding = encoding
        self._on_retry = on_retry

    async def list_models(self) -> list[str]:
        """The model ids ``GET /models`` lists. Raises the typed errors of :mod:`engine.remote.errors`."""
        raise NotImplementedError

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        effort: ReasoningEffort,
        instructions: str | None,
        params: SamplingParams,
        cancel: asyncio.Event | None = None,
        raise_on_drop: bool = False,
    ) -> AsyncIterator[Delta | Done]:
        """Deltas then exactly one Done, as the local engine yields them."""
        raise NotImplementedError
        yield  # pragma: no cover

    async def check(self) -> ConnectionReport:
        """Test connection: reachable, authorised, model listed, streaming, reasoning field, effort honoured."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Close the HTTP connections (idempotent)."""
