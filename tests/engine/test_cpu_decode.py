"""The one-call CPU decode (engine.cpu_decode, kernels/cpu/decode_layers.cpp) against the model's op-by-op blocks:
the same logits and the same KV cache, bit for bit, for bf16 and 8-bit weights, one sequence and a batch, across the
sliding window's wrap."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from gpt_oss_desktop.engine import ops
from gpt_oss_desktop.engine.checkpoint.synthetic import random_weights
from gpt_oss_desktop.engine.cpu_decode import CpuDecodeBlocks
from gpt_oss_desktop.engine.model import Model
from gpt_oss_desktop.engine.weights_mode import WeightsMode
from gpt_oss_desktop.kernels import cpu_build, cpu_mxfp4
from gpt_oss_desktop.kernels.q8 import Q8Weight
from tests.helpers.models import ORACLE_CONFIG, random_ids

PROMPTS = ([5, 6, 7, 8, 9], [100, 3], [300, 301, 302, 11, 12, 13, 14])  # the window is 8: decode crosses it


@pytest.fixture(autouse=True)
def fused_kernels() -> None:
    if not ops.cpu_fused_enabled():
        pytest.skip(f"the fused CPU kernels are not available here: {cpu_mxfp4.build_error()}")


@pytest.fixture
def one_call_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """Records, per decode step, whether the one-call path took it."""
    taken: list[bool] = []
    run = CpuDecodeBlocks.run

    def spy(self: CpuDecodeBlocks, *args: object) -> torch.Tensor | None:
        out = run(self, *args)  # type: ignore[arg-type]
        taken.append(out is not None)
        return out

    monkeypatch.setattr(CpuDecodeBlocks, "run", spy)
    yield taken


def _model(weights: WeightsMode, dtype: torch.dtype = torch.bfloat16) -> Model:
    return Model(ORACLE_CONFIG, random_weights(ORACLE_CONFIG, seed=4), torch.device("cpu"), dtype, weights=weights)


def _block_by_block(model: Model) -> None:
    model._cpu_decode = CpuDecodeBlocks(config=model.config, tensors=None, final_norm=model.norm)


def _decode_batch(model: Model, steps: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Logits of ``steps`` batched decode steps after the prompts, and the cache's K/V stores at the end."""
    cache = model.new_cache(len(PROMPTS), 64)
    for slot, prompt in enumerate(PROMPTS):
        model.prefill(prompt, cache, slot)
    tokens = random_ids(steps * len(PROMPTS), ORACLE_CONFIG.vocab_size, seed=9)
    logits = []
    for step in range(steps):
        batch = tokens[step * len(PROMPTS) : (step + 1) * len(PROMPTS)]
        logits.append(model.decode(batch, cache, list(range(len(PROMPTS)))))
    return logits, [*cache.keys, *cache.values]


@pytest.mark.parametrize("weights", ["bf16", "q8"])
def test_one_call_gives_the_op_by_op_bits(weights: WeightsMode, one_call_runs: list[bool]) -> None:
    model = _model(weights)
    if weights == "q8":
        assert isinstance(model.blocks[0].attn.qkv_weight, Q8Weight)
    fused_logits, fused_cache = _decode_batch(model, steps=10)
    assert one_call_runs and all(one_call_runs)
    _block_by_block(model)
    one_call_runs.clear()
    plain_logits, plain_cache = _decode_batch(model, steps=10)
    assert one_call_runs and not any(one_call_runs)
    for fused, plain in zip(fused_logits, plain_logits, strict=True):
        assert torch.equal(fused, plain)
    for fused, plain in zip(fused_cache, plain_cache, strict=True):
        assert torch.equal(fused, plain)


def test_a_lone_sequence_gets_its_batched_bits(one_call_runs: list[bool]) -> None:
    model = _model("bf16")
    batched, _ = _decode_batch(model, steps=4)
    tokens = random_ids(4 * len(PROMPTS), ORACLE_CONFIG.vocab_size, seed=9)
    cache = model.new_cache(1, 64)
    model.prefill(PROMPTS[1], cache)
    for step in range(4):
        alone = model.decode([tokens[step * len(PROMPTS) + 1]], cache, [0])[0]
        assert torch.equal(alone, batched[step][1])
    assert all(one_call_runs)


def test_steps_it_does_not_take_run_block_by_block(monkeypatch: pytest.MonkeyPatch, one_call_runs: list[bool]) -> None:
    fp32 = _model("bf16", dtype=torch.float32)  # fp32 activations: the op-by-op path
    cache = fp32.new_cache(1, 16)
    fp32.prefill([1, 2], cache)
    fp32.decode([3], cache, [0])
    assert one_call_runs == [False]
    bf16 = _model("bf16")
    cache = bf16.new_cache(1, 16)
    bf16.prefill([1, 2], cache)
    monkeypatch.setenv(ops.CPU_FUSED_ENV, "0")  # the fused kernels switched off
    assert torch.isfinite(bf16.decode([3], cache, [0])).all()
    assert one_call_runs == [False, False]


def test_a_malformed_call_is_refused_with_a_reason() -> None:
    model = _model("bf16")
    packed = CpuDecodeBlocks.pack(model.blocks, model.norm, model.config)
    assert packed.tensors is not None
    cache = model.new_cache(1, 16)
    cache.reserve(0, 1)
    x = model.embedding[torch.tensor([3])]
    cos, sin = model._rope_tables(torch.tensor([0]))
    cfg = model.config
    scalars = (
        cfg.rms_norm_eps,
        cfg.num_attention_heads,
        cfg.num_key_value_heads,
        cfg.experts_per_token,
        cfg.swiglu_limit,
        cfg.swiglu_alpha,
        cfg.head_dim**-0.5,
    )

    def call(slots: list[int], tensors: list[torch.Tensor]) -> None:
        stores = (cache.keys, cache.values, cache.windows)
        cpu_build.ops().decode_layers(x, cos, sin, torch.tensor(slots), torch.tensor([0]), tensors, *stores, model.norm,
                                      *scalars)  # fmt: skip

    with pytest.raises(RuntimeError, match="tensors, a K and a V store"):
        call([0], list(packed.tensors)[:-1])
    with pytest.raises(RuntimeError, match="outside the cache"):
        call([1], list(packed.tensors))  # the cache has one slot
