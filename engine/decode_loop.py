"""The one generation loop: 1 to N sequences, each in its own KV-cache slot, one decode call per step.

:class:`~engine.generator.Generator` runs it with one sequence (and prefix reuse in its prefill);
:class:`~engine.batch_generator.BatchGenerator` with a fixed batch of several;
:class:`~engine.continuous_batcher.ContinuousBatcher` with a batch that sequences join (``admit``) and leave
(``cancel_requested``) between steps. All three therefore share the per-sequence state (:class:`SequenceState`), the
request checks (:func:`validate_prompt`), the stop rule (:func:`stop_reason`), the cancel and error handling of
:func:`decode_steps`, the model lock around each forward call, and the :class:`~engine.events.Done` builder
(:func:`build_done`).
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

from gpt_oss_desktop.engine.channel_guard import ChannelGuard
from gpt_oss_desktop.engine.errors import GenerationError
from gpt_oss_desktop.engine.events import Delta, Done, Event, FinishReason
from gpt_oss_desktop.engine.model_lock import model_lock
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
    guard: ChannelGuard | None = None  # params.must_call / reasoning_budget at work; set at prefill
    produced: int = 0
    last_token: int = -1
    reused_prompt_tokens: int = 0
    prefill_calls: int = 0  # prefill calls made for it so far (more than one: its prompt went in chunks)
    prefill_seconds: float = 0.0
    first_token_at: float | None = None
    first_final_at: float | None = None
    decode_seconds: float = 0.0  # decode steps it took part in + its own sampling, for tokens after the first
    decoded: int = 0  # tokens produced by decode steps (all but the first)
    finish_reason: FinishReason | None = None  # None while running
    error: BaseException | None = None
    # Set from any thread to end this sequence alone before the loop's next step (a continuous batch's cancel).
    cancel_requested: bool = False

    @property
    def running(self) -> bool:
        return self.finish_reason is None

    @property
    def prefilled(self) -> bool:
        """Its whole prompt is in the cache and its first token sampled: it takes part in decode steps."""
        return self.first_token_at is not None

    @property
    def decode_tokens_per_s(self) -> float:
        return self.decoded / self.decode_seconds if self.decoded and self.decode_seconds > 0 else 0.0


Step = tuple[SequenceState, int | None]
"""A sequence and the token it just sampled, or None when it ended without one (cancelled, or the model failed).
After the last step of a sequence, ``finish_reason`` is set."""

Prefill = Callable[[SequenceState], torch.Tensor | None]
"""Prefills a sequence's prompt into its slot and returns the last position's logits ``[V]``; or prefills only the
next chunk of it and returns None, to be called again after the next decode step (``seq.prefill_calls`` counts the
calls, this one included)."""


def validate_prompt(prompt_ids: Sequence[int], vocab_size: int, capacity: int, label: str | None = None) -> list[int]:
    """The prompt as a list of ints, or :class:`GenerationError` if it cannot run: empty, ids outside the
    vocabulary, or no room left in a context of ``capacity`` tokens for even one generated token. ``label`` names
    the prompt in the message when there are several ("prompt 2")."""
    name = label or "the prompt"
    prompt = [int(t) for t in prompt_ids]
    if not prompt:
        raise GenerationError(f"{name} is empty")
    bad = [t for t in prompt if not 0 <= t < vocab_size]
    if bad:
        where = f"{label}: " if label else ""
        raise GenerationError(f"{where}token id(s) {bad[:5]} outside the vocabulary [0, {vocab_size})")
    if len(prompt) >= capacity:
        raise GenerationError(
            f"{name} has {len(prompt)} tokens but the context holds {capacity}; shorten the conversation"
        )
    return prompt


def stop_reason(seq: SequenceState, token: int, cache: Any) -> FinishReason | None:
    """Why ``seq`` ends after sampling ``token`` (a stop token, max_tokens, a full context), or None to go on."""
    if token in seq.params.stop_tokens:
        return FinishReason.STOP
    if seq.produced >= seq.params.max_tokens or cache.length(seq.slot) + 1 > cache.capacity:
        return FinishReason.LENGTH
    return None


Admit = Callable[[], list[SequenceState]]
"""Called by the loop before every step: sequences to join the batch now (each in a free slot of the cache), or []."""


def decode_steps(
    model: Any,
    cache: Any,
    sequences: list[SequenceState],
    prefill: Prefill,
    cancel: threading.Event | None,
    admit: Admit | None = None,
) -> PyGenerator[Step, None, None]:
    """Prefill each sequence (streaming its first token at once), then advance every running one by one token per
    ``model.decode`` call until each has stopped; yields a :data:`Step` per sampled token. A prefill that takes the
    prompt in chunks (returning None) gets one call per loop iteration, so the others' decode steps go on between
    its chunks.

    With ``admit`` the batch is continuous: before every step the loop asks it for sequences to join, prefills them
    and includes them in that step (the loop ends when nothing runs and nothing is admitted). A sequence whose
    ``cancel_requested`` is set leaves before the next step with ``FinishReason.CANCELLED``, the others go on.

    A model exception is logged and ends every unfinished sequence with ``FinishReason.ERROR`` (never raised); a set
    ``cancel`` ends them with ``FinishReason.CANCELLED``. Either way each gets a last step with token None.

    Each forward call holds the model's lock (engine/model_lock.py), so loops in other threads over the same model
    interleave with this one call by call.
    """
    lock = model_lock(model)
    pending = list(sequences)  # admitted, not (wholly) prefilled yet
    running: list[SequenceState] = []  # every admitted sequence that has not ended, prefilled or still in chunks

    def cancelled() -> bool:
        return cancel is not None and cancel.is_set()

    try:
        while not cancelled():
            # Cancelled sequences leave first, so that the admissions right after can take their slots.
            yield from _end_cancel_requested(running)
            if admit is not None:
                pending += admit()
            unfinished: list[SequenceState] = []  # prefilled a chunk this iteration, more to come
            while pending and not cancelled():
                seq = pending.pop(0)
                if not seq.running:  # cancelled between two of its chunks (ended above)
                    continue
                if seq.prefill_calls == 0:
                    running.append(seq)
                    if seq.cancel_requested:  # cancelled before its prefill: it ends with no token
                        seq.finish_reason = FinishReason.CANCELLED
                        yield seq, None
                        continue
                    seq.rng = make_generator(seq.params.seed, model.device)
                    seq.guard = guard_for(seq.params)
                seq.prefill_calls += 1
                prefill_started = time.perf_counter()
                with lock, torch.inference_mode():
                    logits = prefill(seq)
                seq.prefill_seconds += time.perf_counter() - prefill_started
                if logits is None:
                    unfinished.append(seq)
                    continue
                yield seq, _take(seq, logits, cache)
            pending = unfinished + pending  # (pending is non-empty only when cancelled)
            if cancelled():
                break
            yield from _end_cancel_requested(running)  # (those cancelled during the prefills above)
            running = [seq for seq in running if seq.running]
            active = [seq for seq in running if seq.prefilled]
            if not active:
                if pending:  # only chunked prefills to go on with
                    continue
                if admit is None:
                    return
                pending += admit()
                if not pending:
                    return
                continue
            step_started = time.perf_counter()
            with lock, torch.inference_mode():
                # One decode call for every running sequence: [len(active), V] logits, row r for active[r].
                logits = model.decode([seq.last_token for seq in active], cache, [seq.slot for seq in active])
            step_seconds = time.perf_counter() - step_started
            for row, seq in enumerate(active):
                seq.decode_seconds += step_seconds
                yield seq, _take(seq, logits[row], cache)
    except Exception as exc:  # the model failed: every unfinished sequence reports it; the caller stays usable
        logger.exception("generation failed")
        yield from end_running([*running, *pending], FinishReason.ERROR, exc)
        return
    yield from end_running([*running, *pending], FinishReason.CANCELLED, None)


def _end_cancel_requested(sequences: Sequence[SequenceState]) -> Iterator[Step]:
    """End every running sequence whose cancel was requested: one last step, token None, for each."""
    for seq in sequences:
        if seq.running and seq.cancel_requested:
            seq.finish_reason = FinishReason.CANCELLED
            yield seq, None


def end_running(
    sequences: Sequence[SequenceState], reason: FinishReason, error: BaseException | None
) -> Iterator[Step]:
    """End every still-running sequence with ``reason`` (and ``error``): one last step, token None, for each."""
    for seq in sequences:
        if seq.running:
            seq.finish_reason, seq.error = reason, error
            yield seq, None


def guard_for(params: SamplingParams) -> ChannelGuard | None:
    """The channel guard ``params`` asks for, or None when they leave the channels free."""
    answer = params.response_format
    if params.must_call is None and params.reasoning_budget is None and not params.json_calls and answer is None:
        return None
    return ChannelGuard(
        must_call=params.must_call,
        reasoning_budget=params.reasoning_budget,
        json_calls=params.json_calls,
        call_schemas=params.call_schemas,
        answer_schema=answer.node if answer is not None else None,
    )


def _take(seq: SequenceState, logits: torch.Tensor, cache: Any) -> int:
    """Sample ``seq``'s next token from its ``logits`` ``[V]``, count it, and apply the stop rule."""
    sample_started = time.perf_counter()
    with torch.inference_mode():
        if seq.guard is not None:
            logits = seq.guard.mask(logits)
        token = int(sample(logits, seq.params, seq.rng))
    if seq.guard is not None:
        seq.guard.advance(token)
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
        reasoning_cut=seq.guard is not None and seq.guard.reasoning_cut,
    )
