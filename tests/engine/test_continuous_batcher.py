"""ContinuousBatcher: concurrent greedy requests equal lone Generator runs token for token, late requests join the
running batch, cancel frees a slot within one step, a conversation's next turn reuses its slot's cache, a full queue
and bad prompts are refused, a model failure ends the batch and the batcher goes on, close ends everything, and a
Generator and a batcher share one model from two threads (the model lock)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
import torch

from gpt_oss_desktop import engine
from gpt_oss_desktop.engine.checkpoint import RandomWeights, get_preset, write_checkpoint
from gpt_oss_desktop.engine.continuous_batcher import BatchRequest, ContinuousBatcher
from gpt_oss_desktop.engine.errors import GenerationError, QueueFullError
from gpt_oss_desktop.engine.events import Done, Event, FinishReason
from gpt_oss_desktop.engine.generator import Generator
from gpt_oss_desktop.engine.model import Model
from gpt_oss_desktop.engine.model_lock import model_lock
from gpt_oss_desktop.engine.sampling import SamplingParams
from tests.helpers.models import random_ids

CONTEXT = 256
WAIT = 60.0  # seconds any single wait may take before the test fails (a hang, not a slow machine)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Model:
    """The `tiny` preset written as a real checkpoint and loaded the way the app loads models (bf16)."""
    folder = tmp_path_factory.mktemp("tiny")
    config = get_preset("tiny")
    write_checkpoint(folder, config, RandomWeights(config, 7), "original", 1)
    return engine.load_model(folder)


def greedy(max_tokens: int) -> SamplingParams:
    # No stop tokens: a random-weight model would stop at random; every request runs exactly max_tokens.
    return SamplingParams(temperature=0.0, max_tokens=max_tokens, stop_tokens=frozenset())


class RecordingModel:
    """Forwards to a real model; records every prefill ``(slot, tokens, decode steps so far)`` and decode's slots,
    can hold the loop inside one decode step until the test lets it go (so what the test does then lands exactly
    between two steps, however slow the machine), and can fail on one decode step."""

    def __init__(self, model: Model, fail_on_decode: int | None = None) -> None:
        self.model = model
        self.fail_on_decode = fail_on_decode
        self.prefills: list[tuple[int, int, int]] = []
        self.decode_slots: list[list[int]] = []
        self.steps_reached: dict[int, threading.Event] = {}
        self.pauses: dict[int, threading.Event] = {}

    def reached(self, step: int) -> threading.Event:
        """An event set when decode step ``step`` starts."""
        return self.steps_reached.setdefault(step, threading.Event())

    def pause_at(self, step: int) -> tuple[threading.Event, threading.Event]:
        """``(reached, resume)``: decode step ``step`` sets ``reached``, then waits for ``resume`` before computing."""
        resume = self.pauses[step] = threading.Event()
        return self.reached(step), resume

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return self.model.device

    def new_cache(self, batch_size: int = 1, max_context: int | None = None) -> Any:
        return self.model.new_cache(batch_size, max_context)

    def prefill(self, token_ids: Sequence[int], cache: Any, slot: int = 0) -> torch.Tensor:
        self.prefills.append((slot, len(token_ids), len(self.decode_slots)))
        return self.model.prefill(token_ids, cache, slot)

    def decode(self, token_ids: Sequence[int], cache: Any, slots: Sequence[int]) -> torch.Tensor:
        step = len(self.decode_slots)
        if self.fail_on_decode is not None and step == self.fail_on_decode:
            self.fail_on_decode = None
            raise RuntimeError("simulated device failure")
        self.decode_slots.append(list(slots))
        if step in self.steps_reached:
            self.steps_reached[step].set()
        if step in self.pauses:
            assert self.pauses[step].wait(WAIT)
        return self.model.decode(token_ids, cache, slots)


def lone_run(model: Any, prompt: list[int], params: SamplingParams) -> Done:
    done = list(Generator(model, max_context=CONTEXT).stream(prompt, params))[-1]
    assert isinstance(done, Done)
    return done


def finish(request: BatchRequest) -> tuple[list[Event], Done]:
    events = list(request.events(timeout=WAIT))
    done = events[-1]
    assert isinstance(done, Done) and sum(isinstance(e, Done) for e in events) == 1
    assert request.done is done
    return events, done


def test_concurrent_greedy_requests_equal_sequential_generator_runs(tiny: Model) -> None:
    vocab = tiny.config.vocab_size
    prompts = [random_ids(n, vocab, seed=n) for n in (3, 5, 9, 11, 4, 14, 7, 20)]
    params = [greedy(m) for m in (30, 18, 25, 40, 12, 22, 35, 16)]
    expected = [lone_run(tiny, p, q).completion_ids for p, q in zip(prompts, params, strict=True)]
    recorder = RecordingModel(tiny)
    # 6 slots for 8 requests: the last ones wait, then take slots other requests held (their old tokens dropped).
    batcher = ContinuousBatcher(recorder, max_batch=6, max_context=CONTEXT)
    batcher.start()
    results: dict[int, Done] = {}
    go_late = recorder.reached(4)

    def client(index: int) -> None:
        if index >= 4:  # half the clients arrive while the first ones are mid-decode
            assert go_late.wait(WAIT)
        results[index] = finish(batcher.submit(prompts[index], params[index]))[1]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    batcher.close()
    assert sorted(results) == list(range(8))
    for index in range(8):
        assert results[index].finish_reason is FinishReason.LENGTH
        assert results[index].completion_ids == expected[index], f"request {index}"
    assert max(len(slots) for slots in recorder.decode_slots) > 1  # they really shared decode steps
    assert len({slot for slot, _, _ in recorder.prefills}) == 6 and len(recorder.prefills) == 8


def test_a_late_request_joins_the_running_batch(tiny: Model) -> None:
    vocab = tiny.config.vocab_size
    recorder = RecordingModel(tiny)
    batcher = ContinuousBatcher(recorder, max_context=CONTEXT)
    batcher.start()
    first_done_at: list[float] = []
    first = batcher.submit(
        random_ids(5, vocab, seed=1),
        greedy(200),
        on_event=lambda e: first_done_at.append(time.perf_counter()) if isinstance(e, Done) else None,
    )
    reached, resume = recorder.pause_at(5)
    assert reached.wait(WAIT)
    late_prompt = random_ids(6, vocab, seed=2)
    late = batcher.submit(late_prompt, greedy(10))
    resume.set()
    _, late_done = finish(late)
    assert first_done_at == [], "the late request finished before the first one"
    # It got its first token (and all ten) while the first request was still decoding, in shared steps.
    assert late_done.time_to_first_token is not None
    late_first_token_at = late.submitted + late_done.time_to_first_token
    deadline = time.monotonic() + WAIT
    while first.done is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first_done_at and late_first_token_at < first_done_at[0]
    assert sum(len(slots) == 2 for slots in recorder.decode_slots) == 9  # the late one's 9 decode steps
    assert late_done.completion_ids == lone_run(tiny, late_prompt, greedy(10)).completion_ids
    batcher.close()


def test_cancel_frees_the_slot_within_one_step(tiny: Model) -> None:
    vocab = tiny.config.vocab_size
    recorder = RecordingModel(tiny)
    batcher = ContinuousBatcher(recorder, max_batch=2, max_context=CONTEXT)
    long_a, long_b = (batcher.submit(random_ids(4, vocab, seed=s), greedy(200)) for s in (10, 11))
    waiting_prompt = random_ids(7, vocab, seed=12)
    queued = batcher.submit(waiting_prompt, greedy(15))
    reached, resume = recorder.pause_at(3)
    batcher.start()
    assert reached.wait(WAIT)
    assert batcher.running == 2 and batcher.waiting == 1
    steps_at_cancel = len(recorder.decode_slots)  # 4: steps 0..3, the last one under way
    long_a.cancel()
    long_a.cancel()  # idempotent
    resume.set()
    _, cancelled = finish(long_a)
    assert cancelled.finish_reason is FinishReason.CANCELLED and 0 < cancelled.completion_tokens < 200
    _, queued_done = finish(queued)
    # The queued request was prefilled into the cancelled one's slot right after the step under way at the cancel.
    slot_a = recorder.prefills[0][0]
    queued_slot, _, steps_before_prefill = recorder.prefills[2]
    assert queued_slot == slot_a
    assert steps_before_prefill == steps_at_cancel
    assert cancelled.completion_tokens == steps_at_cancel + 1  # the prefill's token and one per decode step
    assert queued_done.completion_ids == lone_run(tiny, waiting_prompt, greedy(15)).completion_ids
    long_b.cancel()
    assert finish(long_b)[1].finish_reason is FinishReason.CANCELLED
    long_a.cancel()  # safe after Done
    assert long_a.done is cancelled
    batcher.close()


def test_cancel_while_waiting_never_runs(tiny: Model) -> None:
    recorder = RecordingModel(tiny)
    batcher = ContinuousBatcher(recorder, max_context=CONTEXT)
    request = batcher.submit(random_ids(5, tiny.config.vocab_size), greedy(10))
    request.cancel()
    batcher.start()
    _, done = finish(request)
    assert done.finish_reason is FinishReason.CANCELLED and done.completion_tokens == 0
    assert recorder.prefills == [] and recorder.decode_slots == []
    batcher.close()


def test_next_turn_reuses_its_slots_cache(tiny: Model) -> None:
    vocab = tiny.config.vocab_size
    recorder = RecordingModel(tiny)
    batcher = ContinuousBatcher(recorder, max_batch=3, max_context=CONTEXT)
    batcher.start()
    turn1 = random_ids(12, vocab, seed=21)
    _, done1 = finish(batcher.submit(turn1, greedy(20)))
    assert done1.reused_prompt_tokens == 0
    # Another conversation in between takes a different slot (the least recently freed), keeping turn 1's cache.
    finish(batcher.submit(random_ids(9, vocab, seed=22), greedy(5)))
    turn2 = [*turn1, *done1.completion_ids, *random_ids(5, vocab, seed=23)]
    _, done2 = finish(batcher.submit(turn2, greedy(20)))
    # The slot holds turn 1's prompt and completion but the last token (never fed back): all of it is reused.
    assert done2.reused_prompt_tokens == len(turn1) + 20 - 1
    assert recorder.prefills[-1][:2] == (recorder.prefills[0][0], len(turn2) - done2.reused_prompt_tokens)
    assert done2.completion_ids == lone_run(tiny, turn2, greedy(20)).completion_ids
    # A next turn that rewrites the previous answer (harmony drops its reasoning) diverges inside it; the window-8
    # ring layers have overwritten that part, so the cache rewinds to the last snapshot: turn 2's prompt boundary.
    turn3 = [*turn2, *done2.completion_ids[:3], *random_ids(4, vocab, seed=24)]
    _, done3 = finish(batcher.submit(turn3, greedy(20)))
    assert done3.reused_prompt_tokens == len(turn2)
    assert done3.completion_ids == lone_run(tiny, turn3, greedy(20)).completion_ids
    batcher.close()


def test_a_full_queue_is_refused_with_retry_after(tiny: Model) -> None:
    batcher = ContinuousBatcher(tiny, max_batch=1, max_waiting=2, max_context=CONTEXT)
    prompts = [random_ids(4, tiny.config.vocab_size, seed=s) for s in range(4)]
    # The first takes the free slot at the next step; two more may wait beyond it; the fourth is refused.
    queued = [batcher.submit(p, greedy(5)) for p in prompts[:3]]
    assert batcher.waiting == 3
    with pytest.raises(QueueFullError, match="3 requests are already waiting") as refused:
        batcher.submit(prompts[3], greedy(5))
    assert refused.value.retry_after > 0
    batcher.start()
    assert all(finish(r)[1].finish_reason is FinishReason.LENGTH for r in queued)
    assert finish(batcher.submit(prompts[3], greedy(5)))[1].completion_tokens == 5  # room again
    batcher.close()


def test_bad_prompts_raise_before_any_work(tiny: Model) -> None:
    recorder = RecordingModel(tiny)
    batcher = ContinuousBatcher(recorder, max_context=16)
    assert batcher.context_length == 16
    with pytest.raises(GenerationError, match="empty"):
        batcher.submit([], greedy(5))
    with pytest.raises(GenerationError, match=r"token id\(s\) \[512\] outside the vocabulary \[0, 512\)"):
        batcher.submit([1, 512], greedy(5))
    with pytest.raises(GenerationError, match="the prompt has 16 tokens but the context holds 16"):
        batcher.submit(random_ids(16, tiny.config.vocab_size), greedy(5))
    assert batcher.waiting == 0 and recorder.prefills == []
    batcher.close()


def test_a_model_failure_ends_the_batch_and_the_batcher_goes_on(tiny: Model) -> None:
    vocab = tiny.config.vocab_size
    recorder = RecordingModel(tiny, fail_on_decode=4)
    batcher = ContinuousBatcher(recorder, max_context=CONTEXT)
    prompts = [random_ids(n, vocab, seed=n) for n in (3, 5, 7)]
    requests = [batcher.submit(p, greedy(30)) for p in prompts]
    batcher.start()
    for request in requests:
        done = finish(request)[1]
        assert done.finish_reason is FinishReason.ERROR
        assert done.error == "RuntimeError: simulated device failure"
        assert done.completion_tokens == 5  # the prefill's token and four decode steps
    # Still serving; the cache was dropped, so even the same prompt is prefilled from scratch.
    _, again = finish(batcher.submit(prompts[0], greedy(30)))
    assert again.finish_reason is FinishReason.LENGTH and again.reused_prompt_tokens == 0
    assert again.completion_ids == lone_run(tiny, prompts[0], greedy(30)).completion_ids
    batcher.close()


def test_close_ends_everything(tiny: Model) -> None:
    recorder = RecordingModel(tiny)
    batcher = ContinuousBatcher(recorder, max_batch=2, max_context=CONTEXT)
    requests = [batcher.submit(random_ids(4, tiny.config.vocab_size, seed=s), greedy(200)) for s in range(4)]
    reached, resume = recorder.pause_at(2)
    batcher.start()
    assert reached.wait(WAIT)
    closing = threading.Thread(target=batcher.close)
    closing.start()
    while True:  # close() has begun once submit refuses; it then waits for the step under way
        try:
            batcher.submit([1, 2], greedy(5))  # queued now, cancelled by close like the others
        except QueueFullError:
            pass
        except GenerationError:
            break
        time.sleep(0.001)
    resume.set()
    closing.join(WAIT)
    dones = [request.done for request in requests]
    assert all(d is not None and d.finish_reason is FinishReason.CANCELLED for d in dones)
    # The two running ones got the prefill's token and steps 0, 1 and 2 (under way at the close); the rest nothing.
    assert [d.completion_tokens for d in dones if d is not None] == [4, 4, 0, 0]
    assert batcher.running == 0 and batcher.waiting == 0
    thread = batcher._thread
    assert thread is not None and not thread.is_alive()
    with pytest.raises(GenerationError, match="closed"):
        batcher.submit([1, 2], greedy(5))
    batcher.close()  # idempotent


class SerialCheckModel(RecordingModel):
    """Fails the test's check if two forward calls ever overlap (each call lingers a little to give them a chance)."""

    def __init__(self, model: Model) -> None:
        super().__init__(model)
        self._guard = threading.Lock()
        self.in_flight = 0
        self.most_in_flight = 0

    def _enter(self) -> None:
        with self._guard:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(0.002)

    def _exit(self) -> None:
        with self._guard:
            self.in_flight -= 1

    def prefill(self, token_ids: Sequence[int], cache: Any, slot: int = 0) -> torch.Tensor:
        self._enter()
        try:
            return super().prefill(token_ids, cache, slot)
        finally:
            self._exit()

    def decode(self, token_ids: Sequence[int], cache: Any, slots: Sequence[int]) -> torch.Tensor:
        self._enter()
        try:
            return super().decode(token_ids, cache, slots)
        finally:
            self._exit()


