"""Generator: stop/length/cancel/error handling, prefix reuse, timings; then the real tiny model end to end."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from openai_harmony import HarmonyEncoding

from gpt_oss_desktop.engine.errors import GenerationError
from gpt_oss_desktop.engine.events import Delta, Done, FinishReason, ToolCall
from gpt_oss_desktop.engine.generator import Generator
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.vocab import CALL, CHANNEL, CONSTRAIN, END, MESSAGE, RETURN, START, get_encoding

ASSISTANT, ANALYSIS, FINAL = 173781, 35644, 17196
VOCAB = 201088
FILLER = 1000  # what the fake model emits once its script is exhausted


# --------------------------------------------------------------------------------------------------------------
# TEST DOUBLES: a fake KV cache and a fake model that "generates" a scripted token sequence through its logits.
# They implement only the engine.model.Model / engine.kv_cache.KVCache API the generator uses.
# --------------------------------------------------------------------------------------------------------------


class FakeCache:
    """Test double of KVCache: remembers token ids only. ``max_keep`` simulates ring layers that cannot rewind."""

    def __init__(self, capacity: int, max_keep: int | None = None) -> None:
        self.capacity = capacity
        self.max_keep = max_keep
        self._tokens: list[int] = []

    def length(self, slot: int) -> int:
        return len(self._tokens)

    def tokens(self, slot: int) -> list[int]:
        return list(self._tokens)

    def truncate(self, slot: int, n: int) -> int:
        kept = max(0, min(n, len(self._tokens)))
        if self.max_keep is not None and kept < len(self._tokens):
            kept = min(kept, self.max_keep)
        del self._tokens[kept:]
        return kept

    def append(self, ids: Sequence[int]) -> None:
        if len(self._tokens) + len(ids) > self.capacity:
            raise AssertionError("fake cache overflow: the generator must not exceed capacity")
        self._tokens.extend(ids)


class FakeModel:
    """Test double of engine.model.Model: after each prefill it replays ``script`` one token per step (one-hot
    logits), then emits FILLER. Records every prefill's tokens; can raise on a chosen decode step."""

    def __init__(
        self,
        script: Sequence[int],
        *,
        vocab_size: int = VOCAB,
        max_context: int = 4096,
        fail_on_decode: int | None = None,
        max_keep: int | None = None,
    ) -> None:
        self.script = list(script)
        self.config = SimpleNamespace(vocab_size=vocab_size, max_context_length=max_context)
        self.device = torch.device("cpu")
        self.fail_on_decode = fail_on_decode
        self.max_keep = max_keep
        self.prefills: list[list[int]] = []
        self.decodes: list[int] = []
        self.caches: list[FakeCache] = []
        self._step = 0
        self._prompt_end = 0

    def new_cache(self, batch_size: int = 1, max_context: int | None = None) -> FakeCache:
        cache = FakeCache(max_context or self.config.max_context_length, self.max_keep)
        self.caches.append(cache)
        return cache

    def _logits(self) -> torch.Tensor:
        token = self.script[self._step] if self._step < len(self.script) else FILLER
        logits = torch.full((self.config.vocab_size,), -30.0)
        logits[token] = 30.0
        return logits

    def prefill(self, token_ids: Sequence[int], cache: FakeCache, slot: int = 0) -> torch.Tensor:
        assert len(token_ids) >= 1
        assert torch.is_inference_mode_enabled()
        cache.append(list(token_ids))
        self.prefills.append(list(token_ids))
        self._prompt_end = cache.length(0)
        self._step = 0
        return self._logits()

    def decode(self, token_ids: Sequence[int], cache: FakeCache, slots: Sequence[int]) -> torch.Tensor:
        assert list(slots) == [0] and len(token_ids) == 1
        if self.fail_on_decode is not None and len(self.decodes) == self.fail_on_decode:
            raise RuntimeError("simulated device failure")
        cache.append(list(token_ids))
        self.decodes.append(token_ids[0])
        # Position-based, so a request that reuses the last prefill's logits replays the script from the start.
        self._step = cache.length(0) - self._prompt_end
        return self._logits().unsqueeze(0)


# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def enc() -> HarmonyEncoding:
    return get_encoding()


def words(enc: HarmonyEncoding, s: str) -> list[int]:
    return enc.encode(s)


