"""Argument types for the command line's numeric flags: a bad value is argparse's one-line error naming the flag the
user typed (``argument --thinking-budget: must be ...``), exit status 2, before any model loads.

The engine checks the same rules (SamplingParams, ServerConfig), but its messages name its own fields
(``reasoning_budget``, ``max_concurrent``), which a user of the command line never typed.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _refuse(text: str, rule: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"must be {rule}, got {text!r}")


def integer_in(minimum: int, maximum: int | None, rule: str) -> Callable[[str], int]:
    """An argument type taking an integer from ``minimum`` to ``maximum`` (None: no upper bound); ``rule`` says which
    in the error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise _refuse(text, rule) from None
        if value < minimum or (maximum is not None and value > maximum):
            raise _refuse(text, rule)
        return value

    return parse


def _finite_number(text: str, rule: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _refuse(text, rule) from None
    if not math.isfinite(value):
        raise _refuse(text, rule)
    return value


def temperature_value(text: str) -> float:
    """``--temperature``: a finite number >= 0."""
    rule = "a number >= 0 (0 = greedy)"
    value = _finite_number(text, rule)
    if value < 0:
        raise _refuse(text, rule)
    return value


def top_p_value(text: str) -> float:
    """``--top-p``: a number in (0, 1]."""
    rule = "a number in (0, 1] (1 = off)"
    value = _finite_number(text, rule)
    if not 0 < value <= 1:
        raise _refuse(text, rule)
    return value


# Sampling (chat, tokens).
seed_value = integer_in(0, 2**64 - 1, "an integer in [0, 2**64)")  # what torch.Generator.manual_seed accepts
top_k_value = integer_in(0, None, "an integer >= 0 (0 = off)")
max_tokens_value = integer_in(1, None, "an integer >= 1")
thinking_budget_value = integer_in(0, None, "an integer >= 0 (0 = answer without thinking)")
# Sizes (chat, serve).
context_value = integer_in(1, None, "an integer >= 1 (tokens)")
# The server (serve).
port_value = integer_in(0, 65535, "a port in [0, 65535] (0 = any free one)")
max_concurrent_value = integer_in(1, None, "an integer >= 1")
max_waiting_value = integer_in(0, None, "an integer >= 0")
prefill_chunk_value = integer_in(0, None, "an integer >= 0 (0 = whole prompts)")