def test_a_generator_and_a_batcher_share_one_model_from_two_threads(tiny: Model) -> None:
    vocab = tiny.config.vocab_size
    chat_prompts = [random_ids(n, vocab, seed=30 + n) for n in (6, 10)]
    served_prompts = [random_ids(n, vocab, seed=40 + n) for n in (5, 8, 13)]
    expected_chat = [lone_run(tiny, p, greedy(25)).completion_ids for p in chat_prompts]
    expected_served = [lone_run(tiny, p, greedy(25)).completion_ids for p in served_prompts]
    shared = SerialCheckModel(tiny)
    chat = Generator(shared, max_context=CONTEXT)
    batcher = ContinuousBatcher(shared, max_context=CONTEXT)
    batcher.start()
    chat_results: list[tuple[int, ...]] = []

    def app_chat() -> None:
        for prompt in chat_prompts:
            done = list(chat.stream(prompt, greedy(25)))[-1]
            assert isinstance(done, Done)
            chat_results.append(done.completion_ids)

    chat_thread = threading.Thread(target=app_chat)
    chat_thread.start()
    served = [finish(r)[1].completion_ids for r in [batcher.submit(p, greedy(25)) for p in served_prompts]]
    chat_thread.join(WAIT)
    batcher.close()
    assert chat_results == expected_chat
    assert served == expected_served
    assert shared.most_in_flight == 1, "two forward calls ran at once"
    assert model_lock(shared) is model_lock(shared) and model_lock(shared) is not model_lock(tiny)


