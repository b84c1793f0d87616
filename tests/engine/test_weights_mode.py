"""The ``q8`` load mode (engine.weights_mode): attention and unembedding weights quantised at load time, close to
the bf16 model, smaller, and still giving each sequence the same bits alone or in a batch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gpt_oss_desktop.engine import load_model
from gpt_oss_desktop.engine.checkpoint import RandomWeights, get_preset
from gpt_oss_desktop.engine.errors import EngineError, UnsupportedCheckpointError
from gpt_oss_desktop.engine.model import Model
from gpt_oss_desktop.engine.weights_mode import parse_weights_mode
from gpt_oss_desktop.kernels.q8 import Q8Weight
from tests.helpers.models import tiny_checkpoint


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("tiny"))


def _relative_error(candidate: torch.Tensor, reference: torch.Tensor) -> float:
    return float((candidate - reference).norm() / reference.norm())


def test_q8_quantises_attention_and_unembedding_only(tiny: Path) -> None:
    exact = load_model(tiny)
    q8 = load_model(tiny, weights="q8")
    assert exact.weights == "bf16" and q8.weights == "q8"
    assert isinstance(q8.unembedding, Q8Weight) and not isinstance(exact.unembedding, Q8Weight)
    for block in q8.blocks:
        assert isinstance(block.attn.qkv_weight, Q8Weight) and isinstance(block.attn.out_weight, Q8Weight)
        assert isinstance(block.mlp.gate_weight, torch.Tensor)  # the router stays exact
    assert isinstance(q8.embedding, torch.Tensor)  # a row lookup: nothing to save per token
    # 34 bytes per 32 weights (int8 values and a bf16 scale) for the three kinds of matrix.
    q8_bytes = q8.unembedding.nbytes + sum(b.attn.qkv_weight.nbytes + b.attn.out_weight.nbytes for b in q8.blocks)
    weights = q8.unembedding.shape.numel() + sum(
        b.attn.qkv_weight.shape.numel() + b.attn.out_weight.shape.numel() for b in q8.blocks
    )
    assert q8_bytes == weights * 34 // 32


def test_q8_logits_stay_close_to_bf16_on_prefill_and_decode(tiny: Path) -> None:
    exact, q8 = load_model(tiny), load_model(tiny, weights="q8")
    prompt = [3, 141, 59, 265, 358, 97, 9, 323, 84, 62]  # 10 tokens: the prefill path (more than 8 rows)
    assert _relative_error(q8.logits(prompt), exact.logits(prompt)) < 0.05
    caches = exact.new_cache(1, 32), q8.new_cache(1, 32)
    for token in prompt:  # decode: the fused 8-bit GEMV where the CPU kernels are built
        ref = exact.decode([token], caches[0], [0])
        out = q8.decode([token], caches[1], [0])
        assert _relative_error(out, ref) < 0.05
        assert not torch.equal(out, ref)  # the weights did change


def test_q8_batched_decode_gives_each_sequence_its_lone_bits(tiny: Path) -> None:
    model = load_model(tiny, weights="q8")
    prompts = [[5, 6, 7], [100, 3, 9, 44], [300, 301]]
    batch = model.new_cache(3, 32)
    for slot, prompt in enumerate(prompts):
        model.prefill(prompt, batch, slot)
    together = model.decode([11, 12, 13], batch, [0, 1, 2])
    for slot, prompt in enumerate(prompts):
        alone = model.new_cache(1, 32)
        model.prefill(prompt, alone)
        assert torch.equal(model.decode([11 + slot], alone, [0])[0], together[slot])


def test_an_unknown_mode_is_a_clear_error(tiny: Path) -> None:
    with pytest.raises(EngineError, match="unknown weights mode 'q4'; choose one of bf16, q8"):
        load_model(tiny, weights="q4")
    assert parse_weights_mode("q8") == "q8"


def test_rows_that_are_not_whole_blocks_are_refused_by_name(tiny: Path) -> None:
    config = get_preset("tiny").replace(head_dim=12)  # q = 4 x 12 = 48 values per row of the out projection
    with pytest.raises(UnsupportedCheckpointError, match="multiple of 32") as caught:
        Model(config, RandomWeights(config, 0), torch.device("cpu"), torch.bfloat16, weights="q8")
    assert caught.value.tensor is not None and "attn" in caught.value.tensor