def reply(enc: HarmonyEncoding, thought: str = "Think.", answer: str = "Four.") -> list[int]:
    return [
        CHANNEL, ANALYSIS, MESSAGE, *words(enc, thought), END,
        START, ASSISTANT, CHANNEL, FINAL, MESSAGE, *words(enc, answer), RETURN,
    ]  # fmt: skip


def collect(events: object) -> tuple[list[Delta | ToolCall], Done]:
    items = list(events)  # type: ignore[call-overload]
    assert isinstance(items[-1], Done)
    assert all(isinstance(e, (Delta, ToolCall)) for e in items[:-1])
    return items[:-1], items[-1]


PROMPT = [START, 17360, MESSAGE, 100, 101, 102, END, START, 1428, MESSAGE, 200, 201, END, START, ASSISTANT]
GREEDY = SamplingParams(temperature=0)


def test_stream_reply_stops_on_return(enc: HarmonyEncoding) -> None:
    script = reply(enc)
    model = FakeModel(script)
    deltas, done = collect(Generator(model).stream(PROMPT, GREEDY))
    assert "".join(d.text for d in deltas if d.is_reasoning) == "Think."
    assert "".join(d.text for d in deltas if d.is_final) == "Four."
    assert done.finish_reason is FinishReason.STOP
    assert done.completion_ids == tuple(script)
    assert done.prompt_tokens == len(PROMPT)
    assert done.reasoning_tokens + done.final_tokens + done.other_tokens == len(script)
    assert done.final_tokens == 5 + len(words(enc, "Four.")) + 1
    assert done.error is None and done.malformed is None
    # The stop token is sampled but never fed to the model.
    assert RETURN not in model.decodes
    assert len(model.decodes) == len(script) - 1
    assert [m.channel for m in done.messages] == ["analysis", "final"]
    assert done.time_to_first_token is not None and done.time_to_first_token > 0
    assert done.time_to_first_final_token is not None
    assert done.time_to_first_final_token >= done.time_to_first_token
    assert done.decode_tokens_per_s > 0
    assert done.tool_call is None


def test_tool_call_stops_on_call(enc: HarmonyEncoding) -> None:
    header = [CHANNEL, *words(enc, "commentary to=functions.get_weather "), CONSTRAIN, *words(enc, "json"), MESSAGE]
    script = [*header, *words(enc, '{"location":"SF"}'), CALL, *words(enc, "never")]
    events, done = collect(Generator(FakeModel(script)).stream(PROMPT, GREEDY))
    assert events[-1] == ToolCall("functions.get_weather", '{"location":"SF"}', "commentary", "<|constrain|>json")
    assert done.finish_reason is FinishReason.STOP
    assert done.completion_ids[-1] == CALL
    assert done.tool_call is not None and done.tool_call.recipient == "functions.get_weather"
    assert done.time_to_first_final_token is None


def test_max_tokens_gives_length(enc: HarmonyEncoding) -> None:
    model = FakeModel(reply(enc))
    deltas, done = collect(Generator(model).stream(PROMPT, SamplingParams(temperature=0, max_tokens=5)))
    assert done.finish_reason is FinishReason.LENGTH
    assert len(done.completion_ids) == 5
    assert len(model.decodes) == 4  # the last sampled token is not fed
    assert "".join(d.text for d in deltas) == enc.decode(list(done.completion_ids[3:5]))


def test_full_context_gives_length(enc: HarmonyEncoding) -> None:
    model = FakeModel(reply(enc), max_context=len(PROMPT) + 3)
    done = collect(Generator(model).stream(PROMPT, GREEDY))[1]
    assert done.finish_reason is FinishReason.LENGTH
    assert len(done.completion_ids) == 4  # 3 fed + the last one sampled from the full cache


def test_prompt_too_long_and_invalid_prompts_raise_before_running() -> None:
    model = FakeModel([RETURN], max_context=len(PROMPT))
    generator = Generator(model)
    with pytest.raises(GenerationError, match="context"):
        generator.stream(PROMPT, GREEDY)
    with pytest.raises(GenerationError, match="empty"):
        generator.stream([], GREEDY)
    with pytest.raises(GenerationError, match="vocabulary"):
        generator.generate_ids([1, VOCAB], GREEDY)
    assert model.prefills == []
    with pytest.raises(GenerationError, match="context"):
        Generator(FakeModel([RETURN]), max_context=4).stream(PROMPT, GREEDY)