def test_a_full_batch_decodes_every_row_as_it_would_alone(tiny: Model) -> None:
    # What makes batched greedy tokens equal lone ones, at the batcher's default 8 slots: every projection of a
    # decode step (qkv, out, router, unembedding) and the MoE compute each row independently of the others.
    prompts = [random_ids(3 + i, tiny.config.vocab_size, seed=50 + i) for i in range(8)]
    batch = tiny.new_cache(8, CONTEXT)
    alone = [tiny.new_cache(1, CONTEXT) for _ in prompts]
    batch_tokens = [int(torch.argmax(tiny.prefill(p, batch, slot))) for slot, p in enumerate(prompts)]
    alone_tokens = [int(torch.argmax(tiny.prefill(p, alone[i], 0))) for i, p in enumerate(prompts)]
    assert batch_tokens == alone_tokens
    for _ in range(3):
        logits = tiny.decode(batch_tokens, batch, list(range(8)))  # [8, V]
        for row, cache in enumerate(alone):
            assert torch.equal(logits[row], tiny.decode([alone_tokens[row]], cache, [0])[0]), f"row {row}"
        batch_tokens = alone_tokens = [int(t) for t in torch.argmax(logits, dim=-1)]


def test_close_before_start_cancels_the_queue(tiny: Model) -> None:
    batcher = ContinuousBatcher(tiny, max_context=CONTEXT)
    seen: list[Event] = []
    request = batcher.submit(random_ids(4, tiny.config.vocab_size), greedy(5), on_event=seen.append)
    with pytest.raises(RuntimeError, match="on_event"):
        request.events()
    batcher.close()
    assert len(seen) == 1 and seen[0] is request.done
    assert isinstance(seen[0], Done) and seen[0].finish_reason is FinishReason.CANCELLED
    with pytest.raises(GenerationError, match="closed"):
        batcher.start()


