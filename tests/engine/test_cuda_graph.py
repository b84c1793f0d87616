"""CUDA-graph decode (engine/cuda_graph.py): the device-side position bookkeeping and the replay runner on CPU (with
a capture that replays the recorded step eagerly), the clean fallback, and, where CUDA exists, real graph replay
against eager decode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest
import torch

from gpt_oss_desktop.engine import cuda_graph, kv_cache
from gpt_oss_desktop.engine.cuda_graph import DecodeGraph, DevicePosition, decode_with_graph, graphs_requested
from gpt_oss_desktop.engine.model import Model
from tests.helpers.models import ORACLE_CONFIG, random_ids, random_model

VOCAB = ORACLE_CONFIG.vocab_size
WINDOW = ORACLE_CONFIG.sliding_window


class EagerReplay:
    """Stands in for a CUDA graph on CPU: ``replay`` runs the recorded step again, reading the same tensors."""

    def __init__(self, step: Callable[[], None]) -> None:
        self.step = step
        self.replays = 0

    def replay(self) -> None:
        self.replays += 1
        self.step()


def eager_capture(step: Callable[[], None], warmup: Callable[[], None], device: torch.device) -> EagerReplay:
    warmup()  # as the CUDA capture does: a warmup first (it must leave the inputs as they were)
    return EagerReplay(step)


@pytest.fixture(scope="module")
def model() -> Model:
    return random_model()


def test_graphs_default_on_cuda_only_and_the_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cuda_graph.GRAPH_ENV, raising=False)
    assert graphs_requested(torch.device("cuda")) and not graphs_requested(torch.device("cpu"))
    monkeypatch.setenv(cuda_graph.GRAPH_ENV, "0")
    assert not graphs_requested(torch.device("cuda"))
    monkeypatch.setenv(cuda_graph.GRAPH_ENV, "1")
    assert graphs_requested(torch.device("cpu"))
    monkeypatch.setenv(cuda_graph.GRAPH_ENV, "maybe")
    assert not graphs_requested(torch.device("cpu"))


def test_device_position_writes_only_when_the_host_moved() -> None:
    position = DevicePosition(torch.device("cpu"))
    with pytest.raises(RuntimeError):
        position.replayed()
    assert position.prepare(5) and int(position.tensor) == 5
    for expected in (6, 7):  # what a replay does: the device adds one, the host mirror follows without reading it
        position.advance_on_device()
        position.replayed()
        assert not position.prepare(expected)  # in step: nothing written
        assert int(position.tensor) == expected
    assert position.prepare(3) and int(position.tensor) == 3  # a truncate: re-seeded
    with pytest.raises(ValueError):
        position.prepare(-1)


def test_replayed_steps_match_eager_decode_across_window_truncate_and_growth(
    model: Model, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Full layers start at 16 rows here (256 in use) and grow (move) during decode, which must recapture; the ring
    # layers (window 8) wrap several times; a truncate in the middle re-seeds the position.
    monkeypatch.setattr(kv_cache, "_INITIAL_FULL_ALLOCATION", 16)
    prompt = random_ids(14, VOCAB, seed=3)
    follow = random_ids(6, VOCAB, seed=4)  # positions 14..19: the full layers grow at 16
    eager_cache, graph_cache = model.new_cache(1, 64), model.new_cache(1, 64)
    model.prefill(prompt, eager_cache)
    model.prefill(prompt, graph_cache)
    runner = DecodeGraph(model, graph_cache, 0, capture=eager_capture)
    full_layer = graph_cache.windows.index(0)
    storage_before = graph_cache.keys[full_layer].data_ptr()
    for token in follow:
        expected = model.decode([token], eager_cache, [0])[0]
        got = runner.step(token)
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
        assert int(runner.position.tensor) == graph_cache.length(0) == eager_cache.length(0)
    assert graph_cache.keys[full_layer].shape[1] == 32  # it did grow, once
    assert graph_cache.keys[full_layer].data_ptr() != storage_before
    assert runner.captures == 2
    assert graph_cache.tokens(0) == eager_cache.tokens(0) == prompt + follow
    # Rewind both past the window (the ring restores from the prompt's snapshot) and go on.
    assert eager_cache.truncate(0, 14) == graph_cache.truncate(0, 14) == 14
    for token in random_ids(WINDOW + 2, VOCAB, seed=5):  # the ring wraps again
        torch.testing.assert_close(runner.step(token), model.decode([token], eager_cache, [0])[0], atol=1e-5, rtol=1e-5)
    assert runner.captures == 2  # the storage did not move again: the same capture replays


def test_model_decode_uses_the_runner_and_falls_back_cleanly(model: Model, monkeypatch: pytest.MonkeyPatch) -> None:
    prompt = random_ids(10, VOCAB, seed=6)
    eager_cache, graph_cache = model.new_cache(1, 64), model.new_cache(1, 64)
    model.prefill(prompt, eager_cache)
    model.prefill(prompt, graph_cache)
    graph_cache.decode_graphs[0] = DecodeGraph(model, graph_cache, 0, capture=eager_capture)
    monkeypatch.setattr(model, "cuda_graphs", True)
    got = model.decode([7], graph_cache, [0])
    assert got.shape == (1, VOCAB) and graph_cache.decode_graphs[0].captures == 1  # type: ignore[attr-defined]
    model.cuda_graphs = False
    torch.testing.assert_close(got, model.decode([7], eager_cache, [0]), atol=1e-5, rtol=1e-5)

    def failing_capture(step: Callable[[], None], warmup: Callable[[], None], device: torch.device) -> EagerReplay:
        raise RuntimeError("operation not permitted when stream is capturing")

    # A capture that fails: the token is decoded eagerly instead, graphs go off for the model, nothing is lost.
    graph_cache.decode_graphs[0] = DecodeGraph(model, graph_cache, 0, capture=failing_capture)
    model.cuda_graphs = True
    assert decode_with_graph(model, graph_cache, 0, 9) is None
    assert not model.cuda_graphs and not graph_cache.decode_graphs
    assert graph_cache.length(0) == len(prompt) + 1  # the failed step committed nothing
    assert decode_with_graph(model, graph_cache, 0, 9) is None  # off now: not even tried
    expected = model.decode([9], eager_cache, [0])
    torch.testing.assert_close(model.decode([9], graph_cache, [0]), expected, atol=1e-5, rtol=1e-5)


def test_cpu_model_with_graphs_requested_decodes_eagerly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cuda_graph.GRAPH_ENV, "1")
    model = random_model()
    assert model.cuda_graphs
    cache = model.new_cache(1, 32)
    model.prefill(random_ids(4, VOCAB), cache)
    assert model.decode([3], cache, [0]).shape == (1, VOCAB)
    assert not model.cuda_graphs and not cache.decode_graphs  # "not CUDA": off, no runner, no error


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device: real graph capture and replay")
def test_cuda_graph_replay_matches_eager_decode_on_gpu() -> None:
    # In a child process: this test process has the Triton kernels decorated for the interpreter
    # (TRITON_INTERPRET=1), which reads tensors on the host and so cannot be captured.
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["GPTOSS_KERNELS"] = "triton"
    command = [sys.executable, "-P", "-m", "gpt_oss_desktop.engine.cuda_graph_check", "--steps", "24", "--prompt", "12"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["backend"] == "triton"
    assert report["captures"] == 1, report  # captured once, replayed for every step (no fallback)
    # The same kernels on the same inputs: replay equals eager up to bf16 rounding of nondeterministic reductions.
    assert report["max_abs_logit_diff"] <= 1e-2 * max(1.0, report["max_logit"]), report
    assert report["greedy_agreement"] == 1.0, report
