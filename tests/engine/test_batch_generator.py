"""BatchGenerator: batched greedy/seeded generation equals single-sequence generation token for token (a tiny random
checkpoint and the shipped demo model, ragged prompts), one decode call per step for all running sequences, each
sequence stopping on its own, cancel, model errors and bad requests."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import pytest
import torch

from gpt_oss_desktop import engine
from gpt_oss_desktop.engine.batch_generator import BatchEvent, BatchGenerator
from gpt_oss_desktop.engine.checkpoint import RandomWeights, get_preset, write_checkpoint
from gpt_oss_desktop.engine.errors import GenerationError
from gpt_oss_desktop.engine.events import Delta, Done, FinishReason
from gpt_oss_desktop.engine.generator import Generator
from gpt_oss_desktop.engine.harmony import ChatMessage, ReasoningEffort, render_prompt
from gpt_oss_desktop.engine.model import Model
from gpt_oss_desktop.engine.paths import DATA_DIR_ENV
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.vocab import RETURN
from tests.helpers.models import random_ids

CONTEXT = 256
GREEDY = SamplingParams(temperature=0.0, max_tokens=40)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Model:
    """The `tiny` preset written as a real checkpoint and loaded the way the app loads models (bf16)."""
    folder = tmp_path_factory.mktemp("tiny")
    config = get_preset("tiny")
    write_checkpoint(folder, config, RandomWeights(config, 7), "original", 1)
    return engine.load_model(folder)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Model:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(DATA_DIR_ENV, str(tmp_path_factory.mktemp("user-data")))
        return engine.load_model("demo")


class RecordingModel:
    """Forwards to a real model and records the slots of every decode call (optionally failing on one)."""

    def __init__(self, model: Model, fail_on_decode: int | None = None) -> None:
        self.model = model
        self.decode_slots: list[list[int]] = []
        self.fail_on_decode = fail_on_decode

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return self.model.device

    def new_cache(self, batch_size: int = 1, max_context: int | None = None) -> Any:
        return self.model.new_cache(batch_size, max_context)

    def prefill(self, token_ids: Sequence[int], cache: Any, slot: int = 0) -> torch.Tensor:
        return self.model.prefill(token_ids, cache, slot)

    def decode(self, token_ids: Sequence[int], cache: Any, slots: Sequence[int]) -> torch.Tensor:
        if self.fail_on_decode is not None and len(self.decode_slots) == self.fail_on_decode:
            raise RuntimeError("simulated device failure")
        self.decode_slots.append(list(slots))
        return self.model.decode(token_ids, cache, slots)


def single_run(model: Any, prompt: list[int], params: SamplingParams) -> Done:
    events = list(Generator(model, max_context=CONTEXT).stream(prompt, params))
    done = events[-1]
    assert isinstance(done, Done)
    return done


def batched_run(
    model: Any, prompts: list[list[int]], params: list[SamplingParams], cancel: threading.Event | None = None
) -> tuple[list[BatchEvent], dict[int, Done]]:
    events = list(BatchGenerator(model, max_context=CONTEXT).stream(prompts, params, cancel))
    dones = {index: event for index, event in events if isinstance(event, Done)}
    assert sorted(dones) == list(range(len(prompts))), "every sequence ends with exactly one Done"
    assert sum(isinstance(event, Done) for _, event in events) == len(prompts)
    return events, dones


def demo_prompts() -> list[list[int]]:
    # Ragged prompts (74, 85 and 75 tokens) at the three efforts, which the demo answers after 16, 0 and 100 tokens
    # of reasoning: the sequences sit at different positions and leave the batch at different steps.
    question = ChatMessage.user("What is 17 + 25?")
    return [
        render_prompt([ChatMessage.user("Convert 3 km to meters.")], effort=ReasoningEffort.LOW),
        render_prompt([question], effort=ReasoningEffort.MEDIUM, instructions="Be brief."),
        render_prompt([question], effort=ReasoningEffort.HIGH),
    ]


def test_greedy_batch_equals_single_runs_on_tiny_checkpoint(tiny: Model) -> None:
    vocab = tiny.config.vocab_size
    # Prompt lengths on both sides of the 8-token window; different max_tokens so sequences leave the batch apart.
    prompts = [random_ids(n, vocab, seed=n) for n in (3, 11, 29)]
    params = [SamplingParams(temperature=0.0, max_tokens=m) for m in (25, 40, 33)]
    recorder = RecordingModel(tiny)
    events, dones = batched_run(recorder, prompts, params)
    for index, (prompt, p) in enumerate(zip(prompts, params, strict=True)):
        single = single_run(tiny, prompt, p)
        assert dones[index].completion_ids == single.completion_ids, f"sequence {index}"
        assert dones[index].finish_reason is FinishReason.LENGTH and dones[index].completion_tokens == p.max_tokens
        batched_text = "".join(e.text for i, e in events if i == index and isinstance(e, Delta))
        single_events = Generator(tiny, max_context=CONTEXT).stream(prompt, p)
        assert batched_text == "".join(e.text for e in single_events if isinstance(e, Delta))
    # One batch: every decode step serves all still-running sequences; each leaves after its last token.
    sizes = [len(slots) for slots in recorder.decode_slots]
    assert sizes == [3] * 24 + [2] * 8 + [1] * 7
    assert recorder.decode_slots[24] == [1, 2] and recorder.decode_slots[-1] == [1]


def test_seeded_sampling_batch_equals_single_runs(tiny: Model) -> None:
    vocab = tiny.config.vocab_size
    prompts = [random_ids(n, vocab, seed=100 + n) for n in (6, 9, 14)]
    params = [SamplingParams(temperature=1.0, top_p=0.9, seed=s, max_tokens=30) for s in (1, 2, 3)]
    _, dones = batched_run(tiny, prompts, params)
    for index, (prompt, p) in enumerate(zip(prompts, params, strict=True)):
        assert dones[index].completion_ids == single_run(tiny, prompt, p).completion_ids


def test_greedy_batch_equals_single_runs_on_demo_model(demo: Model) -> None:
    prompts = demo_prompts()
    assert len({len(p) for p in prompts}) == 3
    params = [SamplingParams(temperature=0.0, max_tokens=200)] * 3
    recorder = RecordingModel(demo)
    events, dones = batched_run(recorder, prompts, params)
    for index, prompt in enumerate(prompts):
        assert dones[index].completion_ids == single_run(demo, prompt, params[index]).completion_ids
    # The demo stops on <|return|>, each sequence at its own length (the shortest leaves first); high effort
    # thinks most and finishes last.
    assert all(d.finish_reason is FinishReason.STOP and d.completion_ids[-1] == RETURN for d in dones.values())
    assert dones[0].reasoning_tokens < dones[2].reasoning_tokens
    finish_order = [index for index, event in events if isinstance(event, Done)]
    assert finish_order == sorted(dones, key=lambda i: len(dones[i].completion_ids)) and finish_order[-1] == 2
    assert len(recorder.decode_slots[0]) == 3 and len(recorder.decode_slots[-1]) == 1
    assert dones[0].final_tokens > 0 and dones[0].time_to_first_final_token is not None


def test_cancel_stops_every_sequence(demo: Model) -> None:
    cancel = threading.Event()
    recorder = RecordingModel(demo)
    events: list[BatchEvent] = []
    params = [SamplingParams(temperature=0.0, max_tokens=200)] * 3
    for index, event in BatchGenerator(recorder, max_context=CONTEXT).stream(demo_prompts(), params, cancel):
        events.append((index, event))
        if len(events) == 10:
            cancel.set()
            steps_when_cancelled = len(recorder.decode_slots)
    dones = [event for _, event in events if isinstance(event, Done)]
    assert len(dones) == 3 and all(d.finish_reason is FinishReason.CANCELLED for d in dones)
    assert len(recorder.decode_slots) == steps_when_cancelled  # no decode step after the cancel
    assert all(d.completion_tokens >= 1 for d in dones)


def test_cancel_before_start_produces_nothing(tiny: Model) -> None:
    cancel = threading.Event()
    cancel.set()
    recorder = RecordingModel(tiny)
    prompts = [random_ids(4, tiny.config.vocab_size, seed=s) for s in range(3)]
    _, dones = batched_run(recorder, prompts, [GREEDY] * 3, cancel)
    assert all(d.finish_reason is FinishReason.CANCELLED and d.completion_tokens == 0 for d in dones.values())
    assert recorder.decode_slots == []


def test_model_failure_ends_every_unfinished_sequence(tiny: Model) -> None:
    vocab = tiny.config.vocab_size
    prompts = [random_ids(n, vocab, seed=n) for n in (3, 5, 7)]
    params = [SamplingParams(temperature=0.0, max_tokens=m) for m in (2, 30, 30)]
    recorder = RecordingModel(tiny, fail_on_decode=4)
    _, dones = batched_run(recorder, prompts, params)
    assert dones[0].finish_reason is FinishReason.LENGTH and dones[0].error is None
    for index in (1, 2):
        assert dones[index].finish_reason is FinishReason.ERROR
        assert dones[index].error == "RuntimeError: simulated device failure"
        assert dones[index].completion_tokens == 5  # the prefill's token and four decode steps
    # The generator stays usable.
    _, again = batched_run(tiny, prompts, params)
    assert again[1].finish_reason is FinishReason.LENGTH


def test_bad_batches_raise_before_any_work(tiny: Model) -> None:
    batch = BatchGenerator(tiny, max_context=16)
    ok = random_ids(4, tiny.config.vocab_size)
    with pytest.raises(GenerationError, match="at least one prompt"):
        batch.stream([], [])
    with pytest.raises(GenerationError, match="2 sampling settings for 3 prompts"):
        batch.stream([ok, ok, ok], [GREEDY, GREEDY])
    with pytest.raises(GenerationError, match="prompt 1 is empty"):
        batch.stream([ok, []], [GREEDY, GREEDY])
    with pytest.raises(GenerationError, match="prompt 0: token id"):
        batch.stream([[tiny.config.vocab_size]], [GREEDY])
    with pytest.raises(GenerationError, match="prompt 2 has 16 tokens but the context holds 16"):
        batch.stream([ok, ok, random_ids(16, tiny.config.vocab_size)], [GREEDY] * 3)


def test_context_limit_ends_a_sequence_like_a_single_run(tiny: Model) -> None:
    prompts = [random_ids(n, tiny.config.vocab_size, seed=n) for n in (10, 4)]
    params = [SamplingParams(temperature=0.0, max_tokens=100)] * 2
    batch = BatchGenerator(tiny, max_context=16)
    dones = {i: e for i, e in batch.stream(prompts, params) if isinstance(e, Done)}
    for index, prompt in enumerate(prompts):
        single = list(Generator(tiny, max_context=16).stream(prompt, params[index]))[-1]
        assert isinstance(single, Done)
        assert dones[index].finish_reason is FinishReason.LENGTH
        assert dones[index].completion_ids == single.completion_ids
        assert dones[index].prompt_tokens + dones[index].completion_tokens == 16 + 1  # the last token is not cached
