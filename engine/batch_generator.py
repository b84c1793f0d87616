"""Several generations at once as one batch: each sequence in its own KV-cache slot, one decode call per step.

:class:`BatchGenerator` runs N requests (an effort comparison runs three) together. Each sequence is prefilled
into its own slot of one :class:`~engine.kv_cache.KVCache` (own positions, own cache), then every still-running
sequence advances by one token per :meth:`engine.model.Model.decode` call, so the weights are read once per step
for all of them instead of once per sequence. Each sequence has its own sampler, harmony parser and stop rules and
leaves the batch when it finishes; one cancel event stops them all.

Events are ``(index, event)`` pairs: the index of the request in the batch, and a :class:`~engine.events.Delta`
or the sequence's single :class:`~engine.events.Done`. Every index gets exactly one Done.

With greedy sampling a sequence produces exactly the tokens a single-sequence :class:`~engine.generator.Generator`
run produces: decode computes every row of the batch as it would compute it alone (the CPU kernels round per token
independently of the batch, see ``kernels/cpu_mxfp4.py``), which ``tests/engine/test_batch_generator.py`` checks.

Error policy as in :class:`~engine.generator.Generator`: a batch that cannot run raises
:class:`~engine.errors.GenerationError` before any work; a model failure mid-run ends every unfinished sequence
with ``Done(finish_reason=error)``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Generator as PyGenerator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from gpt_oss_desktop.engine.errors import GenerationError
from gpt_oss_desktop.engine.events import Delta, Done, FinishReason
from gpt_oss_desktop.engine.generator import ModelLike
from gpt_oss_desktop.engine.sampling import SamplingParams, make_generator, sample
from gpt_oss_desktop.engine.stream_parser import HarmonyStreamParser

if TYPE_CHECKING:
    from openai_harmony import HarmonyEncoding

logger = logging.getLogger(__name__)

BatchEvent = tuple[int, Delta | Done]
"""``(index of the request in the batch, event)``."""


@dataclass(slots=True)
class _Sequence:
    """Mutable state of one sequence of the batch (its slot in the cache is its index)."""

    index: int
    prompt: list[int]
    params: SamplingParams
    parser: HarmonyStreamParser
    rng: torch.Generator | None = None
    produced: int = 0
    last_token: int = -1
    prefill_seconds: float = 0.0
    first_token_at: float | None = None
    first_final_at: float | None = None
    decode_seconds: float = 0.0  # decode steps it took part in + its own sampling, for tokens after the first
    decoded: int = 0
    finish_reason: FinishReason | None = None  # None while running
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.finish_reason is None


class BatchGenerator:
    """Runs batches of requests against ``model``; every call gets a fresh cache (no prefix reuse between calls).

    Args:
        model: the model (or a test double with the same prefill/decode API).
        max_context: tokens per sequence (prompt + completion), capped by the model's context length. The same
            limit as a :class:`~engine.generator.Generator` with this ``max_context``, so both stop at the same token.
        encoding: the harmony encoding for the stream parsers (loaded on first use if None).
    """

    def __init__(
        self, model: ModelLike, *, max_context: int | None = None, encoding: HarmonyEncoding | None = None
    ) -> None:
        self.model = model
        self._max_context = max_context
        self._encoding = encoding
        # One batch at a time per generator: the model is free to run several, but a second caller would double the
        # memory of the caches for no gain on a machine whose bandwidth one batch already uses.
        self._lock = threading.Lock()

    @property
    def context_length(self) -> int:
        limit = self.model.config.max_context_length
        return min(self._max_context, limit) if self._max_context is not None else limit

    def stream(
        self,
        prompts: Sequence[Sequence[int]],
        params: Sequence[SamplingParams],
        cancel: threading.Event | None = None,
    ) -> Iterator[BatchEvent]:
        """Generate one assistant completion per harmony prompt (each ending in ``<|start|>assistant``).

        ``params[i]`` applies to ``prompts[i]``. Yields ``(i, Delta)`` as text arrives and exactly one ``(i, Done)``
        per sequence, in the order the sequences finish. Raises :class:`GenerationError` (before any work) if the
        batch cannot run.
        """
        checked = self._validate(prompts, params)
        return self._stream(checked, list(params), cancel)

    # -- implementation ----------------------------------------------------------------------------------------

    def _validate(self, prompts: Sequence[Sequence[int]], params: Sequence[SamplingParams]) -> list[list[int]]:
        if not prompts:
            raise GenerationError("a batch needs at least one prompt")
        if len(params) != len(prompts):
            raise GenerationError(f"{len(params)} sampling settings for {len(prompts)} prompts")
        vocab = self.model.config.vocab_size
        capacity = self.context_length
        checked = []
        for index, prompt_ids in enumerate(prompts):
            prompt = [int(t) for t in prompt_ids]
            if not prompt:
                raise GenerationError(f"prompt {index} is empty")
            bad = [t for t in prompt if not 0 <= t < vocab]
            if bad:
                raise GenerationError(f"prompt {index}: token id(s) {bad[:5]} outside the vocabulary [0, {vocab})")
            if len(prompt) >= capacity:
                raise GenerationError(
                    f"prompt {index} has {len(prompt)} tokens but the context holds {capacity}; "
                    "shorten the conversation"
                )
            checked.append(prompt)
        return checked

    def _stream(
        self, prompts: list[list[int]], params: list[SamplingParams], cancel: threading.Event | None
    ) -> Iterator[BatchEvent]:
        sequences = [
            _Sequence(index=i, prompt=p, params=params[i], parser=HarmonyStreamParser(self._encoding))
            for i, p in enumerate(prompts)
        ]
        # closing(): a consumer abandoning the stream also ends the loop (and frees the lock and the cache) at once.
        with self._lock, contextlib.closing(self._run(sequences, cancel)) as events:
            yield from events

    def _run(self, sequences: list[_Sequence], cancel: threading.Event | None) -> PyGenerator[BatchEvent, None, None]:
        started = time.perf_counter()
        device = self.model.device
        for seq in sequences:
            seq.rng = make_generator(seq.params.seed, device)

        def cancelled() -> bool:
            return cancel is not None and cancel.is_set()

        try:
            cache: Any = self.model.new_cache(len(sequences), self._max_context)
            # Prefill one slot at a time (prompts differ in length) and stream each first token right away.
            for seq in sequences:
                if cancelled():
                    break
                prefill_started = time.perf_counter()
                with torch.inference_mode():
                    logits = self.model.prefill(seq.prompt, cache, seq.index)
                seq.prefill_seconds = time.perf_counter() - prefill_started
                yield from self._take(seq, logits, cache, started)
            while any(seq.running for seq in sequences):
                if cancelled():
                    break
                active = [seq for seq in sequences if seq.running]
                step_started = time.perf_counter()
                with torch.inference_mode():
                    # One decode call for every running sequence: [len(active), V] logits, row r for active[r].
                    logits = self.model.decode([seq.last_token for seq in active], cache, [seq.index for seq in active])
                step_seconds = time.perf_counter() - step_started
                for row, seq in enumerate(active):
                    seq.decode_seconds += step_seconds
                    yield from self._take(seq, logits[row], cache, started)
        except Exception as exc:  # the model failed: every unfinished sequence reports it; the caller stays usable
            logger.exception("batched generation failed")
            message = f"{type(exc).__name__}: {exc}"
            for seq in sequences:
                if seq.running:
                    seq.finish_reason, seq.error = FinishReason.ERROR, message
                    yield seq.index, self._done(seq, started)
            return
        for seq in sequences:  # cancelled: those still running (or never started) end now
            if seq.running:
                seq.finish_reason = FinishReason.CANCELLED
                yield seq.index, self._done(seq, started)

    def _take(self, seq: _Sequence, logits: torch.Tensor, cache: Any, started: float) -> Iterator[BatchEvent]:
        """Sample ``seq``'s next token from its ``logits`` ``[V]``, stream its text, and finish it if it stops."""
        sample_started = time.perf_counter()
        with torch.inference_mode():
            token = int(sample(logits, seq.params, seq.rng))
        now = time.perf_counter()
        if seq.first_token_at is None:
            seq.first_token_at = now
        else:
            seq.decode_seconds += now - sample_started
            seq.decoded += 1
        seq.produced += 1
        seq.last_token = token
        delta = seq.parser.feed(token)
        if delta is not None:
            if seq.first_final_at is None and delta.is_final:
                seq.first_final_at = now
            yield seq.index, delta
        # The same stop rules, in the same order, as Generator._tokens.
        if token in seq.params.stop_tokens:
            seq.finish_reason = FinishReason.STOP
        elif seq.produced >= seq.params.max_tokens or cache.length(seq.index) + 1 > cache.capacity:
            seq.finish_reason = FinishReason.LENGTH
        if not seq.running:
            yield seq.index, self._done(seq, started)

    @staticmethod
    def _done(seq: _Sequence, started: float) -> Done:
        seq.parser.finish()
        counts = seq.parser.counts
        return Done(
            finish_reason=seq.finish_reason if seq.finish_reason is not None else FinishReason.CANCELLED,
            prompt_tokens=len(seq.prompt),
            reused_prompt_tokens=0,
            reasoning_tokens=counts.reasoning,
            final_tokens=counts.final,
            other_tokens=counts.other,
            time_to_first_token=None if seq.first_token_at is None else seq.first_token_at - started,
            time_to_first_final_token=None if seq.first_final_at is None else seq.first_final_at - started,
            prefill_seconds=seq.prefill_seconds,
            decode_tokens_per_s=seq.decoded / seq.decode_seconds if seq.decoded and seq.decode_seconds > 0 else 0.0,
            error=seq.error,
            completion_ids=seq.parser.completion_ids,
            messages=seq.parser.messages,
            malformed=seq.parser.malformed,
        )
