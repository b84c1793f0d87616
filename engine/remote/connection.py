"""Where a remote OpenAI-compatible server is and how it wants to be spoken to."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field


class ReasoningStyle(enum.StrEnum):
    """How a provider wants the reasoning effort sent."""

    REASONING_EFFORT = "reasoning_effort"  # top-level "reasoning_effort": "low" (vLLM, SGLang, Groq, ours, ...)
    REASONING_OBJECT = "reasoning_object"  # "reasoning": {"effort": "low"} (OpenRouter)


@dataclass(frozen=True, slots=True)
class RemoteConnection:
    """One server and model. ``api_key`` is never logged and never in ``repr`` (nor in any error message).

    ``max_retries`` counts the extra tries after a 5xx, a timeout, an unreachable server or a 429 (which waits its
    ``Retry-After``); the waits between tries grow from ``backoff_s`` (0.5, 1, 2, ... s, capped at
    ``max_backoff_s``). Retries only happen before the first event of an answer: a stream is never replayed.
    """

    base_url: str  # "http://127.0.0.1:8000/v1"
    model: str
    api_key: str | None = field(default=None, repr=False)
    reasoning_style: ReasoningStyle = ReasoningStyle.REASONING_EFFORT
    send_reasoning_back: bool = True  # False for providers that 400 on reasoning fields in input (Groq)
    timeout_s: float = 60.0
    max_retries: int = 3  # for 5xx / timeouts / 429 (with Retry-After)
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0  # also caps how long a 429's Retry-After is waited before giving up

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"the server URL must start with http:// or https://, got {self.base_url!r}")
        if not self.model:
            raise ValueError("choose a model (GET /v1/models lists what the server offers)")
        for name in ("timeout_s", "backoff_s", "max_backoff_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.timeout_s <= 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {self.max_retries!r}")
        # "http://host:8000/v1/" and "http://host:8000/v1" are the same server
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        object.__setattr__(self, "reasoning_style", ReasoningStyle(self.reasoning_style))