def test_cancel_between_tokens_and_generator_reusable(enc: HarmonyEncoding) -> None:
    model = FakeModel(reply(enc, thought="one two three four five six seven eight"))
    generator = Generator(model)
    cancel = threading.Event()
    seen = 0
    done: Done | None = None
    for event in generator.stream(PROMPT, GREEDY, cancel):
        if isinstance(event, Done):
            done = event
        else:
            seen += 1
            if seen == 2:
                cancel.set()
    assert done is not None and done.finish_reason is FinishReason.CANCELLED
    assert seen == 2
    assert done.messages and done.messages[0].content[0].text == "one two"  # the partial reasoning is kept
    # Ready for the next request.
    done2 = collect(generator.stream(PROMPT, GREEDY))[1]
    assert done2.finish_reason is FinishReason.STOP


def test_cancel_set_before_start() -> None:
    cancel = threading.Event()
    cancel.set()
    model = FakeModel([RETURN])
    done = collect(Generator(model).stream(PROMPT, GREEDY, cancel))[1]
    assert done.finish_reason is FinishReason.CANCELLED
    assert done.completion_ids == ()
    assert model.prefills == []


def test_model_error_becomes_done_and_generator_recovers(enc: HarmonyEncoding) -> None:
    model = FakeModel(reply(enc), fail_on_decode=3)
    generator = Generator(model)
    done = collect(generator.stream(PROMPT, GREEDY))[1]
    assert done.finish_reason is FinishReason.ERROR
    assert done.error is not None and "simulated device failure" in done.error
    assert len(done.completion_ids) == 4
    model.fail_on_decode = None
    done2 = collect(generator.stream(PROMPT, GREEDY))[1]
    assert done2.finish_reason is FinishReason.STOP
    # The cache was cleared after the failure, so the prompt was prefilled in full again.
    assert model.prefills[-1] == PROMPT
    assert done2.reused_prompt_tokens == 0


def test_generate_ids_raises_typed_error_on_model_failure() -> None:
    model = FakeModel([5, 6, 7, 8], fail_on_decode=1)
    generator = Generator(model)
    out: list[int] = []
    with pytest.raises(GenerationError, match="simulated"):
        out.extend(generator.generate_ids(PROMPT, GREEDY))
    assert out == [5, 6]
    model.fail_on_decode = None
    assert list(generator.generate_ids(PROMPT, SamplingParams(temperature=0, max_tokens=3))) == [5, 6, 7]


def test_prefix_reuse_across_turns(enc: HarmonyEncoding) -> None:
    script = reply(enc)
    model = FakeModel(script)
    generator = Generator(model)
    done1 = collect(generator.stream(PROMPT, GREEDY))[1]
    assert done1.reused_prompt_tokens == 0
    assert generator.cached_tokens == PROMPT + script[:-1]
    # Next turn: the history as the model wrote it (minus pruned reasoning) plus a new user message.
    final_part = script[script.index(START) + 2 : -1]  # <|channel|>final<|message|>Four.
    prompt2 = [*PROMPT, *final_part, END, START, 1428, MESSAGE, 300, END, START, ASSISTANT]
    done2 = collect(generator.stream(prompt2, GREEDY))[1]
    assert done2.reused_prompt_tokens == len(PROMPT) + 1  # the prompt and the shared <|channel|>
    assert model.prefills[-1] == prompt2[len(PROMPT) + 1 :]


def test_prefix_reuse_when_cache_cannot_rewind_exactly(enc: HarmonyEncoding) -> None:
    model = FakeModel(reply(enc), max_keep=5)
    generator = Generator(model)
    collect(generator.stream(PROMPT, GREEDY))
    prompt2 = [*PROMPT[:-2], 999, START, ASSISTANT]
    done2 = collect(generator.stream(prompt2, GREEDY))[1]
    assert done2.reused_prompt_tokens == 5
    assert model.prefills[-1] == prompt2[5:]
    assert model.caches[0].tokens(0)[: len(prompt2)] == prompt2


def test_same_prompt_again_reuses_logits(enc: HarmonyEncoding) -> None:
    model = FakeModel(reply(enc))
    generator = Generator(model)
    first = collect(generator.stream(PROMPT, GREEDY))[1]
    second = collect(generator.stream(PROMPT, GREEDY))[1]
    assert len(model.prefills) == 1
    assert second.reused_prompt_tokens == len(PROMPT)
    assert second.completion_ids == first.completion_ids


