"""What the server reports about each finished request, for a log pane (no bodies, no keys: only what a user may
see in a log). Kept free of the web stack so the app can import it without loading the server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One finished HTTP request."""

    method: str
    path: str
    status: int
    client: str
    seconds: float
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None


RequestListener = Callable[[RequestRecord], None]
"""Called on the server's thread once per finished request."""
