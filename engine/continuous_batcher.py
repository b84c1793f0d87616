"""Continuous batching: requests from many threads share the decode steps of one generation loop.

A :class:`ContinuousBatcher` owns one loop thread and one KV cache of ``max_batch`` slots. Between two decode steps the
loop admits waiting requests into free slots (prefilling each and streaming its first token at once); then one
``model.decode`` advances every running sequence. A request that arrives while others run therefore joins at the next
step instead of waiting for the batch to drain, as vLLM schedules requests. The loop is
:func:`engine.decode_loop.decode_steps`, the one :class:`~engine.generator.Generator` and
:class:`~engine.batch_generator.BatchGenerator` run, here with its ``admit`` hook.

Chunked prefill: a long prompt that arrives while other requests hold slots is prefilled ``prefill_chunk`` tokens
per loop iteration, with a decode step of the others between two chunks, so a 4,000-token prompt does not freeze
every other stream for the minute or more its whole prefill takes on a CPU. Alone, a prompt goes in whole (a chunk
costs prefill speed: 256-token chunks ran at 0.85 of a whole 1,024-token prompt's speed on the `mini` preset).

Prefix reuse: a free slot keeps the tokens of the request it last served. A new request goes to the free slot whose
tokens share the longest prefix with its prompt and prefills only the rest, so the next turn of a conversation reuses
the KV cache of the previous one (``Done.reused_prompt_tokens``).

Greedy results do not depend on the company a request keeps: decode computes each row of a batch as it would compute
it alone (see engine/batch_generator.py), so a request's tokens equal those of a lone :class:`Generator` run. (A
prompt longer than ``prefill_chunk`` that arrives while others run is the exception: its chunks' attention is
blocked differently from one whole prefill, which may move its cached keys and values by rounding.)

Error policy: :meth:`ContinuousBatcher.submit` raises :class:`~engine.errors.GenerationError` for a request that cannot
run and :class:`~engine.errors.QueueFullError` when ``max_waiting`` requests already wait. A model exception mid-run
ends every running request with ``Done(finish_reason=error)``; the cache is dropped and the batcher goes on serving.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from collections.abc import Generator as PyGenerator
from typing import TYPE_CHECKING, Any

import torch

from gpt_oss_desktop.engine.decode_loop import SequenceState, Step, decode_steps, harmony_events, validate_prompt
from gpt_oss_desktop.engine.errors import GenerationError, QueueFullError
from gpt_oss_desktop.engine.events import Done, Event, FinishReason
from gpt_oss_desktop.engine.generator import ModelLike
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.stream_parser import HarmonyStreamParser

if TYPE_CHECKING:
    from openai_harmony import HarmonyEncoding

logger = logging.getLogger(__name__)

OnEvent = Callable[[Event], None]

# Tokens per prefill chunk while other requests run (see the module docstring).
DEFAULT_PREFILL_CHUNK = 256

# Starting points of the retry-after estimate until the loop has measured its own (seconds per step, tokens per
# request); updated as exponential moving averages with this weight for the newest sample.
_INITIAL_STEP_SECONDS = 0.05
_INITIAL_TOKENS_PER_REQUEST = 64.0
_EMA_WEIGHT = 0.2


class BatchRequest:
    """One submitted request: its events, its final :class:`Done`, and a way to cancel it (thread-safe)."""

    def __init__(
        self,
        request_id: int,
        prompt: list[int],
        params: SamplingParams,
        on_event: OnEvent | None,
        wake: Callable[[], None],
    ) -> None:
        self.id = request_id
        self.prompt = prompt
        self.params = params
        self.submitted = time.perf_counter()  # Done's timings count from here (time in the queue included)
        self._on_event = on_event
        self._queue: queue.SimpleQueue[Event] | None = None if on_event is not None else queue.SimpleQueue()
        self._wake = wake
        self._lock = threading.Lock()
        self._done: Done | None = None
        self._cancelled = False
        self._seq: SequenceState | None = None  # set when the loop admits it into a slot
        self._read_to_end = False

    @property
    def done(self) -> Done | None:
        """The request's last event once it has ended, else None."""
        return self._done

    def cancel(self) -> None:
        """End the request: it leaves the batch (or the queue) before the next decode step, and its stream ends with
        ``Done(finish_reason=cancelled)``. Idempotent; does nothing once it has ended."""
        with self._lock:
            if self._done is not None or self._cancelled:
                return
            self._cancelled = True
            if self._seq is not None:
                self._seq.cancel_requested = True
        self._wake()

    def events(self, timeout: float | None = None) -> Iterator[Event]:
        """The request's events as they arrive, ending after its :class:`Done` (blocking).

        Only for a request submitted without ``on_event``. Raises :class:`TimeoutError` when no event arrives within
        ``timeout`` seconds (None waits for ever).
        """
        if self._queue is None:
            raise RuntimeError("this request delivers its events to its on_event callback")
        return self._read(self._queue, timeout)

    def _read(self, events: queue.SimpleQueue[Event], timeout: float | None) -> Iterator[Event]:
        while not self._read_to_end:
            try:
                event = events.get(timeout=timeout)
            except queue.Empty:
                raise TimeoutError(f"request {self.id}: no event within {timeout} s") from None
            if isinstance(event, Done):
                self._read_to_end = True
            yield event

    # -- loop side ---------------------------------------------------------------------------------------------

    def _attach(self, seq: SequenceState) -> None:
        with self._lock:
            self._seq = seq
            seq.cancel_requested = self._cancelled

    def _deliver(self, event: Event) -> None:
        """Pass ``event`` on (called on the loop thread, or by close() when no loop ever ran)."""
        if isinstance(event, Done):
            with self._lock:
                self._done = event
        if self._queue is not None:
            self._queue.put(event)
            return
        assert self._on_event is not None
        try:
            self._on_event(event)
        except Exception:  # a consumer's bug must not stop the loop that serves every other request
            logger.exception("request %d: on_event raised; cancelling the request", self.id)
            self.cancel()

    def _end_unstarted(self, reason: FinishReason, error: BaseException | None = None) -> None:
        """Deliver the Done of a request that ends without the loop having run it (no tokens)."""
        self._deliver(
            Done(
                finish_reason=reason,
                prompt_tokens=len(self.prompt),
                error=None if error is None else f"{type(error).__name__}: {error}",
            )
        )