def test_prompt_that_is_a_prefix_of_the_cache_prefills_one_token(enc: HarmonyEncoding) -> None:
    model = FakeModel(reply(enc))
    generator = Generator(model)
    collect(generator.stream(PROMPT, GREEDY))
    shorter = [*PROMPT[:-3], START, ASSISTANT]  # diverges; then an exact prefix of the cached tokens
    collect(generator.stream(shorter, GREEDY))
    prefix = generator.cached_tokens[:8]
    done = collect(generator.stream(prefix, GREEDY))[1]
    assert model.prefills[-1] == prefix[-1:]
    assert done.reused_prompt_tokens == 7


def test_seeded_sampling_is_reproducible() -> None:
    class NoisyModel(FakeModel):
        """Test double: flat logits, so sampling decides every token."""

        def _logits(self) -> torch.Tensor:
            return torch.zeros(self.config.vocab_size)

    params = SamplingParams(temperature=1.0, seed=42, max_tokens=20, stop_tokens=frozenset())
    a = list(Generator(NoisyModel([], vocab_size=64)).generate_ids([1, 2], params))
    b = list(Generator(NoisyModel([], vocab_size=64)).generate_ids([1, 2], params))
    c = list(Generator(NoisyModel([], vocab_size=64)).generate_ids([1, 2], SamplingParams(seed=43, max_tokens=20)))
    assert a == b
    assert a != c
    assert len(set(a)) > 3


def test_malformed_output_reported_not_raised(enc: HarmonyEncoding) -> None:
    script = [*reply(enc)[:-1], END, RETURN]  # <|end|><|return|>
    done = collect(Generator(FakeModel(script)).stream(PROMPT, GREEDY))[1]
    assert done.finish_reason is FinishReason.STOP
    assert done.malformed is not None
    assert [m.channel for m in done.messages] == ["analysis", "final"]


def test_concurrent_requests_are_serialised(enc: HarmonyEncoding) -> None:
    model = FakeModel(reply(enc))
    generator = Generator(model)
    results: list[Done] = []

    def worker() -> None:
        results.append(collect(generator.stream(PROMPT, GREEDY))[1])

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.finish_reason for r in results] == [FinishReason.STOP] * 3
    assert len({r.completion_ids for r in results}) == 1


# --------------------------------------------------------------------------------------------------------------
# Integration with the real engine.model on the tiny random checkpoint.
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> object:
    from gpt_oss_desktop.engine import load_model
    from gpt_oss_desktop.engine.checkpoint import RandomWeights, get_preset, write_checkpoint

    folder: Path = tmp_path_factory.mktemp("tiny")
    config = get_preset("tiny")
    write_checkpoint(folder, config, RandomWeights(config, 0), "original", 1)
    return load_model(folder, device="cpu", dtype=torch.float32)


def is_greedy_continuation(model: object, prompt: list[int], got: list[int]) -> bool:
    """Check ``got`` against the model's cache-free full forward (an independent path), teacher-forced: the
    argmax at each position must be the next generated token. One forward instead of one per token."""
    logits = model.logits([*prompt, *got])  # type: ignore[attr-defined]
    predicted = logits[len(prompt) - 1 : len(prompt) - 1 + len(got)].argmax(-1).tolist()
    return bool(predicted == got)


def test_real_tiny_model_matches_uncached_forward(tiny_model: object) -> None:
    params = SamplingParams(temperature=0, max_tokens=8, stop_tokens=frozenset())
    generator = Generator(tiny_model, max_context=64)  # type: ignore[arg-type]
    prompt = [1, 2, 3, 4, 5]
    got = list(generator.generate_ids(prompt, params))
    assert len(got) == 8
    assert is_greedy_continuation(tiny_model, prompt, got)
    params = SamplingParams(temperature=0, max_tokens=4, stop_tokens=frozenset())
    # A second request sharing a prefix (beyond the 8-token window, so ring layers must rewind correctly).
    prompt2 = [*prompt, *got[:5], 7, 8]
    got2 = list(generator.generate_ids(prompt2, params))
    assert len(got2) == 4
    assert is_greedy_continuation(tiny_model, prompt2, got2)
    # Same prompt again: reuses the cached logits and still agrees.
    assert list(generator.generate_ids(prompt2, params)) == got2


def test_real_tiny_model_stream_reports_done(tiny_model: object) -> None:
    generator = Generator(tiny_model, max_context=64)  # type: ignore[arg-type]
    events = list(generator.stream([1, 2, 3], SamplingParams(temperature=0, max_tokens=10)))
    done = events[-1]
    assert isinstance(done, Done)
    assert done.finish_reason is FinishReason.LENGTH
    assert len(done.completion_ids) == 10
    assert done.reasoning_tokens + done.final_tokens + done.other_tokens == 10


