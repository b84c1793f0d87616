"""Sampling and effort fields shared by Chat Completions and Responses, read and checked once.

Defaults follow OpenAI's advice for gpt-oss (temperature 1, top_p 1) and medium effort; ``max_tokens`` defaults to
what is left of the context after the prompt. ``thinking_token_budget`` (vLLM's name; not an OpenAI field) caps the
tokens of reasoning, after which the model must answer (engine/channel_guard.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from gpt_oss_desktop.engine.harmony import ReasoningEffort
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.server.errors import invalid_param
from gpt_oss_desktop.engine.server.request_fields import JSONObject, optional_int, optional_number, require_object

_MAX_STOP_SEQUENCES = 4  # OpenAI's limit
_SEED_LIMIT = 2**64


@dataclass(frozen=True, slots=True)
class GenerationSettings:
    effort: ReasoningEffort = ReasoningEffort.MEDIUM
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int | None = None  # None: the rest of the context
    seed: int | None = None
    stop: tuple[str, ...] = ()
    reasoning_budget: int | None = None  # thinking_token_budget

    def sampling_params(self, room: int) -> SamplingParams:
        """The engine's parameters for a prompt that leaves ``room`` tokens of context."""
        limit = room if self.max_tokens is None else min(self.max_tokens, room)
        return SamplingParams(
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
            max_tokens=max(1, limit),
            reasoning_budget=self.reasoning_budget,
        )


def read_effort(body: JSONObject) -> ReasoningEffort:
    """``reasoning_effort`` (Chat Completions) or ``reasoning.effort`` (both APIs); medium when absent."""
    value = body.get("reasoning_effort")
    param = "reasoning_effort"
    if value is None and body.get("reasoning") is not None:
        reasoning = require_object(body["reasoning"], "reasoning")
        value, param = reasoning.get("effort"), "reasoning.effort"
    if value is None:
        return ReasoningEffort.MEDIUM
    try:
        return ReasoningEffort(value)
    except ValueError:
        raise invalid_param(
            param, f"'{param}' must be one of 'low', 'medium', 'high' for gpt-oss, got {value!r}."
        ) from None


def read_settings(body: JSONObject, *, max_tokens_keys: tuple[str, ...]) -> GenerationSettings:
    """The settings of a request body; ``max_tokens_keys`` are the names the API uses for the output limit."""
    temperature = optional_number(body, "temperature", low=0.0, high=2.0)
    top_p = optional_number(body, "top_p", low=0.0, high=1.0, low_inclusive=False)
    max_tokens = None
    for key in max_tokens_keys:
        value = optional_int(body, key, low=1)
        if value is not None:
            max_tokens = value
    seed = body.get("seed")
    if seed is not None:
        seed = optional_int(body, "seed", low=-(2**63), high=_SEED_LIMIT - 1)
        assert seed is not None
        seed %= _SEED_LIMIT  # OpenAI accepts negative seeds; the engine's generator wants [0, 2**64)
    return GenerationSettings(
        effort=read_effort(body),
        temperature=1.0 if temperature is None else temperature,
        top_p=1.0 if top_p is None else top_p,
        max_tokens=max_tokens,
        seed=seed,
        stop=_read_stop(body),
        reasoning_budget=optional_int(body, "thinking_token_budget", low=0),
    )


def _read_stop(body: JSONObject) -> tuple[str, ...]:
    value = body.get("stop")
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise invalid_param("stop", "'stop' must be a string or an array of strings.", "invalid_type")
    if len(stops) > _MAX_STOP_SEQUENCES:
        raise invalid_param("stop", f"'stop' takes at most {_MAX_STOP_SEQUENCES} sequences, got {len(stops)}.")
    if any(s == "" for s in stops):
        raise invalid_param("stop", "'stop' sequences must not be empty.")
    return tuple(stops)
