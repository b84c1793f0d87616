"""The CPU model's bf16 projections held in 12 bits (kernels.bf16_packed): packed at load time, smaller, and decoding
to the same bits as the checkpoint's weights, alone and in a batch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gpt_oss_desktop.engine import load_model
from gpt_oss_desktop.engine.model import Model
from gpt_oss_desktop.kernels import cpu_build
from gpt_oss_desktop.kernels.bf16_packed import PACK_ENV, PackedBf16Weight
from tests.helpers.models import tiny_checkpoint

pytestmark = pytest.mark.skipif(not cpu_build.available(), reason="the CPU kernels are not built here")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def models(tiny: Path) -> tuple[Model, Model]:
    """(packed, as in the checkpoint) loads of one checkpoint."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PACK_ENV, "0")
        plain = load_model(tiny)
    return load_model(tiny), plain


def _decode_all(model: Model, tokens: list[int]) -> list[torch.Tensor]:
    cache = model.new_cache(1, 32)
    return [model.decode([t], cache, [0])[0] for t in tokens]


def test_projections_are_packed_and_the_rest_is_not(models: tuple[Model, Model]) -> None:
    packed, plain = models
    assert isinstance(packed.unembedding, PackedBf16Weight) and isinstance(plain.unembedding, torch.Tensor)
    for block, plain_block in zip(packed.blocks, plain.blocks, strict=True):
        assert isinstance(block.attn.qkv_weight, PackedBf16Weight)
        assert isinstance(block.attn.out_weight, PackedBf16Weight)
        assert isinstance(plain_block.attn.qkv_weight, torch.Tensor)
        assert isinstance(block.mlp.gate_weight, torch.Tensor)  # the router: 8 rows, nothing worth packing
    assert isinstance(packed.embedding, torch.Tensor)  # a row lookup per token
    assert packed.nbytes < plain.nbytes
    assert packed.weights == plain.weights == "bf16"


def test_decode_gives_the_checkpoint_weights_bits(models: tuple[Model, Model]) -> None:
    packed, plain = models
    tokens = [3, 141, 59, 265, 358, 97, 9, 323]
    for ours, theirs in zip(_decode_all(packed, tokens), _decode_all(plain, tokens), strict=True):
        assert torch.equal(ours, theirs)


def test_batched_decode_gives_the_same_bits(models: tuple[Model, Model]) -> None:
    packed, plain = models
    results = []
    for model in (packed, plain):
        cache = model.new_cache(3, 32)
        for slot, token in enumerate([5, 100, 300]):
            model.decode([token], cache, [slot])
        results.append(model.decode([11, 12, 13], cache, [0, 1, 2]))
    assert torch.equal(results[0], results[1])


def test_prefill_stays_close(models: tuple[Model, Model]) -> None:
    packed, plain = models
    prompt = [3, 141, 59, 265, 358, 97, 9, 323, 84, 62, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]  # past the GEMV's rows
    ours, theirs = packed.logits(prompt), plain.logits(prompt)
    assert float((ours - theirs).norm() / theirs.norm()) < 1e-2


def test_with_the_fused_kernels_off_the_reference_decoder_serves(
    models: tuple[Model, Model], monkeypatch: pytest.MonkeyPatch
) -> None:
    packed, plain = models
    tokens = [3, 141, 59]
    expected = _decode_all(plain, tokens)
    monkeypatch.setenv("GPTOSS_CPU_FUSED", "0")
    for ours, theirs in zip(_decode_all(packed, tokens), expected, strict=True):
        assert float((ours - theirs).norm() / theirs.norm()) < 1e-2
