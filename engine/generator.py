"""Streaming token generation over one model with KV-cache prefix reuse.

:class:`Generator` owns one cache slot across requests. A new prompt that starts with tokens already in the cache
(the usual case in a chat: the history is re-rendered each turn) only prefills the differing tail. Each request
either streams harmony events (:class:`~engine.events.Delta` s, a :class:`~engine.events.ToolCall` per call, then
one :class:`~engine.events.Done`: :meth:`Generator.stream`) or raw token ids (:meth:`Generator.generate_ids`). The
token loop is :func:`engine.decode_loop.decode_steps`, the one :class:`~engine.batch_generator.BatchGenerator` runs
too, here with a batch of one.

Error policy: a request that cannot run (empty prompt, prompt longer than the context, token ids outside the
vocabulary) raises :class:`~engine.errors.GenerationError` before touching the model. An exception raised by the
model mid-request ends the stream with ``Done(finish_reason=error)``; the cache is cleared so the next request
starts clean, and the generator stays usable.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Generator as PyGenerator
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import torch

from gpt_oss_desktop.engine.decode_loop import SequenceState, Step, decode_steps, harmony_events, validate_prompt
from gpt_oss_desktop.engine.errors import GenerationError
from gpt_oss_desktop.engine.events import Event, FinishReason
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.stream_parser import HarmonyStreamParser

if TYPE_CHECKING:
    from openai_harmony import HarmonyEncoding

logger = logging.getLogger(__name__)

_SLOT = 0


class CacheLike(Protocol):
    """The part of :class:`engine.kv_cache.KVCache` the generator uses."""

    capacity: int

    def length(self, slot: int) -> int: ...
    def tokens(self, slot: int) -> list[int]: ...
    def truncate(self, slot: int, n: int) -> int: ...


class ModelLike(Protocol):
    """The part of :class:`engine.model.Model` the generator uses (a protocol so tests can supply a fake)."""

    @property
    def config(self) -> _ConfigLike: ...
    @property
    def device(self) -> torch.device: ...
    def new_cache(self, batch_size: int = 1, max_context: int | None = None) -> CacheLike: ...
    # The cache is typed Any here because each model only accepts its own cache class.
    def prefill(self, token_ids: Sequence[int], cache: Any, slot: int = 0) -> torch.Tensor: ...
    def decode(self, token_ids: Sequence[int], cache: Any, slots: Sequence[int]) -> torch.Tensor: ...


class _ConfigLike(Protocol):
    @property
    def vocab_size(self) -> int: ...
    @property
    def max_context_length(self) -> int: ...


class Generator:
    """Runs requests one at a time against ``model``, reusing its KV cache between them (thread-safe)."""

    def __init__(
        self, model: ModelLike, *, max_context: int | None = None, encoding: HarmonyEncoding | None = None
    ) -> None:
        self.model = model
        self._max_context = max_context
        self._encoding = encoding
        self._cache: CacheLike | None = None
        # (prompt length, logits) of the last prefill, valid while the cache still starts with that prompt.
        self._last_prefill: tuple[int, torch.Tensor] | None = None
        # One request at a time: the cache slot is shared state. A second caller waits.
        self._lock = threading.Lock()

    @property
    def context_length(self) -> int:
        """Most tokens (prompt + completion) one request can hold."""
        return self._capacity()

    @property
    def cached_tokens(self) -> list[int]:
        """Token ids the cache holds now (prompt and completion of the last request, minus its last token)."""
        return [] if self._cache is None else self._cache.tokens(_SLOT)

    def reset(self) -> None:
        """Forget the cached context (the next request prefills from scratch)."""
        with self._lock:
            self._clear_cache()

    # -- public entry points -----------------------------------------------------------------------------------

    def stream(
        self, prompt_ids: Sequence[int], params: SamplingParams, cancel: threading.Event | None = None
    ) -> Iterator[Event]:
        """Generate an assistant completion for a harmony prompt (ending in ``<|start|>assistant``).

        Yields :class:`Delta` s as text arrives, a :class:`ToolCall` when a call's message closes (after the Deltas
        of its arguments), and then exactly one :class:`Done`. Raises
        :class:`GenerationError` (before any work) if the request cannot run.
        """
        prompt = self._validate(prompt_ids)
        return self._stream(prompt, params, cancel)

    def generate_ids(
        self, prompt_ids: Sequence[int], params: SamplingParams, cancel: threading.Event | None = None
    ) -> Iterator[int]:
        """Raw token ids (no harmony parsing), the stop token included when one ends the run.

        Raises :class:`GenerationError` for an invalid request (before any work) or, chained to the model's
        exception, when the model fails mid-run.
        """
        prompt = self._validate(prompt_ids)
        return self._generate_ids(prompt, params, cancel)

    # -- implementation ----------------------------------------------------------------------------------------

    def _stream(self, prompt: list[int], params: SamplingParams, cancel: threading.Event | None) -> Iterator[Event]:
        seq = SequenceState(_SLOT, prompt, params, time.perf_counter(), HarmonyStreamParser(self._encoding))
        # closing() so that a consumer abandoning this stream also ends the token loop (and frees the lock) at once.
        with contextlib.closing(harmony_events(self._steps(seq, cancel))) as events:
            for _slot, event in events:
                yield event

    def _generate_ids(self, prompt: list[int], params: SamplingParams, cancel: threading.Event | None) -> Iterator[int]:
        seq = SequenceState(_SLOT, prompt, params, time.perf_counter())
        with contextlib.closing(self._steps(seq, cancel)) as steps:
            for _seq, token in steps:
                if token is not None:
                    yield token
        if seq.error is not None:
            raise GenerationError(f"the model failed during generation: {seq.error}") from seq.error

    def _steps(self, seq: SequenceState, cancel: threading.Event | None) -> PyGenerator[Step, None, None]:
        """The shared loop (engine.decode_loop) as a batch of one in this generator's cache, under its lock.

        A model failure ends ``seq`` with finish_reason error (never raised); the cache is cleared before that last
        step is passed on, so the next request starts clean.
        """
        # The lock is held across yields (the cache is ours until the request ends); the loop enters inference_mode
        # only around model work, because a grad-mode context held across a yield would leak into the consumer.
        with self._lock:
            cache = self._get_cache()
            if len(seq.prompt) >= cache.capacity:
                # Re-checked under the lock: the cache (and so its real capacity) may only now exist.
                raise GenerationError(
                    f"the prompt has {len(seq.prompt)} tokens but the context holds {cache.capacity}; "
                    "shorten the conversation"
                )
            with contextlib.closing(
                decode_steps(self.model, cache, [seq], lambda s: self._prefill(s, cache), cancel)
            ) as steps:
                for step in steps:
                    if step[0].finish_reason is FinishReason.ERROR:
                        self._clear_cache()
                    yield step

    def _prefill(self, seq: SequenceState, cache: CacheLike) -> torch.Tensor:
        """Reuse the cached prefix shared with ``prompt`` and prefill the rest; return the last position's logits.

        When the whole prompt is exactly what the previous request prefilled (regenerating an answer), the logits
        kept from that prefill are reused and nothing is recomputed. Otherwise at least one token is prefilled,
        because only a forward pass yields logits.
        """
        prompt = seq.prompt
        cached = cache.tokens(_SLOT)
        common = 0
        for a, b in zip(cached, prompt, strict=False):
            if a != b:
                break
            common += 1
        # The cache can return exactly to the end of a prefill (the real one snapshots there), so this rarely fails.
        if (
            common == len(prompt)
            and self._last_prefill is not None
            and self._last_prefill[0] == len(prompt)
            and cache.truncate(_SLOT, len(prompt)) == len(prompt)
        ):
            seq.reused_prompt_tokens = len(prompt)
            logger.debug("prefill: all %d prompt tokens reused with their logits", len(prompt))
            return self._last_prefill[1]
        common = min(common, len(prompt) - 1)
        kept = cache.truncate(_SLOT, common) if cache.length(_SLOT) != common else common
        seq.reused_prompt_tokens = kept
        logger.debug("prefill: %d prompt tokens, %d reused from the cache", len(prompt), kept)
        self._last_prefill = None  # invalid while the cache is being rewritten
        logits = self.model.prefill(prompt[kept:], cache, _SLOT)
        self._last_prefill = (len(prompt), logits)
        return logits

    def _validate(self, prompt_ids: Sequence[int]) -> list[int]:
        return validate_prompt(prompt_ids, self.model.config.vocab_size, self._capacity())

    def _capacity(self) -> int:
        if self._cache is not None:
            return self._cache.capacity
        limit = self.model.config.max_context_length
        return min(self._max_context, limit) if self._max_context is not None else limit

    def _get_cache(self) -> CacheLike:
        if self._cache is None:
            self._cache = self.model.new_cache(1, self._max_context)
        return self._cache

    def _clear_cache(self) -> None:
        self._last_prefill = None
        if self._cache is None:
            return
        try:
            self._cache.truncate(_SLOT, 0)
        except Exception:  # a cache broken mid-write is dropped; the next request allocates a new one
            logger.exception("could not clear the KV cache; dropping it")
            self._cache = None