def test_a_long_prompt_arriving_mid_stream_is_prefilled_in_chunks_between_decode_steps(tiny: Model) -> None:
    vocab = tiny.config.vocab_size
    recorder = RecordingModel(tiny)
    batcher = ContinuousBatcher(recorder, max_context=CONTEXT, prefill_chunk=8)
    batcher.start()
    first = batcher.submit(random_ids(5, vocab, seed=31), greedy(60))
    reached, resume = recorder.pause_at(3)
    assert reached.wait(WAIT)
    late_prompt = random_ids(30, vocab, seed=32)
    late = batcher.submit(late_prompt, greedy(10))
    resume.set()
    _, late_done = finish(late)
    _, first_done = finish(first)
    batcher.close()
    late_slot = recorder.prefills[1][0]
    chunks = [(size, steps) for slot, size, steps in recorder.prefills[1:] if slot == late_slot]
    assert [size for size, _ in chunks] == [8, 8, 8, 6]
    # One decode step of the first request between two chunks: its stream went on while the prompt went in.
    steps = [steps for _, steps in chunks]
    assert steps == list(range(steps[0], steps[0] + 4))
    assert all(recorder.decode_slots[s] == [recorder.prefills[0][0]] for s in steps[:-1])
    assert late_done.finish_reason is FinishReason.LENGTH and late_done.completion_tokens == 10
    assert late_done.reused_prompt_tokens == 0 and late_done.prompt_tokens == 30
    assert first_done.completion_ids == lone_run(tiny, random_ids(5, vocab, seed=31), greedy(60)).completion_ids