# --------------------------------------------------------------------------------------------------------------
# CLI: `python -m gpt_oss_desktop.engine tokens` / `chat` (through engine.cli.main, in-process).
# --------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gpt_oss_desktop.engine.checkpoint import RandomWeights, get_preset, write_checkpoint

    folder: Path = tmp_path_factory.mktemp("tiny-cli")
    config = get_preset("tiny")
    write_checkpoint(folder, config, RandomWeights(config, 0), "original", 1)
    return folder


def test_tokens_cli_prints_json_ids(tiny_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from gpt_oss_desktop.engine.cli import main

    argv = ["tokens", "--model", str(tiny_dir), "--prompt-ids", "1, 2,3", "--max-tokens", "5", "--dtype", "float32"]
    assert main(argv) == 0
    ids = json.loads(capsys.readouterr().out)
    assert isinstance(ids, list) and len(ids) == 5 and all(isinstance(i, int) for i in ids)
    assert main([*argv, "--temperature", "0"]) == 0
    assert json.loads(capsys.readouterr().out) == ids  # greedy is deterministic


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--prompt-ids", "1,,x"], "--prompt-ids"),
        (["--prompt-ids", ""], "--prompt-ids"),
        (["--prompt-ids", "1,99999"], "vocabulary"),
    ],
)
def test_tokens_cli_bad_arguments(
    tiny_dir: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    from gpt_oss_desktop.engine.cli import main

    assert main(["tokens", "--model", str(tiny_dir), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_missing_model_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gpt_oss_desktop.engine.cli import main

    assert main(["tokens", "--model", str(tmp_path / "nope"), "--prompt-ids", "1"]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["chat", "--model", str(tmp_path / "nope"), "hi"]) == 2


def test_chat_cli_one_prompt(
    enc: HarmonyEncoding, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import gpt_oss_desktop.engine.cli.chat as chat

    model = FakeModel(reply(enc, thought="Adding.", answer="Four."))
    monkeypatch.setattr(chat, "load_for_cli", lambda *a: model)
    assert chat.run(_chat_args(prompt="What is 2+2?")) == 0
    out = capsys.readouterr().out
    assert "Adding." in out and "Four." in out
    assert out.index("Adding.") < out.index("Four.")
    assert "| stop]" in out and "reasoning" in out
    assert "\x1b[" not in out  # not a terminal: no ANSI codes
    assert "Reasoning: low" in enc.decode(model.prefills[0])


def test_chat_cli_interactive_keeps_history_and_reuses_cache(
    enc: HarmonyEncoding, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    import gpt_oss_desktop.engine.cli.chat as chat

    model = FakeModel(reply(enc, thought="SECRET-THOUGHT", answer="Four."))
    monkeypatch.setattr(chat, "load_for_cli", lambda *a: model)
    monkeypatch.setattr("sys.stdin", io.StringIO("What is 2+2?\nAnd 3+3?\n"))
    assert chat.run(_chat_args(prompt=None)) == 0
    out = capsys.readouterr().out
    assert out.count("| stop]") == 2
    second_prompt = enc.decode(model.caches[0].tokens(0))
    assert "What is 2+2?" in second_prompt and "And 3+3?" in second_prompt
    # Turn 1's answer is in the history, its reasoning pruned from the second prompt (though it was generated).
    history = enc.decode([t for p in model.prefills for t in p])
    assert "Four." in history
    assert len(model.prefills) == 2
    assert "SECRET-THOUGHT" not in enc.decode(model.prefills[1])
    assert "(0 cached)" in out and out.count("(0 cached)") == 1  # the second turn reused the cache


def _chat_args(prompt: str | None) -> argparse.Namespace:
    return argparse.Namespace(
        prompt=prompt,
        model=Path("unused"),
        effort="low",
        temperature=0.0,
        top_p=1.0,
        top_k=0,
        max_tokens=100,
        seed=None,
        instructions=None,
        context=None,
        dtype=None,
        device=None,
        weights="bf16",
    )


def test_inference_mode_does_not_leak_into_the_consumer(enc: HarmonyEncoding) -> None:
    for _event in Generator(FakeModel(reply(enc))).stream(PROMPT, GREEDY):
        assert not torch.is_inference_mode_enabled()
    assert not torch.is_inference_mode_enabled()
