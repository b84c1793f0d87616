"""A scripted stand-in model (a test double) for screenshots and GUI tests that need a fixed token stream.

It implements the part of :class:`engine.model.Model` that :class:`engine.generator.Generator` uses and "predicts"
the next token of a fixed harmony script through one-hot logits, so everything downstream is the real pipeline:
the generator's sampling and cancel checks, the harmony stream parser, the engine thread and the event queue.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import torch

from engine.vocab import CHANNEL, END, MESSAGE, RETURN, START, get_encoding

_VOCAB: Final = 201088
_FILLER: Final = 13  # a plain-text token emitted once a script runs out (the generator then stops on max_tokens)


def harmony_reply(thought: str, answer: str) -> list[int]:
    """Completion tokens of an assistant reply: reasoning on ``analysis``, then the answer on ``final``."""
    enc = get_encoding()
    return [
        CHANNEL, *enc.encode("analysis"), MESSAGE, *enc.encode(thought), END,
        START, *enc.encode("assistant"), CHANNEL, *enc.encode("final"), MESSAGE, *enc.encode(answer), RETURN,
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Config:
    vocab_size: int = _VOCAB
    max_context_length: int = 8192


class _Cache:
    """Remembers token ids only; the generator needs nothing else from a cache."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._tokens: list[int] = []

    def length(self, slot: int) -> int:
        return len(self._tokens)

    def tokens(self, slot: int) -> list[int]:
        return list(self._tokens)

    def truncate(self, slot: int, n: int) -> int:
        del self._tokens[max(0, n) :]
        return len(self._tokens)

    def append(self, ids: Sequence[int]) -> None:
        self._tokens.extend(ids)


class ScriptedModel:
    """Replays one script per request (cycling through ``scripts``), one token per decode step.

    Args:
        scripts: completion token lists, e.g. from :func:`harmony_reply`.
        token_seconds: simulated compute per token (a sleep, which releases the GIL as real kernels do).
        hold_after: if set with ``release``, the decode of this step waits until ``release`` is set; used to
            freeze an answer mid-stream for a screenshot.
    """

    def __init__(
        self,
        scripts: Sequence[Sequence[int]],
        *,
        token_seconds: float = 0.0,
        hold_after: int | None = None,
        release: threading.Event | None = None,
    ) -> None:
        self.config = _Config()
        self.device = torch.device("cpu")
        self._scripts = [list(s) for s in scripts]
        self._token_seconds = token_seconds
        self._hold_after = hold_after
        self._release = release
        self._request = -1
        self.steps = 0  # tokens "predicted" in total (read from other threads by tests; an int is atomic)
        self.last_prompt: list[int] = []
        self._step = 0
        self._prompt_end = 0

    def new_cache(self, batch_size: int = 1, max_context: int | None = None) -> _Cache:
        return _Cache(max_context or self.config.max_context_length)

    def prefill(self, token_ids: Sequence[int], cache: _Cache, slot: int = 0) -> torch.Tensor:
        cache.append(token_ids)
        self.last_prompt = cache.tokens(slot)
        self._request += 1
        self._prompt_end = cache.length(slot)
        self._step = 0
        return self._logits()

    def decode(self, token_ids: Sequence[int], cache: _Cache, slots: Sequence[int]) -> torch.Tensor:
        cache.append(token_ids)
        self._step = cache.length(0) - self._prompt_end
        if self._hold_after is not None and self._release is not None and self._step == self._hold_after:
            self._release.wait()
        if self._token_seconds:
            time.sleep(self._token_seconds)
        return self._logits().unsqueeze(0)

    def _logits(self) -> torch.Tensor:
        self.steps += 1
        script = self._scripts[self._request % len(self._scripts)]
        token = script[self._step] if self._step < len(script) else _FILLER
        logits = torch.full((self.config.vocab_size,), -30.0)
        logits[token] = 30.0
        return logits