def test_a_long_prompt_alone_is_prefilled_whole(tiny: Model) -> None:
    recorder = RecordingModel(tiny)
    batcher = ContinuousBatcher(recorder, max_context=CONTEXT, prefill_chunk=8)
    batcher.start()
    prompt = random_ids(30, tiny.config.vocab_size, seed=33)
    _, done = finish(batcher.submit(prompt, greedy(5)))
    batcher.close()
    assert [size for _, size, _ in recorder.prefills] == [30]
    assert done.completion_ids == lone_run(tiny, prompt, greedy(5)).completion_ids


def test_a_request_cancelled_between_its_chunks_ends_and_frees_its_slot(tiny: Model) -> None:
    vocab = tiny.config.vocab_size
    recorder = RecordingModel(tiny)
    batcher = ContinuousBatcher(recorder, max_batch=2, max_context=CONTEXT, prefill_chunk=8)
    batcher.start()
    first = batcher.submit(random_ids(5, vocab, seed=34), greedy(80))
    reached, resume = recorder.pause_at(2)
    assert reached.wait(WAIT)
    late = batcher.submit(random_ids(40, vocab, seed=35), greedy(10))
    chunk_reached, chunk_resume = recorder.pause_at(4)  # the late prompt's first chunks go in around steps 2-4
    resume.set()
    assert chunk_reached.wait(WAIT)
    late.cancel()
    chunk_resume.set()
    _, late_done = finish(late)
    assert late_done.finish_reason is FinishReason.CANCELLED and late_done.completion_tokens == 0
    late_slot = recorder.prefills[1][0]
    assert 1 <= sum(slot == late_slot for slot, _, _ in recorder.prefills) < 5  # not every chunk of 40 went in
    # Its slot is free again: a third request gets it while the first still runs.
    third_prompt = random_ids(4, vocab, seed=36)
    _, third_done = finish(batcher.submit(third_prompt, greedy(6)))
    assert first.done is None
    assert third_done.completion_ids == lone_run(tiny, third_prompt, greedy(6)).completion_ids
    first.cancel()
    finish(first)
    batcher.close()


def test_prefill_chunk_must_be_positive(tiny: Model) -> None:
    with pytest.raises(ValueError, match="prefill_chunk"):
        ContinuousBatcher(tiny, prefill_chunk=0)