class ContinuousBatcher:
    """Serves requests submitted from any thread in one continuously refilled batch.

    Args:
        model: the model (shared safely with a :class:`~engine.generator.Generator` on another thread: each forward
            call holds the model's lock, engine/model_lock.py).
        max_batch: slots of the KV cache, i.e. most sequences decoded together.
        max_waiting: most requests waiting for a slot; one more raises :class:`QueueFullError`.
        max_context: tokens per sequence (prompt + completion), capped by the model's context length.
        encoding: the harmony encoding for the stream parsers (loaded on first use if None).
        prefill_chunk: most prompt tokens prefilled per loop iteration while other requests hold slots; None
            prefills every prompt whole.
    """

    def __init__(
        self,
        model: ModelLike,
        *,
        max_batch: int = 8,
        max_waiting: int = 32,
        max_context: int | None = None,
        encoding: HarmonyEncoding | None = None,
        prefill_chunk: int | None = DEFAULT_PREFILL_CHUNK,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if prefill_chunk is not None and prefill_chunk < 1:
            raise ValueError(f"prefill_chunk must be at least 1 (or None), got {prefill_chunk}")
        self.prefill_chunk = prefill_chunk
        if max_waiting < 0:
            raise ValueError(f"max_waiting must be at least 0, got {max_waiting}")
        self.model = model
        self.max_batch = max_batch
        self.max_waiting = max_waiting
        self._max_context = max_context
        self._encoding = encoding
        self._cond = threading.Condition()  # guards everything below that the loop and submitters share
        self._waiting: deque[BatchRequest] = deque()
        self._slots: list[BatchRequest | None] = [None] * max_batch  # the request each slot serves, None when free
        self._slot_freed: list[int] = [0] * max_batch  # when each slot was last freed (a counter): LRU among equals
        self._clock = itertools.count(1)
        self._ids = itertools.count(1)
        self._cache: Any = None  # allocated on the loop thread at the first request, dropped on failure and close
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stop = threading.Event()  # ends the running batch (close)
        self._failed = False  # the current loop run ended in a model error
        self._step_seconds = _INITIAL_STEP_SECONDS
        self._tokens_per_request = _INITIAL_TOKENS_PER_REQUEST
        self._last_admit: float | None = None

    # -- public API --------------------------------------------------------------------------------------------

    @property
    def context_length(self) -> int:
        """Most tokens (prompt + completion) one request can hold."""
        cache = self._cache
        if cache is not None:
            return int(cache.capacity)
        limit = self.model.config.max_context_length
        return min(self._max_context, limit) if self._max_context is not None else limit

    @property
    def running(self) -> int:
        """Requests holding a slot now (in the batch)."""
        with self._cond:
            return sum(owner is not None for owner in self._slots)

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot."""
        with self._cond:
            return len(self._waiting)

    def start(self) -> None:
        """Start the loop thread (idempotent). Requests submitted before wait until then."""
        with self._cond:
            if self._closed:
                raise GenerationError("the batcher is closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="continuous-batcher", daemon=True)
                self._thread.start()

    def close(self) -> None:
        """Cancel every request (each gets ``Done(cancelled)``), stop the loop thread and release the KV cache."""
        with self._cond:
            already = self._closed
            self._closed = True
            self._stop.set()
            thread = self._thread
            unstarted = [] if thread is not None or already else list(self._waiting)
            if thread is None:
                self._waiting.clear()
            self._cond.notify_all()
        for request in unstarted:
            request._end_unstarted(FinishReason.CANCELLED)
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._cache = None

    def submit(
        self, prompt_ids: Sequence[int], params: SamplingParams, on_event: OnEvent | None = None
    ) -> BatchRequest:
        """Queue a harmony prompt (ending in ``<|start|>assistant``) for generation.

        ``on_event`` is called on the loop thread with every event (:class:`~engine.events.Delta` s and the like,
        then exactly one :class:`Done`); without it the events queue in the request (:meth:`BatchRequest.events`).
        Raises :class:`GenerationError` (before any work) for a request that cannot run or a closed batcher, and
        :class:`QueueFullError` when every free slot is spoken for and ``max_waiting`` requests wait beyond them.
        """
        prompt = validate_prompt(prompt_ids, self.model.config.vocab_size, self.context_length)
        with self._cond:
            if self._closed:
                raise GenerationError("the batcher is closed")
            # Queued requests first fill the free slots (admitted at the next step); only beyond those do they wait.
            free = self.max_batch - sum(owner is not None for owner in self._slots)
            if len(self._waiting) >= self.max_waiting + free:
                retry_after = self._retry_after()
                raise QueueFullError(
                    f"{len(self._waiting)} requests are already waiting; retry in {retry_after:.1f} s", retry_after
                )
            request = BatchRequest(next(self._ids), prompt, params, on_event, self._wake)
            self._waiting.append(request)
            self._cond.notify_all()
        logger.debug("request %d queued: %d prompt tokens", request.id, len(prompt))
        return request

    # -- the loop thread ---------------------------------------------------------------------------------------

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._closed and not self._waiting:
                        self._cond.wait()
                    if self._closed:
                        return
                try:
                    self._serve()
                except Exception as exc:  # a bug outside the model's calls: end what runs, keep the loop alive
                    logger.exception("the batch loop failed")
                    self._end_slots(exc)
        finally:
            with self._cond:
                left = list(self._waiting)
                self._waiting.clear()
            for request in left:
                request._end_unstarted(FinishReason.CANCELLED)
            self._cache = None

    def _serve(self) -> None:
        """Run the shared loop while there is work: admitting, decoding, and delivering events."""
        try:
            cache = self._get_cache()
        except Exception as exc:  # no room for the cache: the waiting requests report it
            logger.exception("could not allocate the batch's KV cache")
            with self._cond:
                left = list(self._waiting)
                self._waiting.clear()
            for request in left:
                request._end_unstarted(FinishReason.ERROR, exc)
            return
        self._failed = False
        self._last_admit = None
        steps = decode_steps(
            self.model, cache, [], lambda seq: self._prefill(seq, cache), self._stop, admit=lambda: self._admit(cache)
        )
        with contextlib.closing(harmony_events(self._watch(steps))) as events:
            for slot, event in events:
                self._deliver(slot, event)
        if self._failed:
            # A forward that raised may have written part of a step: drop the cache, the next request allocates one.
            self._cache = None

    def _watch(self, steps: PyGenerator[Step, None, None]) -> PyGenerator[Step, None, None]:
        with contextlib.closing(steps):
            for step in steps:
                if step[0].finish_reason is FinishReason.ERROR:
                    self._failed = True
                yield step

    def _admit(self, cache: Any) -> list[SequenceState]:
        """Waiting requests for the free slots (oldest first), each in the slot that holds most of its prompt."""
        now = time.perf_counter()
        if self._last_admit is not None:  # one loop iteration: a decode step, plus any prefill in it
            self._step_seconds += _EMA_WEIGHT * (now - self._last_admit - self._step_seconds)
        self._last_admit = now
        placed: list[tuple[BatchRequest, int]] = []
        dropped: list[BatchRequest] = []
        with self._cond:
            for request in [r for r in self._waiting if r._cancelled]:
                self._waiting.remove(request)
                dropped.append(request)
            free = [slot for slot, owner in enumerate(self._slots) if owner is None]
            while self._waiting and free:
                request = self._waiting.popleft()
                slot = self._pick_slot(free, request.prompt, cache)
                free.remove(slot)
                self._slots[slot] = request
                placed.append((request, slot))
        for request in dropped:
            request._end_unstarted(FinishReason.CANCELLED)
        admitted = []
        for request, slot in placed:
            try:
                parser = HarmonyStreamParser(self._encoding)
            except Exception as exc:  # (the harmony encoding failed to load) this request fails, its slot frees
                logger.exception("request %d: no stream parser", request.id)
                with self._cond:
                    self._slots[slot] = None
                request._end_unstarted(FinishReason.ERROR, exc)
                continue
            seq = SequenceState(slot, request.prompt, request.params, request.submitted, parser)
            request._attach(seq)
            admitted.append(seq)
            logger.debug("request %d joins the batch in slot %d", request.id, slot)
        return admitted

    def _pick_slot(self, free: list[int], prompt: list[int], cache: Any) -> int:
        """The free slot sharing the longest prefix with ``prompt``; among equals, the one freed longest ago (so a
        conversation's slot survives as long as possible for its next turn)."""
        return max(free, key=lambda slot: (_common_prefix(cache.tokens(slot), prompt), -self._slot_freed[slot]))

    def _prefill(self, seq: SequenceState, cache: Any) -> torch.Tensor | None:
        """Keep the slot's prefix shared with the prompt, prefill the rest; the last position's logits ``[V]``. While
        other requests hold slots, only the next ``prefill_chunk`` tokens when more remain, returning None.

        At least one token is prefilled, because only a forward pass yields logits. The cache may keep fewer tokens
        than asked (a sliding-window ring restores only to an earlier prompt boundary, engine/kv_cache.py). A later
        chunk finds the earlier ones in the cache as a shared prefix, so the same code continues it.
        """
        slot, prompt = seq.slot, seq.prompt
        common = min(_common_prefix(cache.tokens(slot), prompt), len(prompt) - 1)
        kept = cache.truncate(slot, common)
        if seq.prefill_calls == 1:
            seq.reused_prompt_tokens = kept
            logger.debug("slot %d prefill: %d prompt tokens, %d reused from the cache", slot, len(prompt), kept)
        chunk = self.prefill_chunk
        if chunk is not None and len(prompt) - kept > chunk and self._others_hold_slots(slot):
            self.model.prefill(prompt[kept : kept + chunk], cache, slot)
            return None
        return self.model.prefill(prompt[kept:], cache, slot)

    def _others_hold_slots(self, slot: int) -> bool:
        with self._cond:
            return any(owner is not None for other, owner in enumerate(self._slots) if other != slot)

    def _deliver(self, slot: int, event: Event) -> None:
        with self._cond:
            request = self._slots[slot]
            if isinstance(event, Done):
                self._slots[slot] = None  # free for the next admission, which the loop makes before its next step
                self._slot_freed[slot] = next(self._clock)
                produced = float(event.completion_tokens)
                self._tokens_per_request += _EMA_WEIGHT * (produced - self._tokens_per_request)
        assert request is not None, f"an event for slot {slot}, which serves no request"
        request._deliver(event)

    def _end_slots(self, error: BaseException) -> None:
        """End every request holding a slot with an error (the loop failed outside the model) and drop the cache."""
        with self._cond:
            owners = [owner for owner in self._slots if owner is not None]
            self._slots = [None] * self.max_batch
        self._cache = None
        for request in owners:
            if request.done is None:
                request._end_unstarted(FinishReason.ERROR, error)

    def _get_cache(self) -> Any:
        if self._cache is None:
            self._cache = self.model.new_cache(self.max_batch, self._max_context)
        return self._cache

    def _retry_after(self) -> float:
        """Seconds until a waiting place likely frees: the steps until the next running request ends, at the
        measured step time (called under the lock)."""
        running = max(1, sum(owner is not None for owner in self._slots))
        steps = max(1.0, self._tokens_per_request / running)
        return self._step_seconds * steps


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    count = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        count += 1
    return count
