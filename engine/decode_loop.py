"""The one generation loop: 1 to N sequences, each in its own KV-cache slot, one decode call per step.

:class:`~engine.generator.Generator` runs it with one sequence (and prefix reuse in its prefill);
:class:`~engine.batch_generator.BatchGenerator` with several. Both therefore share the per-sequence state
(:class:`SequenceState`), the stop rule (:func:`stop_reason`), the cancel and error handling of :func:`decode_steps`
and the :class:`~engine.events.Done` builder (:func:`build_done`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Generator as PyGenerator
from dataclasses import dataclass
from typing import Any

import torch

from gpt_oss_desktop.engine.events import Delta, Done, Event, FinishReason
from gpt_oss_desktop.engine.sampling import SamplingParams, make_generator, sample
from gpt_oss_desktop.engine.stream_parser import HarmonyStreamParser

logger = logging.getLogger(__name__)

SlotEvent = tuple[int, Event]
"""``(cache slot of the sequence, event)``."""


@dataclass(slots=True)
class SequenceState:
    """Mutable bookkeeping of one sequence: its slot, sampler, counters and timings (published through Done)."""

    slot: int
    prompt: list[int]
    params: SamplingParams
    started: float
    parser: HarmonyStreamParser | None = None  # None: raw token ids, no harmony events
    rng: torch.Generator | None = None
    produced: int = 0
    last_token: int = -1
    reused_prompt_tokens: int = 0
    prefill_seconds: float = 0.0
    first_token_at: float | None = None
    first_final_at: float | None = None
    decode_seconds: float = 0.0  # decode steps it took part in + its own sampling, for tokens after the first
    decoded: int = 0  # tokens produced by decode steps (all but the first)
    finish_reason: FinishReason | None = None  # None while running
    error: BaseException | None = None

    @property
    def running(self) -> bool:
        return self.finish_reason is None

    @property
    def decode_tokens_per_s(self) -> float:
        return self.decoded / self.decode_seconds if self.decoded and self.decode_seconds > 0 else 0.0


Step = tuple[SequenceState, int | None]
"""A sequence and the token it just sampled, or None when it ended without one (cancelled, or the model failed).
After the last step of a sequence, ``finish_reason`` is set."""

Prefill = Callable[[SequenceState], torch.Tensor]
"""Prefills a sequence's prompt into its slot and returns the last position's logits ``[V]``."""


def stop_reason(seq: SequenceState, token: int, cache: Any) -> FinishReason | None:
    """Why ``seq`` ends after sampling ``token`` (a stop token, max_tokens, a full context), or None to go on."""
    if token in seq.params.stop_tokens:
        return FinishReason.STOP
    if seq.produced >= seq.params.max_tokens or cache.length(seq.slot) + 1 > cache.capacity:
        return FinishReason.LENGTH
    return None


def decode_steps(
    model: Any, cache: Any, sequences: list[SequenceState], prefill: Prefill, cancel: threading.Event | None
) -> PyGenerator[Step, None, None]:
    """Prefill each sequence (streaming its first token at once), then advance every running one by one token per
    ``model.decode`` call until each has stopped; yields a :data:`Step` per sampled token.

    A model exception is logged and ends every unfinished sequence with ``FinishReason.ERROR`` (never raised); a set
    ``cancel`` ends them with ``FinishReason.CANCELLED``. Either way each gets a last step with token None.
    """

    def cancelled() -> bool:
        return cancel is not None and cancel.is_set()

    try:
        for seq in sequences:
            if cancelled():
                break
            seq.rng = make_generator(seq.params.seed, model.device)
            prefill_started = time.perf_counter()
            with torch.inference_mode():
                logits = prefill(seq)
            seq.prefill_seconds = time.perf_counter() - prefill_started
            yield seq, _take(seq, logits, cache)
        while not cancelled():
            active = [seq for seq in sequences if seq.running]
            if not active:
                return
            step_started = time.perf_counter()
            with torch.inference_mode():
                # One decode call for every running sequence: [len(active), V] logits, row r for active[r].
                logits = model.decode([seq.last_token for seq in active], cache, [seq.slot for seq in active])
            step_seconds = time.perf_counter() - step_started
            for row, seq in enumerate(active):
                seq.decode_seconds += step_seconds
                yield seq, _take(seq, logits[row], cache)
    except Exception as exc:  # the model failed: every unfinished sequence reports it; the caller stays usable
        logger.exception("generation failed")
        yield from end_running(sequences, FinishReason.ERROR, exc)
        return
    yield from end_running(sequences, FinishReason.CANCELLED, None)


def end_running(
    sequences: Sequence[SequenceState], reason: FinishReason, error: BaseException | None
) -> Iterator[Step]:
    """End every still-running sequence with ``reason`` (and ``error``): one last step, token None, for each."""
    for seq in sequences:
        if seq.running:
            seq.finish_reason, seq.error = reason, error
            yield seq, None


def _take(seq: SequenceState, logits: torch.Tensor, cache: Any) -> int:
    """Sample ``seq``'s next token from its ``logits`` ``[V]``, count it, and apply the stop rule."""
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
    seq.finish_reason = stop_reason(seq, token, cache)
    return token


def harmony_events(steps: Iterator[Step]) -> PyGenerator[SlotEvent, None, None]:
    """The steps as harmony events: ``(slot, Delta)`` as text arrives, one ``(slot, Done)`` when a sequence ends.

    Every sequence must carry a parser.
    """
    for seq, token in steps:
        parser = seq.parser
        assert parser is not None, "harmony_events needs sequences with a parser"
        if token is not None:
            delta = parser.feed(token)
            if delta is not None:
                if seq.first_final_at is None and isinstance(delta, Delta) and delta.is_final:
                    seq.first_final_at = time.perf_counter()
                yield seq.slot, delta
        if not seq.running:
            yield seq.slot, build_done(seq, parser)


def build_done(seq: SequenceState, parser: HarmonyStreamParser) -> Done:
    """The :class:`Done` of a sequence that has ended (``parser`` has read all its tokens)."""
    parser.finish()
    counts = parser.counts
    return Done(
        finish_reason=seq.finish_reason if seq.finish_reason is not None else FinishReason.CANCELLED,
        prompt_tokens=len(seq.prompt),
        reused_prompt_tokens=seq.reused_prompt_tokens,
        reasoning_tokens=counts.reasoning,
        final_tokens=counts.final,
        other_tokens=counts.other,
        time_to_first_token=None if seq.first_token_at is None else seq.first_token_at - seq.started,
        time_to_first_final_token=None if seq.first_final_at is None else seq.first_final_at - seq.started,
        prefill_seconds=seq.prefill_seconds,
        decode_tokens_per_s=seq.decode_tokens_per_s,
        error=None if seq.error is None else f"{type(seq.error).__name__}: {seq.error}",
        completion_ids=parser.completion_ids,
        messages=parser.messages,
        malformed=parser.malformed,
    )
