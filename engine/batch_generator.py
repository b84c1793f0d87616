"""Several generations at once as one batch: each sequence in its own KV-cache slot, one decode call per step.

:class:`BatchGenerator` runs N requests (an effort comparison runs three) together. Each sequence is prefilled
into its own slot of one :class:`~engine.kv_cache.KVCache` (own positions, own cache), then every still-running
sequence advances by one token per :meth:`engine.model.Model.decode` call, so the weights are read once per step
for all of them instead of once per sequence. Each sequence has its own sampler, harmony parser and stop rules and
leaves the batch when it finishes; one cancel event stops them all.

Events are ``(index, event)`` pairs: the index of the request in the batch, and a :class:`~engine.events.Delta`,
a :class:`~engine.events.ToolCall` or the sequence's single :class:`~engine.events.Done`. Every index gets exactly
one Done.

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
from typing import TYPE_CHECKING, Any

import torch

from gpt_oss_desktop.engine.decode_loop import (
    SequenceState,
    SlotEvent,
    Step,
    decode_steps,
    end_running,
    harmony_events,
    validate_prompt,
)
from gpt_oss_desktop.engine.errors import GenerationError
from gpt_oss_desktop.engine.events import FinishReason
from gpt_oss_desktop.engine.generator import ModelLike
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.stream_parser import HarmonyStreamParser

if TYPE_CHECKING:
    from openai_harmony import HarmonyEncoding

logger = logging.getLogger(__name__)

BatchEvent = SlotEvent
"""``(index of the request in the batch, event)``: request i runs in slot i."""


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

        ``params[i]`` applies to ``prompts[i]``. Yields ``(i, Delta)`` as text arrives, ``(i, ToolCall)`` when a call
        closes, and exactly one ``(i, Done)`` per sequence, in the order the sequences finish. Raises
        :class:`GenerationError` (before any work) if the batch cannot run.
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
        checked = [validate_prompt(ids, vocab, capacity, f"prompt {i}") for i, ids in enumerate(prompts)]
        return checked

    def _stream(
        self, prompts: list[list[int]], params: list[SamplingParams], cancel: threading.Event | None
    ) -> Iterator[BatchEvent]:
        started = time.perf_counter()
        # Request i is sequence i in slot i of the batch's cache.
        sequences = [
            SequenceState(i, prompt, params[i], started, HarmonyStreamParser(self._encoding))
            for i, prompt in enumerate(prompts)
        ]
        # closing(): a consumer abandoning the stream also ends the loop (and frees the lock and the cache) at once.
        with self._lock, contextlib.closing(harmony_events(self._steps(sequences, cancel))) as events:
            yield from events

    def _steps(self, sequences: list[SequenceState], cancel: threading.Event | None) -> PyGenerator[Step, None, None]:
        try:
            cache: Any = self.model.new_cache(len(sequences), self._max_context)
        except Exception as exc:  # no room for the caches: every sequence reports it, as a failure mid-run would
            logger.exception("could not allocate the batch's KV cache")
            yield from end_running(sequences, FinishReason.ERROR, exc)
            return

        def prefill(seq: SequenceState) -> torch.Tensor:
            return self.model.prefill(seq.prompt, cache, seq.slot)

        # Prefill one slot at a time (prompts differ in length); every decode step advances all running sequences.
        yield from decode_steps(self.model, cache, sequences, prefill, cancel)
